"""The worker side of training: what every Ray Train worker runs (``worker_loop``), the Hugging
Face ``Trainer`` on Ray Data shards, its arguments, and the export of the best model. Imported
where training runs (``jobs.train.fit.worker_loop`` is a shim): in the Ray Train workers, or in
the driver of a one-worker job (which the warm driver host has preloaded it for).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import transformers
from torch.utils.data import DataLoader, IterableDataset
from transformers import Trainer, TrainingArguments

from jobs.data.collate import LengthGroupedBatches, PadCollate
from jobs.metrics import perplexity
from jobs.train.callbacks import MetricsReport, ReportCheckpoint, TimeBudget
from jobs.train.plan import Plan

# FSDP2 (``fully_shard``) on each transformer layer (the model's ``_no_split_modules``) and the
# root; checkpoints as torch distributed checkpoints, one shard per rank.
FSDP_CONFIG = {
    "version": 2,
    "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
    "reshard_after_forward": True,
    "state_dict_type": "SHARDED_STATE_DICT",
}


def worker_loop(config: dict[str, Any]) -> dict[str, Any] | None:
    """``train_loop_per_worker``: train on this worker's shard, resume after restarts."""
    import ray.train

    plan, reporter = Plan(**config["plan"]), config["reporter"]
    rank = ray.train.get_context().get_world_rank()
    # Ray Train hands back the latest complete checkpoint of this run: after a worker group
    # restart, and also to a new attempt's driver (same run name and storage: Ray reloads
    # its checkpoint list from the run folder). A single worker (local mode, in the driver)
    # gets it from the plan: the driver looked for it in the earlier attempts' folders.
    checkpoint = ray.train.get_checkpoint()
    resume = str(Path(checkpoint.path) / "checkpoint") if checkpoint else plan.resume_from
    if rank == 0:
        _report_start(plan, reporter, resume)
    nodes = _worker_nodes()
    if plan.num_workers == 1:  # Ray sets a worker actor's threads from its CPUs; not ours
        import torch

        torch.set_num_threads(max(1, int(plan.cpus_per_worker)))
    metrics = MetricsReport(reporter, plan.task, plan.max_steps, plan.num_workers)
    trainer = build_trainer(plan, metrics if rank == 0 else None, config.get("data"))
    trainer.train(resume_from_checkpoint=resume)

    params = _params_per_rank(trainer.model_wrapped)
    final = trainer.evaluate(metric_key_prefix="final")
    if plan.task == "fill-mask":
        final["final_perplexity"] = perplexity(final["final_loss"])
    export(trainer, plan)  # every rank: a sharded model is gathered collectively
    if trainer.is_world_process_zero():
        metrics.send(final, trainer.state.global_step, "final")
        return {
            "metrics": {
                k.removeprefix("final_"): v
                for k, v in final.items()
                if k
                not in (
                    "final_runtime",
                    "final_samples_per_second",
                    "final_steps_per_second",
                    "epoch",
                )
            },
            "global_step": trainer.state.global_step,
            "worker_nodes": nodes,
            "params_per_rank": params,
            "best_checkpoint": trainer.state.best_model_checkpoint,
        }
    return None


def _worker_nodes() -> list[str]:
    """The Ray node of every rank (where the placement strategy put the workers)."""
    import ray
    import torch.distributed as dist

    node = ray.get_runtime_context().get_node_id()
    if not dist.is_available() or not dist.is_initialized():
        return [node]
    nodes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(nodes, node)
    return [str(n) for n in nodes]


def _params_per_rank(model: Any) -> list[int]:
    """The parameters each rank holds: the whole model under DDP, its shard under FSDP."""
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    local = sum(
        p.to_local().numel() if isinstance(p, DTensor) else p.numel() for p in model.parameters()
    )
    if not dist.is_available() or not dist.is_initialized():
        return [local]
    counts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(counts, local)
    return [int(c) for c in counts]


def _report_start(plan: Plan, reporter: Any, resume: str | None) -> None:
    """Rank 0 tells the driver how this worker group starts: a restart within this attempt
    (a marker in the attempt's output folder, which every node sees, says an earlier group
    started) is RETRYING then RUNNING; the first group of a later attempt notes where the
    job resumes."""
    marker = Path(plan.output_dir) / ".started"
    if marker.exists():
        reporter.restarted(*_restart_facts(resume))
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    if plan.attempt > 1:
        how = _restart_facts(resume)[1]
        reporter.note(f"attempt {plan.attempt}: {how}")


def _restart_facts(checkpoint_dir: str | None) -> tuple[str, str]:
    """(why, how) of a restart of the worker group, for the job's RETRYING/RUNNING events."""
    import json

    if checkpoint_dir is None:
        why, how = "restarting from scratch: no complete checkpoint yet", "restarted from step 0"
    else:
        state = json.loads((Path(checkpoint_dir) / "trainer_state.json").read_text())
        step = state.get("global_step", "?")
        why = f"restarting from the checkpoint at step {step}"
        how = f"resumed from step {step} ({checkpoint_dir})"
    return f"a worker or node died; {why}", how


