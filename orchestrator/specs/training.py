"""Spec sections the training job kinds share: data, optimisation, scaling, retries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from orchestrator.specs.common import FileFormat, StrictModel, resolve_paths
from orchestrator.specs.errors import SpecError
from orchestrator.specs.names import parse_versioned


class Files(StrictModel):
    """Dataset files of one split."""

    files: list[str] = Field(min_length=1, description="Paths, globs or folders.")
    format: FileFormat | Literal["hf"] = Field(
        "auto",
        description="csv, tsv, jsonl, parquet, text, conll (token<TAB>tag lines; "
        "token-classification), or hf (a `save_to_disk` folder).",
    )
    hf_split: str | None = Field(None, description="Split of an hf DatasetDict folder.")

    @field_validator("files")
    @classmethod
    def _resolve(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return resolve_paths(value, info)


class Columns(StrictModel):
    """Which columns of the data files hold what."""

    text: str = Field("text", description="Column of the (first) text.")
    text_pair: str | None = Field(None, description="Column of the second text of a pair.")
    label: str = Field("label", description="Column of the label (classification).")
    tokens: str = Field(
        "tokens", description="Column of the list of words of a jsonl row (token-classification)."
    )
    tags: str = Field(
        "tags",
        description="Column of the list of tags of a jsonl row, one per word: names, or ints "
        "indexing into labels (token-classification).",
    )


class DataSpec(StrictModel):
    """Where the rows come from and how they become token ids."""

    train: Files = Field(description="The training split.")
    eval: Files | None = Field(None, description="Held-out split; else a fraction of train.")
    eval_fraction: float = Field(0.1, gt=0, lt=1, description="Used when eval is not given.")
    split_seed: int = Field(42, description="Seed of the train/eval split by fraction.")
    columns: Columns = Field(
        default_factory=lambda: Columns(), description="Which columns hold texts, labels, tags."
    )
    max_rows: int | None = Field(None, gt=0, description="Use at most this many rows per split.")
    max_length: int = Field(128, gt=8, le=8192, description="Truncate to this many tokens.")
    group_by_length: bool = Field(
        True,
        description="Batch rows of similar length together (sorted within windows of 50 "
        "batches, the batches shuffled), so batches carry less padding.",
    )
    pipeline: Literal["auto", "streaming", "in-memory"] = Field(
        "auto",
        description="streaming: Ray Data reads and tokenises the rows as training consumes "
        "them (any size, any number of workers). in-memory: the driver reads and tokenises "
        "them all before training, with no Ray Data processes (one worker only). auto: "
        "in-memory for a one-worker job whose files hold at most 64 MiB, else streaming.",
    )


class TrainSpec(StrictModel):
    """Optimisation: the HF Trainer's arguments, named plainly."""

    max_steps: int | None = Field(None, gt=0, description="Optimizer steps (wins over epochs).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training rows.")
    max_seconds: float | None = Field(
        None,
        gt=0,
        description="Stop training after this much wall time (then evaluate and "
        "register), whatever max_steps or epochs say.",
    )
    batch_size: int = Field(16, gt=0, description="Rows per worker per step.")
    eval_batch_size: int = Field(64, gt=0, description="Rows per worker per evaluation step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    lr: float = Field(5e-5, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(
        0.06, ge=0, lt=1, description="Share of the steps over which the learning rate warms up."
    )
    lr_schedule: Literal["linear", "cosine", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate decay after the warm-up."
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Gradients clipped to this norm.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="bf16/fp16 need GPUs.")
    compile: bool = Field(
        False,
        description="torch.compile the model: a compile pause before the first steps, then "
        "faster steps (mostly on GPUs).",
    )
    seed: int = Field(
        42, description="Seeds the new head's initialisation, the shuffles and the masking."
    )
    logging_steps: int = Field(10, gt=0, description="Log training metrics every N steps.")
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps and at the end.")
    save_steps: int | None = Field(
        None, gt=0, description="Checkpoint every N steps (default: with every evaluation)."
    )
    keep_checkpoints: int = Field(2, ge=1, description="Best checkpoints kept (plus the latest).")


