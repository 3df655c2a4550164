"""Inference for one model version: load it (safetensors only), run batches, shape results.

A batch holds several requests. Their texts are tokenized once without padding, sorted by
length and cut into forward passes of at most ``max_batch_tokens`` padded tokens, so short
texts never pay for a long neighbour's padding; results go back to their requests in order.

Text classification, fill-mask and embeddings are computed here directly. The other tasks
(``PIPELINE_TASKS``) answer exactly what a ``transformers`` pipeline answers: the pipeline's
own ``preprocess`` turns each input into model inputs (several for question answering's
windows, zero-shot's labels, token classification's stride chunks), those of the whole batch
share the token-budget forward passes, and the pipeline's ``postprocess`` shapes each answer.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jobs.serving.requests import Request, RequestError
from orchestrator.specs.serving import entailment_id

# The head each endpoint task loads (transformers' Auto class).
MODEL_CLASSES = {
    "text-classification": "AutoModelForSequenceClassification",
    "zero-shot-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "fill-mask": "AutoModelForMaskedLM",
    "feature-extraction": "AutoModel",
    "embeddings": "AutoModel",
}
# Forward-pass rows one request may cost when long texts are read in overlapping windows
# (question answering's contexts, token classification with a stride): more is refused (413).
MAX_WINDOWS = 2048
# Tasks answered by a transformers pipeline's pre- and post-processing (see run_pipeline).
PIPELINE_TASKS = (
    "token-classification",
    "question-answering",
    "zero-shot-classification",
    "feature-extraction",
)


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
        if task == "zero-shot-classification":
            label2id = transformers.AutoConfig.from_pretrained(folder).label2id
            if entailment_id(label2id) is None:
                raise ValueError(
                    "zero-shot-classification needs an NLI model, one with an entailment "
                    f"label; this model's labels are {sorted(label2id)}"
                )
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
        self.pipe: Any = self._build_pipeline() if task in PIPELINE_TASKS else None

    def _build_pipeline(self) -> Any:
        """The task's pipeline over the model and tokenizer loaded here. The tokenizer's
        ``model_max_length`` becomes the model's usable length first: the pipelines truncate
        (or cut windows) to it, so no input can pass more positions than the model has."""
        import transformers

        self.tokenizer.model_max_length = self.max_length
        if self.task == "question-answering":  # transformers 5 has no such pipeline
            from jobs.serving.question_answering import QuestionAnsweringPipeline

            return QuestionAnsweringPipeline(
                model=self.model, tokenizer=self.tokenizer, device=self.device
            )
        return transformers.pipeline(
            self.task, model=self.model, tokenizer=self.tokenizer, device=self.device
        )

    def describe(self) -> dict[str, Any]:
        """What the endpoint serves and what its requests need."""
        out: dict[str, Any] = {
            "task": self.task,
            "max_length": self.max_length,
            "dtype": str(self.dtype).removeprefix("torch."),
        }
        if self.task in ("text-classification", "token-classification"):
            out["labels"] = [self.model.config.id2label[i] for i in range(self._num_labels)]
        if self.task == "token-classification":
            out["needs"] = "a text or a list; parameters.aggregation_strategy (default simple)"
        if self.task == "zero-shot-classification":
            label2id = self.model.config.label2id
            out["nli_labels"] = [self.model.config.id2label[i] for i in range(self._num_labels)]
            out["entailment_label"] = self.model.config.id2label[entailment_id(label2id)]
            out["needs"] = "parameters.candidate_labels: the labels to choose from"
        if self.task == "question-answering":
            out["max_seq_len"] = self.pipe.default_max_seq_len()
            out["needs"] = 'inputs {"question": ..., "context": ...} or a list of them'
        if self.task == "feature-extraction":
            out["hidden_size"] = int(self.model.config.hidden_size)
        if self.task == "fill-mask":
            out["mask_token"] = self.tokenizer.mask_token
        return out

    @property
    def _num_labels(self) -> int:
        return int(self.model.config.num_labels)

    def check(self, request: Request) -> None:
        """Per-request checks that need the tokenizer (before the request joins a batch)."""
        if self.task in PIPELINE_TASKS:
            self._check_pipeline_request(request)
            return
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
        if self.task in PIPELINE_TASKS:
            return self.run_pipeline(requests)
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

    # --- tasks answered by a transformers pipeline ----------------------------------------

    def pipeline_params(self, params: dict[str, Any]) -> tuple[dict, dict, dict]:
        """A request's parameters as the pipeline's (preprocess, forward, postprocess)
        parameters; those left out (None) take the pipeline's defaults."""
        given = {name: value for name, value in params.items() if value is not None}
        if self.task == "feature-extraction":
            given["truncation"] = True  # the pipeline does not truncate by default
        preprocess, forward, postprocess = self.pipe._sanitize_parameters(**given)
        if forward:  # none of PIPELINE_TASKS has any: a batch's passes are shared
            raise ValueError(f"unexpected forward parameters {sorted(forward)}")
        return preprocess, forward, postprocess

    def _pipeline_inputs(self, request: Request) -> list[Any]:
        if self.task == "question-answering":
            assert request.pairs is not None  # parse_request gives every question a context
            return [
                {"question": question, "context": context}
                for question, context in zip(request.texts, request.pairs, strict=True)
            ]
        return list(request.texts)

    def run_pipeline(self, requests: list[Request]) -> list[Any]:
        """Answers of a pipeline task, batched across requests: every input's model inputs
        (from the pipeline's ``preprocess``) are grouped by length into forward passes of at
        most ``max_batch_tokens`` padded tokens, collated and unrolled as transformers'
        own batching does, and each input's outputs go to the pipeline's ``postprocess``."""
        from transformers.pipelines.base import ChunkPipeline, pad_collate_fn

        chunked = isinstance(self.pipe, ChunkPipeline)
        items: list[Any] = []  # the model inputs of every input of every request
        owners: list[int] = []  # the input (counted over the batch) each item belongs to
        postprocess_params: list[dict[str, Any]] = []  # one per input
        for request in requests:
            preprocess, _, postprocess = self.pipeline_params(request.params)
            for value in self._pipeline_inputs(request):
                produced = self.pipe.preprocess(value, **preprocess)
                for item in produced if chunked else [produced]:
                    items.append(item)
                    owners.append(len(postprocess_params))
                postprocess_params.append(postprocess)
        lengths = [int(item["input_ids"].shape[-1]) for item in items]
        outputs: list[Any] = [None] * len(items)
        collate = pad_collate_fn(self.tokenizer, None)
        for group in self.chunks(lengths):
            if len(group) == 1:  # as transformers runs batch_size=1: no collation at all
                outputs[group[0]] = self.pipe.forward(items[group[0]])
                continue
            batch = self.pipe.forward(collate([items[i] for i in group]))
            for i, output in zip(group, unbatch(batch, len(group)), strict=True):
                outputs[i] = output
        per_input: list[list[Any]] = [[] for _ in postprocess_params]
        for owner, output, length in zip(owners, outputs, lengths, strict=True):
            if self.task == "feature-extraction":
                output = self._unpad_hidden_states(output, length)
            if chunked:
                output.pop("is_last", None)  # as transformers' PipelinePackIterator does
            per_input[owner].append(output)
        answers = []
        for outs, params in zip(per_input, postprocess_params, strict=True):
            answer = self.pipe.postprocess(outs if chunked else outs[0], **params)
            # token-classification scores are numpy floats; hidden states are plain already
            answers.append(answer if self.task == "feature-extraction" else plain(answer))
        results, start = [], 0
        for request in requests:
            count = len(request.texts)
            results.append(answers[start] if request.single else answers[start : start + count])
            start += count
        return results

    def _unpad_hidden_states(self, output: Any, length: int) -> Any:
        """A collated item's hidden states cut back to its own tokens (feature extraction
        answers every position, and transformers answers an input alone, unpadded)."""
        hidden = output["last_hidden_state"]
        if self.tokenizer.padding_side == "left":
            output["last_hidden_state"] = hidden[:, hidden.shape[1] - length :]
        else:
            output["last_hidden_state"] = hidden[:, :length]
        return output

    def _check_pipeline_request(self, request: Request) -> None:
        """Bounds that depend on the model: a window stride, a QA window and a zero-shot
        hypothesis must fit its length, or the tokenizer would fail (a Rust panic); and the
        windows a request is read in must stay within ``MAX_WINDOWS``."""
        params = request.params
        if self.task == "token-classification" and params.get("stride") is not None:
            room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
            if params["stride"] < room:
                count = len(request.texts)
                self._check_windows(request.texts, [room] * count, [params["stride"]] * count)
            if params["stride"] >= room:
                raise RequestError(
                    422,
                    f"parameters.stride must be below {room} (the model's {self.max_length} "
                    "tokens less its special tokens)",
                    "parameters.stride",
                )
        if self.task == "question-answering":
            self._check_questions(request)
        if self.task == "zero-shot-classification":
            specials = self.tokenizer.num_special_tokens_to_add(pair=True)
            template = params["hypothesis_template"]
            for i, label in enumerate(params["candidate_labels"]):
                hypothesis = self.tokenizer(template.format(label), add_special_tokens=False)
                if len(hypothesis["input_ids"]) + specials >= self.max_length:
                    where = f"parameters.candidate_labels[{i}]"
                    raise RequestError(
                        422, f"{where}: its hypothesis leaves no room for the text", where
                    )
        try:
            self.pipeline_params(params)
        except ValueError as exc:
            raise RequestError(422, f"parameters: {exc}", "parameters") from None

    def _check_windows(self, texts: list[str], rooms: list[int], strides: list[int]) -> None:
        """413 when reading ``texts`` in windows of ``room`` tokens overlapping by ``stride``
        would take more than ``MAX_WINDOWS`` forward-pass rows (a stride of room - 1 advances
        one token a window: one long input could cost thousands). UTF-8 bytes bound the
        tokens from above, so texts are tokenized only when that bound is over the limit."""

        def windows(tokens: int, room: int, stride: int) -> int:
            return 1 if tokens <= room else 1 + math.ceil((tokens - room) / (room - stride))

        def total(counts: list[int]) -> int:
            return sum(windows(*args) for args in zip(counts, rooms, strides, strict=True))

        if total([len(t.encode()) for t in texts]) <= MAX_WINDOWS:
            return
        tokens = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]
        needed = total(tokens)
        if needed > MAX_WINDOWS:
            raise RequestError(
                413,
                f"the inputs would be read in {needed:,} windows of the model's length; the "
                f"limit is {MAX_WINDOWS:,} a request (send fewer or shorter inputs, or a "
                "smaller stride)",
                "inputs",
            )

    def _check_questions(self, request: Request) -> None:
        params = request.params
        max_seq_len = params.get("max_seq_len") or self.pipe.default_max_seq_len()
        if max_seq_len > self.max_length:
            raise RequestError(
                422,
                f"parameters.max_seq_len must be at most {self.max_length} (the model's length)",
                "parameters.max_seq_len",
            )
        rooms, strides = [], []
        for i, question in enumerate(request.texts):
            where = "inputs" if request.single else f"inputs[{i}]"
            cut = self.pipe.cut_question(question, params["max_question_len"])
            room = self.pipe.context_room(cut, max_seq_len)
            if room < 1:
                raise RequestError(
                    422,
                    f"{where}.question leaves no room for the context in a window of "
                    f"{max_seq_len} tokens (lower max_question_len or raise max_seq_len)",
                    f"{where}.question",
                )
            stride = params.get("doc_stride")
            if stride is not None and stride >= room:
                raise RequestError(
                    422,
                    f"parameters.doc_stride must be below {room} for {where}: the context "
                    f"tokens a window of {max_seq_len} holds beside its question",
                    "parameters.doc_stride",
                )
            rooms.append(room)  # the stride as the pipeline's preprocess will choose it
            strides.append(
                stride if stride is not None else self.pipe.default_doc_stride(max_seq_len, room)
            )
        assert request.pairs is not None  # every question has its context
        self._check_windows(request.pairs, rooms, strides)


def unbatch(output: Any, size: int) -> list[Any]:
    """A batched forward pass's output as ``size`` outputs of one item each, unrolled by
    transformers' own ``PipelineIterator`` (as it unrolls a DataLoader's batches)."""
    from transformers.pipelines.pt_utils import PipelineIterator

    unrolled = PipelineIterator([output], lambda batch: batch, {}, loader_batch_size=size)
    return list(itertools.islice(iter(unrolled), size))


def plain(value: Any) -> Any:
    """An answer with numpy scalars as Python numbers (what JSON can encode)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