def build_model(plan: Plan) -> Any:
    if plan.model_config is not None:  # pretraining from scratch
        config = transformers.AutoConfig.for_model(**plan.model_config)
        return transformers.AutoModelForMaskedLM.from_config(config)
    assert plan.model_dir is not None
    if plan.task == "fill-mask":
        return transformers.AutoModelForMaskedLM.from_pretrained(
            plan.model_dir, use_safetensors=True
        )
    names = plan.label_names or [str(i) for i in range(plan.num_labels or 2)]
    model_class = (
        transformers.AutoModelForTokenClassification
        if plan.task == "token-classification"
        else transformers.AutoModelForSequenceClassification
    )
    return model_class.from_pretrained(
        plan.model_dir,
        use_safetensors=True,
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
        ignore_mismatched_sizes=True,
    )


def training_args(plan: Plan) -> TrainingArguments:
    t = plan.train
    best = plan.best_metric
    extra: dict[str, Any] = {}
    if plan.strategy == "fsdp":
        extra["fsdp"] = True
        extra["fsdp_config"] = FSDP_CONFIG
    return TrainingArguments(
        output_dir=plan.output_dir,
        max_steps=plan.max_steps,
        per_device_train_batch_size=t["batch_size"],
        per_device_eval_batch_size=t["eval_batch_size"],
        gradient_accumulation_steps=t["grad_accum"],
        learning_rate=t["lr"],
        weight_decay=t["weight_decay"],
        warmup_steps=plan.warmup_steps,
        lr_scheduler_type=t["lr_schedule"],
        max_grad_norm=t["max_grad_norm"],
        seed=t["seed"],
        bf16=t["precision"] == "bf16",  # autocast; the master weights stay fp32
        fp16=t["precision"] == "fp16",
        tf32=True if plan.use_gpu and _tf32_available() else None,  # fp32 matmuls on tensor cores
        optim="adamw_torch_fused",  # one kernel for all parameters (CPU and GPU)
        torch_compile=t.get("compile", False),
        use_cpu=not plan.use_gpu,
        logging_steps=t["logging_steps"],
        eval_strategy="steps",
        eval_steps=plan.eval_steps,
        save_strategy="steps",
        save_steps=t["save_steps"] or plan.eval_steps,
        # a single worker rotates its own checkpoints (ReportCheckpoint): after marking the new
        # one complete, so that a death while deleting never leaves a half-deleted one latest
        save_total_limit=None if plan.num_workers == 1 else t["keep_checkpoints"],
        load_best_model_at_end=True,
        metric_for_best_model=f"eval_{best}",
        greater_is_better=best != "loss",
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        prediction_loss_only=plan.task == "fill-mask",
        label_names=["labels"],
        average_tokens_across_devices=False,  # else DDP reports loss x world size
        ddp_find_unused_parameters=False,
        dataloader_pin_memory=plan.use_gpu,
        **extra,
    )


def _tf32_available() -> bool:
    from transformers.utils import is_torch_tf32_available

    return bool(is_torch_tf32_available())


def build_trainer(
    plan: Plan, metrics: MetricsReport | None, in_memory: dict[str, Any] | None = None
) -> Any:
    """The Trainer on this worker's Ray Data shards, or on the splits the driver tokenised in
    memory (``in_memory``: ``TokenizedRows``, which iterate as a shard does)."""
    import ray.train

    from jobs.metrics import argmax_logits, compute_metrics_fn, token_metrics_fn

    collate = PadCollate(
        plan.tokenizer_dir,
        plan.mlm_probability,
        8 if plan.use_gpu else None,
        token_labels=plan.task == "token-classification",
    )
    batch = plan.train["batch_size"]
    splits = in_memory or {name: ray.train.get_dataset_shard(name) for name in ("train", "eval")}
    train_shard = splits["train"]
    if plan.group_by_length:
        train_iter: Any = LengthGroupedBatches(train_shard, batch, collate, plan.train["seed"])
    else:
        train_iter = train_shard.iter_torch_batches(
            batch_size=batch, collate_fn=collate, prefetch_batches=2
        )
    eval_iter: Any = splits["eval"].iter_torch_batches(
        batch_size=plan.train["eval_batch_size"], collate_fn=collate
    )
    if plan.cache_eval:
        eval_iter = ReplayedBatches(eval_iter)
    in_place = plan.num_workers == 1
    if in_place and in_memory is None:  # Ray Data's processes start while the model is built
        train_iter = StartedEarly(train_iter)
    callbacks: list[Any] = [ReportCheckpoint(in_place, plan.train["keep_checkpoints"])]
    if plan.train.get("max_seconds"):
        callbacks.append(TimeBudget(plan.train["max_seconds"]))
    if metrics is not None:  # rank 0
        callbacks.append(metrics)
    compute, preprocess = None, None
    if plan.task == "text-classification":
        compute = compute_metrics_fn(plan.metrics, plan.num_labels or 2)
    elif plan.task == "token-classification":  # argmax per batch: no logits accumulate
        compute, preprocess = token_metrics_fn(plan.metrics, plan.label_names or []), argmax_logits
    transformers.set_seed(plan.train["seed"])  # the new head's weights: the Trainer seeds later
    return ShardTrainer(
        model=build_model(plan),
        args=training_args(plan),
        train_dataset=train_iter,
        eval_dataset=eval_iter,
        processing_class=transformers.AutoTokenizer.from_pretrained(plan.tokenizer_dir),
        compute_metrics=compute,
        preprocess_logits_for_metrics=preprocess,
        callbacks=callbacks,
    )


