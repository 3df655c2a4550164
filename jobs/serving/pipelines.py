"""Tasks answered by a transformers pipeline: token classification, question answering,
zero-shot classification and feature extraction.

Each answer is what the task's pipeline answers: the pipeline's own ``preprocess`` turns each
input into model inputs (several for question answering's windows, zero-shot's labels, token
classification's stride chunks), those of the whole batch share the token-budget forward
passes (``Predictor.in_passes``), collated and unrolled as transformers' own batching does,
and the pipeline's ``postprocess`` shapes each answer.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np

from jobs.serving.model import Predictor, per_request
from jobs.serving.requests import Request, RequestError
from orchestrator.specs.serving import entailment_id

PIPELINE_TASKS = (
    "token-classification",
    "question-answering",
    "zero-shot-classification",
    "feature-extraction",
)
# Forward-pass rows one request may cost when long texts are read in overlapping windows
# (question answering's contexts, token classification with a stride): more is refused (413).
MAX_WINDOWS = 2048


class PipelinePredictor(Predictor):
    """The pipeline tasks, batched across requests; ``pipe`` is the task's pipeline over
    the model and tokenizer loaded here."""

    def _check_folder(self, folder: Path) -> None:
        """Zero-shot classification also needs an NLI model (an entailment label)."""
        super()._check_folder(folder)
        if self.task != "zero-shot-classification":
            return
        import transformers

        label2id = transformers.AutoConfig.from_pretrained(folder).label2id
        if entailment_id(label2id) is None:
            raise ValueError(
                "zero-shot-classification needs an NLI model, one with an entailment "
                f"label; this model's labels are {sorted(label2id)}"
            )

    def _build(self) -> None:
        """The task's pipeline, ``pipe``. The tokenizer's ``model_max_length`` becomes the
        model's usable length first: the pipelines truncate (or cut windows) to it, so no
        input can pass more positions than the model has."""
        import transformers
        from transformers.pipelines.base import ChunkPipeline

        self.tokenizer.model_max_length = self.max_length
        if self.task == "question-answering":  # transformers 5 has no such pipeline
            from jobs.serving.question_answering import QuestionAnsweringPipeline

            self.pipe: Any = QuestionAnsweringPipeline(
                model=self.model, tokenizer=self.tokenizer, device=self.device
            )
        else:
            self.pipe = transformers.pipeline(
                self.task, model=self.model, tokenizer=self.tokenizer, device=self.device
            )
        # a ChunkPipeline's preprocess yields several model inputs per input
        self.chunked = isinstance(self.pipe, ChunkPipeline)

    def _describe_task(self) -> dict[str, Any]:
        config = self.model.config
        if self.task == "token-classification":
            return {
                "labels": self.labels(),
                "needs": "a text or a list; parameters.aggregation_strategy (default simple)",
            }
        if self.task == "zero-shot-classification":
            return {
                "nli_labels": self.labels(),
                "entailment_label": config.id2label[entailment_id(config.label2id)],
                "needs": "parameters.candidate_labels: the labels to choose from",
            }
        if self.task == "question-answering":
            return {
                "max_seq_len": self.pipe.default_max_seq_len(),
                "needs": 'inputs {"question": ..., "context": ...} or a list of them',
            }
        return {"hidden_size": int(config.hidden_size)}

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

    # --- answering ------------------------------------------------------------------------

    def run(self, requests: list[Request]) -> list[Any]:
        """One answer per request, in order: every input's model inputs are grouped by
        length into forward passes of at most ``max_batch_tokens`` padded tokens, and each
        input's outputs go to the pipeline's ``postprocess``."""
        items, owners, postprocess_params = self._preprocess(requests)
        lengths = [int(item["input_ids"].shape[-1]) for item in items]
        outputs = self.in_passes(lengths, lambda group: self._forward([items[i] for i in group]))
        per_input: list[list[Any]] = [[] for _ in postprocess_params]
        for owner, output, length in zip(owners, outputs, lengths, strict=True):
            if self.task == "feature-extraction":
                output = self._unpad_hidden_states(output, length)
            if self.chunked:
                output.pop("is_last", None)  # as transformers' PipelinePackIterator does
            per_input[owner].append(output)
        answers = [
            self._postprocess(outs, params)
            for outs, params in zip(per_input, postprocess_params, strict=True)
        ]
        return per_request(requests, answers)

    def _preprocess(self, requests: list[Request]) -> tuple[list[Any], list[int], list[dict]]:
        """The model inputs of every input of every request, the input (counted over the
        batch) each belongs to, and each input's postprocess parameters."""
        items: list[Any] = []
        owners: list[int] = []
        postprocess_params: list[dict[str, Any]] = []
        for request in requests:
            preprocess, _, postprocess = self.pipeline_params(request.params)
            for value in self._pipeline_inputs(request):
                produced = self.pipe.preprocess(value, **preprocess)
                for item in produced if self.chunked else [produced]:
                    items.append(item)
                    owners.append(len(postprocess_params))
                postprocess_params.append(postprocess)
        return items, owners, postprocess_params

    def _pipeline_inputs(self, request: Request) -> list[Any]:
        if self.task == "question-answering":
            assert request.pairs is not None  # parse_request gives every question a context
            return [
                {"question": question, "context": context}
                for question, context in zip(request.texts, request.pairs, strict=True)
            ]
        return list(request.texts)

    def _forward(self, items: list[Any]) -> list[Any]:
        """The pipeline's outputs for one pass's items: collated by transformers' own
        ``pad_collate_fn`` and unrolled again; one item alone passes uncollated, as
        transformers runs batch_size=1."""
        from transformers.pipelines.base import pad_collate_fn

        if len(items) == 1:
            return [self.pipe.forward(items[0])]
        batch = self.pipe.forward(pad_collate_fn(self.tokenizer, None)(items))
        return unbatch(batch, len(items))

    def _postprocess(self, outputs: list[Any], params: dict[str, Any]) -> Any:
        """One input's answer from its outputs (several for a ChunkPipeline)."""
        answer = self.pipe.postprocess(outputs if self.chunked else outputs[0], **params)
        # token-classification scores are numpy floats; hidden states are plain already
        return answer if self.task == "feature-extraction" else plain(answer)

    def _unpad_hidden_states(self, output: Any, length: int) -> Any:
        """A collated item's hidden states cut back to its own tokens (feature extraction
        answers every position, and transformers answers an input alone, unpadded)."""
        hidden = output["last_hidden_state"]
        if self.tokenizer.padding_side == "left":
            output["last_hidden_state"] = hidden[:, hidden.shape[1] - length :]
        else:
            output["last_hidden_state"] = hidden[:, :length]
        return output

    # --- checks ---------------------------------------------------------------------------

    def check(self, request: Request) -> None:
        """Bounds that depend on the model: a window stride, a QA window and a zero-shot
        hypothesis must fit its length, or the tokenizer would fail (a Rust panic); the
        windows a request is read in must stay within ``MAX_WINDOWS``; and the parameters
        must be ones the pipeline takes."""
        if self.task == "token-classification" and request.params.get("stride") is not None:
            self._check_stride(request)
        if self.task == "question-answering":
            self._check_questions(request)
        if self.task == "zero-shot-classification":
            self._check_hypotheses(request.params)
        try:
            self.pipeline_params(request.params)
        except ValueError as exc:
            raise RequestError(422, f"parameters: {exc}", "parameters") from None

    def _check_stride(self, request: Request) -> None:
        """Token classification's stride must leave a window room to advance."""
        stride = request.params["stride"]
        room = self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False)
        if stride >= room:
            raise RequestError(
                422,
                f"parameters.stride must be below {room} (the model's {self.max_length} "
                "tokens less its special tokens)",
                "parameters.stride",
            )
        count = len(request.texts)
        self._check_windows(request.texts, [room] * count, [stride] * count)

    def _check_hypotheses(self, params: dict[str, Any]) -> None:
        """Each zero-shot hypothesis must leave room for the text in the model's length."""
        specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        template = params["hypothesis_template"]
        for i, label in enumerate(params["candidate_labels"]):
            hypothesis = self.tokenizer(template.format(label), add_special_tokens=False)
            if len(hypothesis["input_ids"]) + specials >= self.max_length:
                where = f"parameters.candidate_labels[{i}]"
                raise RequestError(
                    422, f"{where}: its hypothesis leaves no room for the text", where
                )

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
        """Each question must leave its context room in a window, ``doc_stride`` must be
        below that room, and the contexts' windows must stay within ``MAX_WINDOWS``."""
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
            room = self._question_room(question, where, max_seq_len, params)
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

    def _question_room(
        self, question: str, where: str, max_seq_len: int, params: dict[str, Any]
    ) -> int:
        """The context tokens a window holds beside the (cut) question; 422 when none."""
        cut = self.pipe.cut_question(question, params["max_question_len"])
        room: int = self.pipe.context_room(cut, max_seq_len)
        if room < 1:
            raise RequestError(
                422,
                f"{where}.question leaves no room for the context in a window of "
                f"{max_seq_len} tokens (lower max_question_len or raise max_seq_len)",
                f"{where}.question",
            )
        return room


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
