"""A model version loaded for one task, and what every predictor shares.

``Predictor`` loads a version (safetensors only), sets its dtype, quantization and device,
and works out the longest input the model takes. A batch holds several requests; its
forward passes are cut by ``chunks``: inputs sorted by length, at most ``max_batch_tokens``
padded tokens a pass, so short texts never pay for a long neighbour's padding. The
subclasses answer the tasks: ``jobs.serving.direct`` (our own forward pass and output) and
``jobs.serving.pipelines`` (a transformers pipeline's pre- and post-processing).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from jobs.serving.requests import Request

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


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for a ``ServeOptions.dtype`` on a device ("auto": bfloat16 on a GPU
    that has it, else float16; float32 on CPU, where bfloat16 is fast only on some chips)."""
    if dtype == "auto":
        if device == "cpu":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return getattr(torch, dtype)


class Predictor:
    """A loaded model and tokenizer for one task; subclasses check and answer requests."""

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
        self.task, self.device = task, device
        self._check_folder(folder)
        self.max_batch_tokens = max_batch_tokens or (512 if device == "cpu" else 16384)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.dtype = resolve_dtype(dtype, device)
        self.model = self._load_model(folder, quantize)
        self.max_length = self._usable_length()
        self._build()

    def _check_folder(self, folder: Path) -> None:
        """Refuse a folder this task cannot serve, before anything loads."""
        if not any(folder.glob("*.safetensors")):
            raise FileNotFoundError(f"{folder} holds no .safetensors weights")

    def _build(self) -> None:
        """What a subclass builds on the loaded model and tokenizer."""

    def _load_model(self, folder: Path, quantize: str) -> Any:
        """The task's head in ``self.dtype`` on the device; int8 dynamic quantization of
        the linear layers when asked on CPU."""
        import transformers

        model_class = getattr(transformers, MODEL_CLASSES[self.task])
        model = (
            model_class.from_pretrained(folder, use_safetensors=True, dtype=self.dtype)
            .to(self.device)
            .eval()
        )
        if quantize == "int8" and self.device == "cpu":
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        return model

    def _usable_length(self) -> int:
        """The most tokens an input may have: the tokenizer's limit or the model's
        positions, whichever is smaller."""
        config = self.model.config
        positions = getattr(config, "max_position_embeddings", None) or 512
        if config.model_type in ("roberta", "xlm-roberta", "camembert"):
            positions -= 2  # their position ids start after the padding index
        return int(min(self.tokenizer.model_max_length, positions))

    def describe(self) -> dict[str, Any]:
        """What the endpoint serves and what its requests need."""
        return {
            "task": self.task,
            "max_length": self.max_length,
            "dtype": str(self.dtype).removeprefix("torch."),
            **self._describe_task(),
        }

    def _describe_task(self) -> dict[str, Any]:
        """The task's own entries of ``describe``."""
        return {}

    def labels(self) -> list[str]:
        """The model's labels, in the order of its outputs."""
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(int(self.model.config.num_labels))]

    def check(self, request: Request) -> None:
        """Per-request checks that need the tokenizer (before the request joins a batch)."""
        raise NotImplementedError

    def run(self, requests: list[Request]) -> list[Any]:
        """One result per request, in order (a single input gives its result unwrapped)."""
        raise NotImplementedError

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

    def in_passes(
        self, lengths: list[int], forward: Callable[[list[int]], Sequence[Any]]
    ) -> list[Any]:
        """Every item's output, in order: ``forward`` answers the items (by index) of one
        forward pass, the passes grouped by ``chunks`` from the items' token counts."""
        outputs: list[Any] = [None] * len(lengths)
        for group in self.chunks(lengths):
            for i, output in zip(group, forward(group), strict=True):
                outputs[i] = output
        return outputs


def per_request(requests: list[Request], answers: list[Any]) -> list[Any]:
    """The answers of every input of the batch regrouped by request: a list per request,
    or its answer alone when it sent a single input."""
    results, start = [], 0
    for request in requests:
        count = len(request.texts)
        results.append(answers[start] if request.single else answers[start : start + count])
        start += count
    return results
