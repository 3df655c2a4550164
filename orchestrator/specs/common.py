"""Pieces every job spec shares: the base model, resources, and file inputs.

pydantic + stdlib only: the CLI imports these without torch, transformers or Ray.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from orchestrator.specs.names import NAME_PATTERN, NAME_RULE, is_valid_name

FileFormat = Literal["auto", "text", "jsonl", "csv", "tsv", "parquet", "conll"]
TAGGED_FORMATS = ("conll", "jsonl")  # what token classification reads: a tag per word
CLASSIFICATION_METRICS = ("accuracy", "f1", "precision", "recall", "matthews_correlation")
# Token classification (NER) is scored by seqeval: entity-level precision, recall and f1, and
# token accuracy.
TOKEN_CLASSIFICATION_METRICS = ("f1", "precision", "recall", "accuracy")
METRICS_BY_TASK = {
    "text-classification": CLASSIFICATION_METRICS,
    "token-classification": TOKEN_CLASSIFICATION_METRICS,
}
# what a job measures when its spec names no metrics
DEFAULT_METRICS = {
    "text-classification": ("accuracy", "f1"),
    "token-classification": TOKEN_CLASSIFICATION_METRICS,
}
KNOWN_METRICS = tuple(dict.fromkeys(m for names in METRICS_BY_TASK.values() for m in names))
FORMAT_BY_SUFFIX = {
    ".txt": "text",
    ".text": "text",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".conll": "conll",
}


class StrictModel(BaseModel):
    """Unknown keys are errors; every field documents itself."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class Resources(StrictModel):
    """What the job's driver process asks of the cluster."""

    cpus: float = Field(1.0, ge=0, description="Logical CPUs for the driver.")
    gpus: float = Field(0.0, ge=0, description="GPUs for the driver.")
    memory_gb: float | None = Field(None, gt=0, description="Memory to reserve, in GiB.")

    def as_ray(self) -> dict[str, float]:
        out = {"CPU": self.cpus, "GPU": self.gpus}
        if self.memory_gb:
            out["memory"] = self.memory_gb * 2**30
        return out


class JobSpecBase(StrictModel):
    """Fields every job spec has."""

    kind: str = Field(description="The job kind, which picks the spec's other fields.")
    name: str = Field(
        description="Registry name of what the job produces (a tokenizer or model name); "
        "letters, digits, '_', '.', '-'.",
        pattern=NAME_PATTERN.pattern,
    )
    description: str = Field("", description="Free text kept with the job.")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not is_valid_name(value):
            raise ValueError(NAME_RULE)
        return value

    def gang(self) -> list[dict[str, float]]:
        """Resource bundles that must all fit at once for the job to start (driver first)."""
        raise NotImplementedError


def check_metrics(cls: type, metrics: list[str] | None) -> list[str] | None:
    """A field validator: every metric is one the offline metric scripts compute (None: the
    task's defaults)."""
    unknown = [m for m in metrics or [] if m not in KNOWN_METRICS]
    if unknown:
        raise ValueError(f"unknown {unknown}; known: {list(KNOWN_METRICS)}")
    return metrics


def metrics_not_of_task(task: str, metrics: list[str]) -> str | None:
    """Why ``metrics`` cannot be computed for a model of ``task`` (None when they can)."""
    allowed = METRICS_BY_TASK.get(task)
    if allowed is None:
        return None
    bad = [m for m in metrics if m not in allowed]
    if not bad:
        return None
    verb = "is" if len(bad) == 1 else "are"
    return f"{bad} {verb} not computed for {task}; allowed: {list(allowed)}"


def resolve_paths(patterns: list[str], info: ValidationInfo) -> list[str]:
    """Make relative paths absolute (against the context's base dir) and, when the context
    asks for it, check that every pattern matches at least one file. A server checking a
    spec for a user puts ``allowed_roots`` (paths must lie under one) and ``forbidden_roots``
    (paths must neither lie under one nor contain one) in the context."""
    ctx: dict[str, Any] = info.context or {}
    base = Path(ctx.get("base_dir") or os.getcwd())
    allowed = [os.path.realpath(r) for r in ctx.get("allowed_roots") or []]
    forbidden = [os.path.realpath(r) for r in ctx.get("forbidden_roots") or []]
    resolved, problems = [], []
    for pattern in patterns:
        path = Path(os.path.expanduser(pattern))
        absolute = str(path if path.is_absolute() else base / path)
        resolved.append(absolute)
        where = os.path.realpath(glob_base(absolute))
        if allowed and not any(_within(where, root) for root in allowed):
            problems.append(f"{pattern!r} is outside the data folders this server allows")
        elif any(_within(where, root) or _within(root, where) for root in forbidden):
            problems.append(f"{pattern!r} would read the orchestrator's own files")
        elif ctx.get("check_files", True) and not first_file(absolute):
            problems.append(f"no file matches {pattern!r} (looked for {absolute})")
    if problems:
        raise ValueError("; ".join(problems))
    return resolved


def glob_base(pattern: str) -> str:
    """The folder a path or glob starts from: its parts before the first wildcard."""
    parts = Path(pattern).parts
    kept = [p for p in parts[: next((i for i, p in enumerate(parts) if glob.has_magic(p)), None)]]
    return str(Path(*kept)) if kept else os.sep


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def first_file(pattern: str) -> str | None:
    """One file a path, glob or folder names (without walking all of them)."""
    if os.path.isdir(pattern):
        return next((str(p) for p in Path(pattern).rglob("*") if p.is_file()), None)
    return next((p for p in glob.iglob(pattern, recursive=True) if os.path.isfile(p)), None)


def expand_files(patterns: list[str]) -> list[str]:
    """Files named by paths, globs or folders (a folder means every file in it), sorted."""
    files: list[str] = []
    for pattern in patterns:
        if os.path.isdir(pattern):
            files.extend(sorted(str(p) for p in Path(pattern).rglob("*") if p.is_file()))
        else:
            files.extend(sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)))
    return files


def detect_format(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    return FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), "text")
