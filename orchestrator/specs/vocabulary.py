"""The names the whole system shares, defined once: job states, job kinds, and the tasks of
model versions and endpoints.

Standard library only, so the CLI's option choices use it without importing pydantic. The
registry stores these strings, the API validates and serves them (``GET /api/vocabulary``,
which the web console reads), and the CLI offers them as choices.
"""

from __future__ import annotations

import enum
from typing import Literal, get_args


class JobStatus(enum.StrEnum):
    """A job's state. QUEUED -> STARTING -> RUNNING -> (RETRYING -> QUEUED ...)* ->
    SUCCEEDED | FAILED | CANCELLED; every transition is an event with time and reason."""

    QUEUED = "QUEUED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    RETRYING = "RETRYING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# A job with a driver on the cluster (or about to have one): it holds its resources.
ACTIVE_STATUSES = (JobStatus.STARTING, JobStatus.RUNNING, JobStatus.RETRYING)

JobKind = Literal["tokenizer", "pretrain", "finetune", "evaluate"]
JOB_KINDS: tuple[str, ...] = get_args(JobKind)

# What a registered model version is (its head): the task it was trained or imported for.
ModelTask = Literal[
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "feature-extraction",
]
MODEL_TASKS: tuple[str, ...] = get_args(ModelTask)

# What an endpoint computes: a model task (the head's), zero-shot classification (with an NLI
# classifier), or `embeddings` (one pooled vector per input; `feature-extraction` gives the
# hidden state of every token).
EndpointTask = Literal[ModelTask, "zero-shot-classification", "embeddings"]
ENDPOINT_TASKS: tuple[str, ...] = get_args(EndpointTask)

# What a finetune job trains: a sequence classifier or a token classifier.
FinetuneTask = Literal["text-classification", "token-classification"]  # of ModelTask
FINETUNE_TASKS: tuple[str, ...] = get_args(FinetuneTask)


def vocabulary() -> dict[str, list[str]]:
    """Every shared name, as the API serves it to its clients."""
    return {
        "job_statuses": [s.value for s in JobStatus],
        "terminal_statuses": [s.value for s in TERMINAL_STATUSES],
        "job_kinds": list(JOB_KINDS),
        "model_tasks": list(MODEL_TASKS),
        "endpoint_tasks": list(ENDPOINT_TASKS),
        "finetune_tasks": list(FINETUNE_TASKS),
    }
