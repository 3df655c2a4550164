"""What an endpoint is asked to do: its serving options, and the constants the control plane
shares with the serving runtime.

Pure pydantic and stdlib, so the CLI and unit tests use it without torch or Ray. The
requests an endpoint takes are parsed in ``jobs.serving.requests``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.specs.vocabulary import EndpointTask

# Architecture name endings (config.json "architectures") -> the model task they are.
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("Model", "feature-extraction"),  # a bare encoder (BertModel, MPNetModel, ...)
)
# Language-model heads whose names also end in "Model": not encoders.
NOT_ENCODERS = ("LMHeadModel",)


def task_of_architectures(architectures: object) -> str | None:
    """The model task a config's ``architectures`` names (None when it names none we know:
    a generative model, or no list of names at all)."""
    if not isinstance(architectures, list):
        return None
    for architecture in architectures:
        if not isinstance(architecture, str) or architecture.endswith(NOT_ENCODERS):
            continue
        for ending, task in ARCHITECTURE_TASKS:
            if architecture.endswith(ending):
                return task
    return None


def servable_tasks(model_task: str) -> tuple[str, ...]:
    """The endpoint tasks a model version of ``model_task`` can serve: its own; zero-shot
    classification for a sequence classifier (an NLI model, checked at serve time); and the
    hidden states of any encoder (the head is left out)."""
    own = (model_task,) if model_task != "feature-extraction" else ()
    zero_shot = ("zero-shot-classification",) if model_task == "text-classification" else ()
    return (*own, *zero_shot, "feature-extraction", "embeddings")


def entailment_id(label2id: dict[str, int]) -> int | None:
    """The entailment class of an NLI model, found as the zero-shot pipeline finds it (the
    first label starting with "entail"); None when it has none."""
    for label, index in label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return None


INDEX_APP = "orch-models-index"  # the Serve app that answers 404s under /models
# The application builders, by import path: the control plane has them called on the
# cluster (it imports neither Ray Serve's deployments nor torch).
MODEL_APP_BUILDER = "jobs.serving.app:model_app"  # (name, options: dict, model: dict)
INDEX_APP_BUILDER = "jobs.serving.app:index_app"  # ()
# Serve's logs for the proxy and our replicas: no line per request (measurable CPU on a
# small machine), warnings and errors kept.
SERVE_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


class ServeOptions(BaseModel):
    """How a model version is served (the `orch serve` flags)."""

    model_config = ConfigDict(extra="forbid")

    task: EndpointTask = Field(description="What the endpoint computes; default: the model's task.")
    replicas: int = Field(1, ge=1, description="Fixed number of replicas (without autoscale).")
    autoscale: tuple[int, int] | None = Field(
        None, description="(min, max) replicas, scaled by ongoing requests."
    )
    cpus_per_replica: float = Field(1.0, gt=0, description="Logical CPUs each replica holds.")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs each replica holds.")
    max_batch_size: int = Field(32, ge=1, le=1024, description="Requests merged into a batch.")
    batch_wait_ms: float | None = Field(
        None,
        ge=0,
        description="The longest a batch waits to fill up, only under concurrent load (a "
        "lone request never waits); default 40 on CPU (slow forward passes: bigger batches "
        "pay), 5 on GPU.",
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=16,
        description="Padded tokens per forward pass; default 512 on CPU (short padded passes "
        "are the fastest there), 16384 on GPU.",
    )
    quantize: Literal["none", "int8"] = Field(
        "none",
        description="int8: dynamic int8 quantization of the linear layers at load (CPU only; "
        "faster forward passes, but some answers change: see docs/benchmarks.md).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weights and activations at inference; auto: bfloat16 on GPUs that have "
        "it (else float16), float32 on CPU. bfloat16 gives faster forward passes on a CPU "
        "with AVX512-BF16 or AMX (docs/benchmarks.md).",
    )
    max_input_chars: int = Field(20_000, ge=1, description="Longer inputs are refused (413).")
    max_items: int = Field(256, ge=1, description="Inputs in one request; more are refused.")
    max_candidate_labels: int = Field(
        32,
        ge=1,
        description="zero-shot-classification: candidate labels in one request (each costs "
        "a forward pass per input); more are refused (413).",
    )
    api_key_sha256: str | None = Field(None, description="SHA-256 of the API key, if any.")

    @model_validator(mode="after")
    def _check(self) -> ServeOptions:
        if self.autoscale and not 0 <= self.autoscale[0] <= self.autoscale[1]:
            raise ValueError("autoscale: MIN:MAX needs 0 <= MIN <= MAX")
        if self.autoscale and self.autoscale[1] < 1:
            raise ValueError("autoscale: MAX must be at least 1")
        if self.quantize != "none" and self.gpus_per_replica > 0:
            raise ValueError("quantize: int8 quantization is for CPU replicas, not GPUs")
        if self.quantize != "none" and self.dtype not in ("auto", "float32"):
            raise ValueError(f"dtype: int8 quantization starts from float32, not {self.dtype}")
        return self

    @property
    def max_body_bytes(self) -> int:
        """The longest body a valid request can have (every input and pair at the character
        limit, each character as a 6-byte JSON escape), plus room for the rest."""
        return 2 * self.max_items * self.max_input_chars * 6 + 65_536

    @property
    def max_ongoing_requests(self) -> int:
        """Serve caps a batch at this (default 5), and a proxy that finds every replica full
        backs off and retries (which adds latency under load), so queue generously in the
        replica: four batches' worth."""
        return 4 * self.max_batch_size


def parse_autoscale(value: str) -> tuple[int, int]:
    """``MIN:MAX`` -> (min, max); ValueError with a readable message otherwise."""
    lo, sep, hi = value.partition(":")
    if not sep or not lo.strip().isdigit() or not hi.strip().isdigit():
        raise ValueError(f"--autoscale takes MIN:MAX (for example 1:4), not {value!r}")
    return int(lo), int(hi)
