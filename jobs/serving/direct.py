"""Tasks answered by our own forward pass: text classification, fill-mask and embeddings.

Each request's texts are tokenized once, without padding; the batch's rows share the
token-budget forward passes (``Predictor.in_passes``), and each row's output is shaped as
the Hugging Face pipeline of its task answers (embeddings: the mean of the last hidden
states over the text's tokens, normalized unless asked not to be).
"""

from __future__ import annotations

from typing import Any

import torch

from jobs.serving.model import Predictor, per_request
from jobs.serving.requests import Request, RequestError

DIRECT_TASKS = ("text-classification", "fill-mask", "embeddings")


class DirectPredictor(Predictor):
    """Text classification, fill-mask and embeddings, from the model's outputs directly."""

    def _describe_task(self) -> dict[str, Any]:
        if self.task == "text-classification":
            return {"labels": self.labels()}
        if self.task == "fill-mask":
            return {"mask_token": self.tokenizer.mask_token}
        return {}

    def check(self, request: Request) -> None:
        """A fill-mask input must hold a mask token within the model's length."""
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
        outputs = self.in_passes(
            [len(row["input_ids"]) for row in encoded],
            lambda group: self._forward(
                self.tokenizer.pad([encoded[i] for i in group], return_tensors="pt")
            ),
        )
        params = [r.params for r in requests for _ in r.texts]
        answers = [self._shape(row, p) for row, p in zip(outputs, params, strict=True)]
        return per_request(requests, answers)

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

    @torch.inference_mode()
    def _forward(self, batch: Any) -> list[Any]:
        """One padded pass: per row, the class probabilities (text classification), the
        ids and the mask positions' vocabulary probabilities (fill-mask), or the pooled
        hidden state (embeddings)."""
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
        """One input's answer from its row of ``_forward``."""
        if self.task == "text-classification":
            return self._top_labels(row, params["top_k"])
        if self.task == "fill-mask":
            ids, probs = row
            return self._fill(ids, probs, params["top_k"])
        vector = torch.nn.functional.normalize(row, dim=0) if params["normalize"] else row
        return vector.tolist()

    def _top_labels(self, probs: torch.Tensor, top_k: int) -> list[dict[str, Any]]:
        """Like the text-classification pipeline: the ``top_k`` likeliest labels."""
        scores, ids = probs.topk(min(top_k, int(self.model.config.num_labels)))
        labels = self.model.config.id2label
        return [
            {"label": labels[int(i)], "score": float(s)} for s, i in zip(scores, ids, strict=True)
        ]

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
