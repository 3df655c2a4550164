"""What pretraining and fine-tuning share: the Hugging Face ``Trainer`` run inside Ray Train
workers on Ray Data shards (or rows in memory), with checkpoints, retries, live metrics and
best-model export.

The driver builds a ``Plan`` (plain, picklable data) and a ``TorchTrainer``; every worker
runs ``worker_loop(plan)`` (``jobs/train/worker.py``) and reports metrics and restarts to the
driver, which records them (workers never open the registry). With two or more workers Ray
Train restarts the worker group after a worker or node dies (up to ``retries`` times) and the
loop resumes from Ray's latest *complete* checkpoint: model, optimizer, scheduler, step and
RNG state, through the Trainer's own resume.

A single worker runs in the driver itself: Ray Train's local mode (``num_workers=0``), which
starts no controller, worker or dataset-split actors. Each of those is a Python process that
imports torch, so each adds to a job's start-up (docs/benchmarks.md). With small data the
driver has also tokenised the rows in memory (``data.pipeline``), so no Ray Data process
starts either. Its checkpoints are marked complete in place, and when the driver dies the
job's next attempt resumes from the latest complete one (``resume_point``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.data.pipeline import PreparedData
from jobs.runtime.context import DatasetFacts, JobContext
from jobs.train.plan import CACHED_EVAL_ROWS, Plan, resume_point, schedule
from jobs.train.reports import DriverSink
from orchestrator.specs.training import TrainingJobSpec

# --- the driver side --------------------------------------------------------------------------


def fit(spec: TrainingJobSpec, ctx: JobContext, plan: Plan, data: PreparedData) -> dict[str, Any]:
    """Run the TorchTrainer; return rank 0's result (final metrics, steps)."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    scaling = spec.scaling
    local = scaling.num_workers == 1  # local mode: the loop runs here, on the driver's CPUs/GPUs
    if local:
        workers = ScalingConfig(num_workers=0)
    else:
        workers = ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker=scaling.worker_bundle(),
            placement_strategy=scaling.placement,
        )
    splits = {"train": data.train, "eval": data.eval}
    with DriverSink(ctx, in_process=local) as sink:  # the queue goes away whatever happens
        config = {"plan": asdict(plan), "reporter": sink.reporter}
        if data.in_memory:  # local mode hands the config over as it is: nothing is copied
            config["data"] = splits
        trainer = TorchTrainer(
            worker_loop,
            train_loop_config=config,
            scaling_config=workers,
            run_config=RunConfig(
                name=f"job-{ctx.job_id}",
                storage_path=str(ctx.artifact_root / "checkpoints"),
                failure_config=FailureConfig(max_failures=spec.retries),
                checkpoint_config=CheckpointConfig(num_to_keep=spec.train.keep_checkpoints),
            ),
            datasets=None if data.in_memory else splits,
        )
        pipeline = "rows tokenised in memory" if data.in_memory else "streaming through Ray Data"
        ctx.progress(
            f"training: {plan.max_steps} steps on {scaling.num_workers} worker(s); {pipeline}"
        )
        result = trainer.fit()
    if not result.return_value:
        raise RuntimeError("training finished but rank 0 returned no result")
    return dict(result.return_value)


def worker_loop(config: dict[str, Any]) -> dict[str, Any] | None:
    """``train_loop_per_worker``: a shim, so that only the workers import the worker side."""
    from jobs.train.worker import worker_loop as run

    return run(config)


# --- the whole job, as pretrain and finetune run it ---------------------------------------------


@dataclass
class Lineage:
    """Where a new model version comes from, for its registry row."""

    base_model: str | None = None
    base_version_id: int | None = None
    tokenizer_id: int | None = None


def train_and_register(
    spec: Any, ctx: JobContext, plan_fields: dict[str, Any], data: PreparedData, lineage: Lineage
) -> dict[str, Any]:
    """Schedule, fit on the cluster, then register the exported best model atomically."""
    import shutil

    max_steps, eval_steps, warmup = schedule(spec, data.splits["train"].rows)
    staging = ctx.staging_dir()
    run_dir = ctx.artifact_root / "checkpoints" / f"job-{ctx.job_id}"
    plan = Plan(
        output_dir=str(run_dir / f"hf-{ctx.attempt}"),  # no half-written folder of a dead one
        export_dir=str(staging),
        max_steps=max_steps,
        eval_steps=eval_steps,
        warmup_steps=warmup,
        train=spec.train.model_dump(),
        num_workers=spec.scaling.num_workers,
        use_gpu=spec.scaling.use_gpu,
        cpus_per_worker=spec.scaling.cpus_per_worker,
        resume_from=resume_point(run_dir) if spec.scaling.num_workers == 1 else None,
        strategy=spec.scaling.strategy,
        group_by_length=spec.data.group_by_length,
        attempt=ctx.attempt,
        cache_eval=data.splits["eval"].rows <= CACHED_EVAL_ROWS,
        **plan_fields,
    )
    result = fit(spec, ctx, plan, data)

    metrics = {**result["metrics"], "global_step": result["global_step"]}
    row = ctx.publish_model(
        staging,
        spec.name,
        plan.task,
        {
            split: DatasetFacts(info.fingerprint, _format(spec, split), {split: info.rows})
            for split, info in data.splits.items()
        },
        {
            "worker_nodes": len(set(result.get("worker_nodes", []))),
            "params_per_rank": result.get("params_per_rank"),
            "pipeline": data.pipeline,
            **_headline(metrics),
        },
        base_model=lineage.base_model,
        base_version_id=lineage.base_version_id,
        tokenizer_id=lineage.tokenizer_id,
        metrics=metrics,
    )
    shutil.rmtree(run_dir, ignore_errors=True)  # the best model is exported and registered
    return {"model": f"{spec.name}:{row.version}", "metrics": result["metrics"]}


def _format(spec: Any, split: str) -> str:
    files = spec.data.eval if split == "eval" and spec.data.eval else spec.data.train
    return files.format


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    keys = ("accuracy", "f1", "perplexity", "loss")
    return {k: round(float(metrics[k]), 4) for k in keys if k in metrics}
