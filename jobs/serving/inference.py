"""Inference for one model version: load it (safetensors only), run batches, shape results.

A batch holds several requests. Their texts are tokenized once without padding, sorted by
length and cut into forward passes of at most ``max_batch_tokens`` padded tokens, so short
texts never pay for a long neighbour's padding; results go back to their requests in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from jobs.serving.requests import Request, RequestError

MODEL_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "fill-mask": "AutoModelForMaskedLM",
    "embeddings": "AutoModel",
}


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for a ``ServeOptions.dtype`` on a device ("auto": bfloat16 on a GPU
    that has it, else float16; float32 on CPU, where bfloat16 is fast only on some chips)."""
    if dtype == "auto":
        if device == "cpu":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, dtype)


class Predictor:
    """A loaded model and tokenizer for one task."""

    def __init__(
        self,
        path: str,
        task: str,
        max_batch_tokens: int | None = None,
        device: str = "cpu",
        quantize: str = "none",
        dtype: str = "auto",
    ) -> None:
        import transformers

        folder = Path(path)
        if not any(folder.glob("*.safetensors")):
            raise FileNotFoundError(f"{folder} holds no .safetensors weights")
        self.task, self.device = task, device
        self.max_batch_tokens = max_batch_tokens or (512 if device == "cpu" else 16384)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model_class = getattr(transformers, MODEL_CLASSES[task])
        self.dtype = resolve_dtype(dtype, device)
        self.model = (
            model_class.from_pretrained(folder, use_safetensors=True, dtype=self.dtype)
            .to(device)
            .eval()
        )
        if quantize == "int8" and device == "cpu":
            self.model = torch.ao.quantization.quantize_dynamic(
                self.model, {torch.nn.Linear}, dtype=torch.qint8
            )
        config = self.model.config
        positions = getattr(config, "max_position_embeddings", None) or 512
        if config.model_type in ("roberta", "xlm-roberta", "camembert"):
            positions -= 2  # their position ids start after the padding index
        self.max_length = int(min(self.tokenizer.model_max_length, positions))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task": self.task,
            "max_length": self.max_length,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.task == "text-classification":
            out["labels"] = [self.model.config.id2label[i] for i in range(self._num_labels)]
        if self.task == "fill-mask":
            out["mask_token"] = self.tokenizer.mask_token
        return out

    @property
    def _num_labels(self) -> int:
        return int(self.model.config.num_labels)

    def check(self, request: Request) -> None:
        """Per-request checks that need the tokenizer (before the request joins a batch)."""
        if self.task != "fill-mask":
            return
        mask = self.tokenizer.mask_token
        for i, text in enumerate(request.texts):
            if mask not in text:
                where = "inputs" if request.single else f"inputs[{i}]"
                raise RequestError(422, f"{where} has no {mask} token to fill", where)
        for i, row in enumerate(self._encode(request.texts, None)):  # one call per request
            if self.tokenizer.mask_token_id not in row["input_ids"]:
                where = "inputs" if request.single else f"inputs[{i}]"
                raise RequestError(
                    422,
                    f"{where}: its {mask} token lies beyond the model's first "
                    f"{self.max_length} tokens (the rest is cut off)",
                    where,
                )

    def run(self, requests: list[Request]) -> list[Any]:
        """One result per request, in order (a single input gives its result unwrapped)."""
        encoded = [row for r in requests for row in self._encode(r.texts, r.pairs)]
        outputs: list[Any] = [None] * len(encoded)
        for chunk in self.chunks([len(row["input_ids"]) for row in encoded]):
            batch = self.tokenizer.pad([encoded[i] for i in chunk], return_tensors="pt")
            for i, out in zip(chunk, self._forward(batch), strict=True):
                outputs[i] = out
        results, start = [], 0
        for request in requests:
            rows = outputs[start : start + len(request.texts)]
            start += len(request.texts)
            shaped = [self._shape(row, request.params) for row in rows]
            results.append(shaped[0] if request.single else shaped)
        return results

    def _encode(self, texts: list[str], pairs: list[str] | None) -> list[dict[str, Any]]:
        """One request's texts as token ids, truncated to the model's length (one encoding
        per request: a text without a pair never gets an empty second segment)."""
        encoded = self.tokenizer(
            texts,
            pairs,
            truncation="longest_first" if pairs else True,
            max_length=self.max_length,
        )
        return [{k: v[i] for k, v in encoded.items()} for i in range(len(texts))]

    def chunks(self, lengths: list[int]) -> list[list[int]]:
        """Indices grouped by length so that len(group) * longest <= max_batch_tokens."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        chunks: list[list[int]] = []
        current: list[int] = []
        for i in order:
            if current and (len(current) + 1) * lengths[i] > self.max_batch_tokens:
                chunks.append(current)
                current = []
            current.append(i)
        return chunks + [current] if current else chunks

    @torch.inference_mode()
    def _forward(self, batch: Any) -> list[Any]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if self.task == "text-classification":
            probs = self.model(**batch).logits.float().softmax(-1)
            return list(probs.cpu())
        if self.task == "fill-mask":
            logits = self.model(**batch).logits
            is_mask = batch["input_ids"] == self.tokenizer.mask_token_id
            return [
                (ids.cpu(), logits[row][is_mask[row]].float().softmax(-1).cpu())
                for row, ids in enumerate(batch["input_ids"])
            ]
        hidden = self.model(**batch).last_hidden_state.float()  # pool in float32
        weights = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return list(pooled.cpu())

    def _shape(self, row: Any, params: dict[str, Any]) -> Any:
        if self.task == "text-classification":
            k = min(params["top_k"], self._num_labels)
            scores, ids = row.topk(k)
            labels = self.model.config.id2label
            return [
                {"label": labels[int(i)], "score": float(s)}
                for s, i in zip(scores, ids, strict=True)
            ]
        if self.task == "fill-mask":
            ids, probs = row
            return self._fill(ids, probs, params["top_k"])
        vector = torch.nn.functional.normalize(row, dim=0) if params["normalize"] else row
        return vector.tolist()

    def _fill(self, ids: torch.Tensor, probs: torch.Tensor, top_k: int) -> Any:
        """Like the fill-mask pipeline: candidates per mask (a flat list for one mask)."""
        ids = ids[ids != self.tokenizer.pad_token_id]
        positions = (ids == self.tokenizer.mask_token_id).nonzero().flatten().tolist()
        per_mask = []
        for position, mask_probs in zip(positions, probs, strict=True):
            scores, tokens = mask_probs.topk(min(top_k, mask_probs.numel()))
            candidates = []
            for score, token in zip(scores.tolist(), tokens.tolist(), strict=True):
                filled = ids.clone()
                filled[position] = token
                candidates.append(
                    {
                        "score": score,
                        "token": token,
                        "token_str": str(self.tokenizer.decode([token])).strip(),
                        "sequence": self.tokenizer.decode(filled, skip_special_tokens=True),
                    }
                )
            per_mask.append(candidates)
        return per_mask[0] if len(per_mask) == 1 else per_mask
