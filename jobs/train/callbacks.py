"""Hugging Face ``Trainer`` callbacks that run inside every Ray Train worker: complete
checkpoints reported to Ray Train, a time budget all ranks stop on together, and live metrics
sent to the driver (which records them; workers never open the registry)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from jobs.data.collate import TokenCounter
from jobs.metrics import perplexity
from jobs.train.plan import COMPLETE
from jobs.train.reports import WorkerReporter

NON_METRIC_LOG_KEYS = (
    "epoch",
    "total_flos",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_steps_per_second",
    "train_loss",  # the Trainer's end-of-run mean, not a point on the loss curve
)


class ReportCheckpoint(TrainerCallback):
    """Reports each saved checkpoint to Ray Train, complete.

    Ray's ``RayTrainReportCallback`` has every rank copy "the last checkpoint" as soon as its
    own part is saved; with the output folder shared between workers (as multi-node training
    needs), a fast rank can copy the optimizer file while rank 0 is still writing it, and a
    resumed job then fails on a truncated file. Here all ranks first meet at a barrier, then
    rank 0 alone copies the folder and reports it.

    ``in_place``: a single worker (Ray Train's local mode keeps reported checkpoints in memory
    only) marks the Trainer's own checkpoint folder complete instead of copying it; a later
    attempt of the job resumes from it (``jobs.train.plan.resume_point``). It then deletes the
    checkpoints beyond ``keep`` itself (the Trainer's rotation ran before this callback): a
    death while deleting leaves the new, marked checkpoint the latest complete one.
    """

    def __init__(self, in_place: bool = False, keep: int | None = None) -> None:
        self.in_place, self.keep = in_place, keep

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import shutil
        import tempfile

        import ray.train
        import torch.distributed as dist
        from transformers.trainer_utils import get_last_checkpoint, rotate_checkpoints

        if state.global_step >= state.max_steps:
            # Training is over (every rank sees the same step, so none reports): a worker group
            # resumed from this checkpoint would take one step past max_steps (the Trainer
            # checks the limit after a step). A death from here on resumes from the previous
            # checkpoint and trains the last steps again.
            return
        if self.in_place:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                (folder / COMPLETE).touch()
            rotate_checkpoints(
                args.output_dir,
                save_total_limit=self.keep,
                best_model_checkpoint=state.best_model_checkpoint,
                use_mtime=True,
            )
            return
        if dist.is_available() and dist.is_initialized():
            dist.barrier()  # every rank has finished writing its files
        metrics: dict[str, Any] = {}
        for entry in state.log_history:
            metrics.update(entry)
        if not state.is_world_process_zero:
            ray.train.report(metrics=metrics, checkpoint=None)  # a collective: all ranks call
            return
        with tempfile.TemporaryDirectory() as tmp:
            source = get_last_checkpoint(args.output_dir)
            checkpoint = None
            if source is not None:
                shutil.copytree(source, Path(tmp) / "checkpoint")
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report(metrics=metrics, checkpoint=checkpoint)


class TimeBudget(TrainerCallback):
    """Stops training once ``seconds`` have passed, on the same step on every rank (a rank
    that stopped alone would leave the others waiting in DDP forever)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        import torch
        import torch.distributed as dist

        over = float(time.perf_counter() - (self.started or 0.0) > self.seconds)
        if dist.is_available() and dist.is_initialized():
            flag = torch.tensor([over])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            over = float(flag.item())
        if over:
            control.should_training_stop = True


class MetricsReport(TrainerCallback):
    """Rank 0 sends every logged value to the driver while the job runs, with samples/s and
    tokens/s of the whole worker group (this worker's count x the number of workers)."""

    def __init__(self, reporter: WorkerReporter, task: str, max_steps: int, workers: int) -> None:
        self.reporter, self.task, self.max_steps, self.workers = reporter, task, max_steps, workers
        self.last = (time.perf_counter(), TokenCounter.tokens, TokenCounter.rows)
        self.stepped = False

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """The first optimizer step of this worker group, in the job's events: what a user
        waits for after submitting (``bench/finetune.py`` measures it from here)."""
        if not self.stepped:
            self.stepped = True
            self.reporter.note(f"first training step done (step {state.global_step})")

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        logs = dict(logs or {})
        if any(k.startswith("final_") for k in logs):  # written once, by worker_loop
            return
        split = "eval" if any(k.startswith("eval_") for k in logs) else "train"
        if split == "train" and "loss" in logs:
            now, tokens, rows = time.perf_counter(), TokenCounter.tokens, TokenCounter.rows
            elapsed = max(now - self.last[0], 1e-9)
            logs["samples_per_s"] = (rows - self.last[2]) * self.workers / elapsed
            logs["tokens_per_s"] = (tokens - self.last[1]) * self.workers / elapsed
            self.last = (now, tokens, rows)
        if split == "eval" and self.task == "fill-mask" and "eval_loss" in logs:
            logs["eval_perplexity"] = perplexity(logs["eval_loss"])
        self.send(logs, state.global_step, split, state.epoch)

    def send(self, logs: dict[str, Any], step: int, split: str, epoch: float | None = None) -> None:
        rows = [
            {
                "name": key.removeprefix(f"{split}_"),
                "value": float(value),
                "step": step,
                "epoch": epoch,
                "split": split,
            }
            for key, value in logs.items()
            if key not in NON_METRIC_LOG_KEYS
            and isinstance(value, int | float)
            and not key.endswith(("_runtime", "_per_second"))
        ]
        if not rows:
            return
        summary = ", ".join(f"{r['name']} {r['value']:.4g}" for r in rows[:4])
        self.reporter.metrics(rows, f"step {step}/{self.max_steps} ({split}): {summary}")