class ScalingSpec(StrictModel):
    """How many Ray Train workers, of what size, placed how."""

    num_workers: int = Field(
        1, ge=1, description="Ray Train workers (one trains inside the job's driver)."
    )
    use_gpu: bool = Field(False, description="Give each worker gpus_per_worker GPUs.")
    cpus_per_worker: float = Field(1.0, gt=0, description="Logical CPUs each worker holds.")
    gpus_per_worker: float = Field(1.0, ge=0, description="Used when use_gpu is true.")
    placement: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = Field(
        "PACK", description="How the workers spread over nodes (a Ray placement strategy)."
    )
    strategy: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="ddp: every worker holds the whole model. fsdp: parameters, gradients "
        "and optimizer state sharded across the workers (FSDP2, per transformer layer; gloo "
        "on CPU, NCCL on GPU), with sharded checkpoints.",
    )
    data_cpus: float = Field(
        0.5,
        ge=0,
        description="CPUs reserved for Ray Data reading and tokenising, beside the "
        "workers (on a small box, too little here and the input pipeline stalls); none are "
        "reserved with data.pipeline in-memory.",
    )

    @model_validator(mode="after")
    def _fsdp_needs_workers(self) -> ScalingSpec:
        if self.strategy == "fsdp" and self.num_workers < 2:
            raise ValueError(
                "scaling.strategy fsdp needs scaling.num_workers of 2 or more (it shards the "
                "model across the workers; one worker holds it whole: use ddp)"
            )
        return self

    def worker_bundle(self) -> dict[str, float]:
        bundle = {"CPU": self.cpus_per_worker, "GPU": 0.0}
        if self.use_gpu:
            bundle["GPU"] = self.gpus_per_worker
        return bundle


def check_ref(value: str | None, what: str) -> str | None:
    """A registry reference NAME, NAME:VERSION or NAME@ALIAS."""
    if value is None:
        return None
    try:
        parse_versioned(value, what)
    except SpecError:
        raise ValueError(f"{what} {value!r} is not NAME, NAME:VERSION or NAME@ALIAS") from None
    return value


def training_gang(scaling: ScalingSpec, data: DataSpec) -> list[dict[str, float]]:
    """The driver, the input pipeline, then every worker. A single worker trains inside the
    driver (Ray Train's local mode: no controller or worker actors), so the driver takes the
    worker's CPUs and GPUs; with more workers it coordinates and needs no CPU of its own. An
    in-memory pipeline runs in the driver: it reserves no CPUs of its own."""
    if scaling.num_workers == 1:
        if data.pipeline == "in-memory":
            return [scaling.worker_bundle()]
        return [scaling.worker_bundle(), {"CPU": scaling.data_cpus}]
    return [
        {"CPU": 0.0},
        {"CPU": scaling.data_cpus},
        *(scaling.worker_bundle() for _ in range(scaling.num_workers)),
    ]


class TrainingJobSpec(StrictModel):
    """Fields common to pretrain and finetune."""

    data: DataSpec = Field(description="Where the rows come from and how they are tokenised.")
    train: TrainSpec = Field(default_factory=lambda: TrainSpec(), description="Optimisation.")
    scaling: ScalingSpec = Field(
        default_factory=lambda: ScalingSpec(), description="Workers, their size and placement."
    )
    retries: int = Field(
        2, ge=0, description="Restarts from the latest checkpoint when a worker or node dies."
    )

    @model_validator(mode="after")
    def _in_memory_needs_one_worker(self) -> TrainingJobSpec:
        if self.data.pipeline == "in-memory" and self.scaling.num_workers > 1:
            raise ValueError(
                "data.pipeline in-memory needs scaling.num_workers 1 (the driver that holds "
                "the rows trains them); use streaming or auto with more workers"
            )
        return self

    @model_validator(mode="after")
    def _precision_needs_gpu(self) -> TrainingJobSpec:
        if self.train.precision != "fp32" and not self.scaling.use_gpu:
            raise ValueError(
                f"train.precision {self.train.precision} needs scaling.use_gpu: "
                "true; use fp32 on CPU"
            )
        return self
