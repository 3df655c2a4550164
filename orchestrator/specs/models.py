"""Specs of the model job kinds: pretrain (masked LM), finetune (sequence or token
classification), evaluate."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from orchestrator.specs.common import (
    DEFAULT_METRICS,
    TAGGED_FORMATS,
    JobSpecBase,
    Resources,
    StrictModel,
    check_metrics,
    metrics_not_of_task,
    resolve_paths,
)
from orchestrator.specs.training import (
    Columns,
    DataSpec,
    Files,
    TrainingJobSpec,
    check_ref,
    training_gang,
)
from orchestrator.specs.vocabulary import FinetuneTask


class ArchitectureSpec(StrictModel):
    """Size of a model built from scratch around a registered tokenizer."""

    architecture: Literal["distilbert", "bert", "roberta"] = Field(
        "distilbert", description="The transformers model family built from its config."
    )
    layers: int = Field(6, ge=1, le=48, description="Transformer layers.")
    hidden: int = Field(768, ge=16, description="Hidden size (a multiple of heads).")
    heads: int = Field(12, ge=1, description="Attention heads per layer.")
    intermediate: int = Field(3072, ge=16, description="Size of the feed-forward layer.")
    max_positions: int = Field(512, ge=16, description="Longest sequence the model accepts.")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout of hidden states.")

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ArchitectureSpec:
        if self.hidden % self.heads:
            raise ValueError(
                f"model.hidden {self.hidden} must be divisible by model.heads {self.heads}"
            )
        return self


class PretrainJobSpec(JobSpecBase, TrainingJobSpec):
    """Masked-LM pretraining from scratch; registers a fill-mask model version."""

    kind: Literal["pretrain"] = Field("pretrain", description="The job kind: pretrain.")
    tokenizer: str = Field(description="Registered tokenizer: NAME or NAME:VERSION.")
    model: ArchitectureSpec = Field(
        default_factory=lambda: ArchitectureSpec(), description="The model built from scratch."
    )
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of tokens masked.")

    @field_validator("tokenizer")
    @classmethod
    def _ref(cls, value: str) -> str:
        return check_ref(value, "tokenizer") or value

    @model_validator(mode="after")
    def _fits_positions(self) -> PretrainJobSpec:
        if self.data.max_length > self.model.max_positions:
            raise ValueError(
                f"data.max_length {self.data.max_length} exceeds "
                f"model.max_positions {self.model.max_positions}"
            )
        return self

    def gang(self) -> list[dict[str, float]]:
        return training_gang(self.scaling, self.data)


class BaseModelSpec(StrictModel):
    """Exactly one of: a registered model version, or a local Hugging Face model folder."""

    model: str | None = Field(None, description="Registered model: NAME, NAME:VERSION, NAME@ALIAS.")
    path: str | None = Field(
        None,
        description="A local folder with config.json and "
        "safetensors weights (never a Hub id: nothing is downloaded).",
    )

    @field_validator("model")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        return check_ref(value, "base.model")

    @field_validator("path")
    @classmethod
    def _folder(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        resolved = resolve_paths([value], info)[0]
        ctx = info.context or {}
        if ctx.get("check_files", True) and not os.path.isfile(
            os.path.join(resolved, "config.json")
        ):
            raise ValueError(f"{resolved} is not a Hugging Face model folder (no config.json)")
        return resolved

    @model_validator(mode="after")
    def _exactly_one(self) -> BaseModelSpec:
        if (self.model is None) == (self.path is None):
            raise ValueError("give exactly one of base.model (registered) or base.path (folder)")
        return self


class FinetuneJobSpec(JobSpecBase, TrainingJobSpec):
    """Sequence classification of single texts or pairs, or token classification (NER) of
    tagged words; registers the best checkpoint."""

    kind: Literal["finetune"] = Field("finetune", description="The job kind: finetune.")
    base: BaseModelSpec = Field(description="The model fine-tuned: registered or a local folder.")
    task: FinetuneTask = Field(
        "text-classification",
        description="text-classification (a label per text or pair) or token-classification "
        "(a tag per word: conll or jsonl files with data.columns.tokens and data.columns.tags).",
    )
    labels: list[str] | None = Field(
        None,
        description="Label (or tag) names in id order. Integer labels index into it; string "
        "labels are mapped by name. Default: the integers found (0..max) or the sorted strings; "
        "for tags, 'O' first, then the other tags sorted.",
    )
    metrics: list[str] = Field(
        default_factory=lambda: list(DEFAULT_METRICS["text-classification"]),
        description="accuracy, f1, precision, recall, matthews_correlation; for "
        "token-classification (seqeval, default all): f1, precision, recall (entity level) "
        "and accuracy (tokens).",
    )
    _known_metrics = field_validator("metrics")(check_metrics)
    best_metric: str = Field(
        "accuracy",
        description="The checkpoint registered is the best by this eval metric "
        "(default: f1 for token-classification).",
    )

    @model_validator(mode="before")
    @classmethod
    def _token_classification_defaults(cls, data: Any) -> Any:
        """Token classification measures seqeval's metrics and keeps the best f1, unless the
        spec says otherwise (text classification keeps the field defaults)."""
        if isinstance(data, dict) and data.get("task") == "token-classification":
            data = dict(data)
            data.setdefault("metrics", list(DEFAULT_METRICS["token-classification"]))
            data.setdefault("best_metric", "f1")
        return data

    @field_validator("metrics")
    @classmethod
    def _metrics_of_task(cls, value: list[str], info: ValidationInfo) -> list[str]:
        task = info.data.get("task")  # absent when the task itself is invalid
        problem = metrics_not_of_task(task, value) if task else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _best_is_measured(self) -> FinetuneJobSpec:
        if self.best_metric not in (*self.metrics, "loss"):
            raise ValueError(
                f"best_metric {self.best_metric!r} must be one of metrics {self.metrics} or 'loss'"
            )
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels has duplicates")
        return self

    @model_validator(mode="after")
    def _formats_fit_task(self) -> FinetuneJobSpec:
        splits = {"data.train": self.data.train, "data.eval": self.data.eval}
        for key, files in splits.items():
            if files is None or files.format == "auto":
                continue
            if self.task == "token-classification" and files.format not in TAGGED_FORMATS:
                raise ValueError(
                    f"{key}.format {files.format}: token-classification reads conll or jsonl "
                    "files (a tag per word)"
                )
            if self.task == "text-classification" and files.format == "conll":
                raise ValueError(
                    f"{key}.format conll holds a tag per word: set task: token-classification"
                )
        return self

    def gang(self) -> list[dict[str, float]]:
        return training_gang(self.scaling, self.data)


class EvalDataSpec(Files):
    """The rows to score: one set of files, with the column mapping of the training data."""

    columns: Columns = Field(
        default_factory=lambda: Columns(), description="Which columns hold texts, labels, tags."
    )
    max_rows: int | None = Field(None, gt=0, description="Score at most this many rows.")
    max_length: int = Field(128, gt=8, le=8192, description="Truncate to this many tokens.")


class EvaluateJobSpec(JobSpecBase):
    """Metrics of a registered model version on a dataset split; written to the registry."""

    kind: Literal["evaluate"] = Field("evaluate", description="The job kind: evaluate.")
    model: str = Field(description="NAME, NAME:VERSION or NAME@ALIAS of a registered model.")
    data: EvalDataSpec = Field(description="The split to score.")
    metrics: list[str] | None = Field(
        None,
        description="For classifiers: accuracy, f1, precision, recall, matthews_correlation "
        "(default accuracy, f1). For token classifiers (seqeval): f1, precision, recall, "
        "accuracy (default all four). Which ones a model allows is checked when the job runs "
        "(the spec does not know the model's task). Masked LMs are always scored by loss and "
        "perplexity.",
    )
    _known_metrics = field_validator("metrics")(check_metrics)
    batch_size: int = Field(64, gt=0, description="Rows per forward pass.")
    resources: Resources = Field(
        default_factory=lambda: Resources(), description="What the job's driver reserves."
    )

    @field_validator("model")
    @classmethod
    def _ref(cls, value: str) -> str:
        return check_ref(value, "model") or value

    def gang(self) -> list[dict[str, float]]:
        return [self.resources.as_ray()]


__all__ = ["DataSpec", "EvaluateJobSpec", "FinetuneJobSpec", "PretrainJobSpec"]