class ReplayedBatches:
    """The eval shard's batches, kept from the first evaluation and replayed for the next
    ones: each pass over a Ray Data shard runs the pipeline again, starting a new pool of
    tokenizer actors, whose start-up costs more than evaluating a small eval set. MLM masks
    are then the same at every evaluation, so losses compare."""

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable
        self.batches: list[Any] | None = None

    def __iter__(self) -> Any:
        if self.batches is not None:
            yield from self.batches
            return
        seen = []
        for batch in self.iterable:
            seen.append(batch)
            yield batch
        self.batches = seen  # only a complete pass is replayed


class StartedEarly:
    """An iterable whose first item is fetched at once, in a thread, while the caller goes on.

    A Ray Data shard starts its pipeline (read tasks, a tokenizer actor: new processes) when
    it is first iterated, which the ``Trainer`` does after building the model, the optimizer
    and its dataloader; a single worker starts it here instead, while it builds them. Only the
    first item comes from the thread: the rest of that pass continues in the consumer's thread
    (a thread collating every batch would compete with the training step for the cores), and
    later passes (epochs) iterate as usual."""

    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable
        self.source = iter(iterable)
        self.head: list[Any] = []
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = threading.Thread(
            target=self._first, name="first-item", daemon=True
        )
        self.thread.start()

    def _first(self) -> None:
        try:
            self.head.append(next(self.source))
        except StopIteration:
            pass
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer
            self.error = exc

    def __iter__(self) -> Any:
        if self.thread is None:
            yield from self.iterable
            return
        self.thread.join()
        self.thread = None
        if self.error is not None:
            raise self.error
        yield from self.head
        yield from self.source


class _Batches(IterableDataset):
    def __init__(self, iterable: Any) -> None:
        self.iterable = iterable

    def __iter__(self) -> Any:
        return iter(self.iterable)


class ShardTrainer(Trainer):
    """Feeds the Trainer ready-made batches from a Ray Data shard (what Ray's
    ``prepare_trainer`` does, extended to our length-grouped iterable). The shards are
    already split per worker, so the dataloaders are not sharded again.

    With ``fsdp`` it also shards on CPU: accelerate turns its FSDP plugin on only for GPU-like
    devices and silently falls back to DDP on CPU, although FSDP2's ``fully_shard`` trains
    over gloo. Turning the plugin on for CPU keeps the whole of accelerate's FSDP2 path:
    per-layer sharding, sharded (torch distributed checkpoint) saves and resumes, and the
    best-model reload.
    """

    def create_accelerator_and_postprocess(self) -> None:
        super().create_accelerator_and_postprocess()
        if self.args.fsdp_plugin_args is not None and not self.is_fsdp_enabled:
            from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

            state = self.accelerator.state
            state.distributed_type = DistributedType.FSDP
            state.fsdp_plugin = FullyShardedDataParallelPlugin(**self.args.fsdp_plugin_args)
            self.is_fsdp_enabled = True

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Every rank takes rank 0's best checkpoint. Each rank decides it by looking for the
        best step's folder on disk, while rank 0 alone deletes old checkpoints; after a worker
        group resumes, the ranks can disagree, and at the end rank 0 would wait in the
        collective load of the best model while another rank has moved on: a hang."""
        super()._save_checkpoint(model, trial)
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            best = [self.state.best_model_checkpoint]
            dist.broadcast_object_list(best, src=0)
            self.state.best_model_checkpoint = best[0]

    def get_train_dataloader(self) -> DataLoader:
        return DataLoader(_Batches(self.train_dataset), batch_size=None)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        return DataLoader(_Batches(eval_dataset or self.eval_dataset), batch_size=None)


def export(trainer: Any, plan: Plan) -> None:
    """The best model (loaded at the end of training) and its tokenizer, as safetensors: one
    whole model that ``from_pretrained`` loads. Called on every rank: a sharded model's full
    state dict is gathered collectively, then rank 0 writes it."""
    if trainer.is_fsdp_enabled:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(
            trainer.model_wrapped, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(plan.export_dir, state_dict=full)
    elif trainer.is_world_process_zero():
        trainer.save_model(plan.export_dir)
    if not trainer.is_world_process_zero():
        return
    trainer.processing_class.save_pretrained(plan.export_dir)
    pickled = Path(plan.export_dir) / "training_args.bin"  # torch.save: no pickles in artifacts
    pickled.unlink(missing_ok=True)
    (Path(plan.export_dir) / "training_args.json").write_text(trainer.args.to_json_string())
