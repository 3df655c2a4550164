"""The plan of a training run: everything a worker needs as plain, picklable data, the
schedule (steps, evaluation, warm-up) derived from the spec and the data, and the marker of a
complete single-worker checkpoint. The driver side (``jobs.train.fit``) builds it, the worker
side (``jobs.train.worker``, ``jobs.train.callbacks``) reads it; this module imports neither.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.specs.training import TrainingJobSpec


@dataclass
class Plan:
    """Everything a worker needs, as plain data (it crosses process boundaries)."""

    task: str  # "fill-mask", "text-classification" or "token-classification"
    model_dir: str | None  # a pretrained folder to start from (finetune)
    model_config: dict[str, Any] | None  # or a config to build from scratch (pretrain)
    tokenizer_dir: str
    output_dir: str
    export_dir: str
    max_steps: int
    eval_steps: int
    warmup_steps: int
    train: dict[str, Any]
    num_workers: int
    use_gpu: bool
    strategy: str
    group_by_length: bool = False
    attempt: int = 1  # the job's driver attempt (a new one after a driver died)
    cpus_per_worker: float = 1.0
    resume_from: str | None = None  # a single worker's latest complete checkpoint, if any
    cache_eval: bool = True  # keep the eval batches in the workers after the first pass
    mlm_probability: float | None = None
    num_labels: int | None = None
    label_names: list[str] | None = None
    metrics: list[str] = field(default_factory=list)
    best_metric: str = "loss"


CACHED_EVAL_ROWS = 20_000  # larger eval splits stream through Ray Data at every evaluation
COMPLETE = "orch-complete"  # written into a single worker's checkpoint once it is all saved


def resume_point(run_dir: Path) -> str | None:
    """The latest complete checkpoint that earlier attempts of a single-worker job left in
    their output folders (``hf-ATTEMPT/checkpoint-STEP``), or None."""
    done = [marker.parent for marker in run_dir.glob(f"hf-*/checkpoint-*/{COMPLETE}")]
    steps = {
        int(step): folder for folder in done if (step := folder.name.rpartition("-")[2]).isdigit()
    }
    return str(steps[max(steps)]) if steps else None


def schedule(spec: TrainingJobSpec, train_rows: int) -> tuple[int, int, int]:
    """(max_steps, eval_steps, warmup_steps) from the spec and the rows each worker sees."""
    t = spec.train
    per_worker = math.ceil(train_rows / spec.scaling.num_workers)
    steps_per_epoch = max(1, math.ceil(per_worker / t.batch_size / t.grad_accum))
    max_steps = t.max_steps or max(1, math.ceil(t.epochs * steps_per_epoch))
    eval_steps = min(t.eval_steps or max(1, math.ceil(max_steps / 5)), max_steps)
    return max_steps, eval_steps, int(t.warmup_ratio * max_steps)
