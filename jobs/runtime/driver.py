"""Entry point of every job's driver: ``python -m jobs.runtime.driver JOB_ID``.

The scheduler submits this through the Ray Jobs API. The driver reads its spec from the
registry, marks itself RUNNING, runs the job kind's module, and either publishes the result
(which marks the job SUCCEEDED in the same transaction) or records FAILED with the reason.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import sys
import traceback

from jobs.errors import JobInputError
from jobs.runtime.context import JobContext
from orchestrator.config import load_settings
from orchestrator.errors import USER_ERRORS
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec

RUNNERS = {
    "tokenizer": "jobs.tokenizer",
    "pretrain": "jobs.pretrain",
    "finetune": "jobs.finetune",
    "evaluate": "jobs.evaluate",
}
MAX_ERROR_CHARS = 4000
RAY_KINDS = ("pretrain", "finetune", "evaluate")  # start Ray tasks, actors and Train workers


def describe_failure(exc: BaseException) -> str:
    """The one message `orch jobs show` prints: ours verbatim, others with their type."""
    if isinstance(exc, (JobInputError, *USER_ERRORS)):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " ..."


def keep_the_registry_url_on_the_driver() -> None:
    """Ray gives a job's environment variables to every task and actor the job starts (Ray
    Data actors, Train workers): connect with the registry URL blanked in the runtime env, so
    the database URL (and any password in it) stays on the driver. Workers report to the
    driver instead (``jobs/train/reports.py``)."""
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ or not os.environ.get("ORCH_REGISTRY_URL"):
        return  # not a Ray job driver (tests call run_job directly), or nothing to hide
    import ray

    os.environ["RAY_OVERRIDE_JOB_RUNTIME_ENV"] = "1"  # ours wins over the job's, per variable
    ray.init(runtime_env={"env_vars": {"ORCH_REGISTRY_URL": ""}})


def run_job(job_id: int) -> int:
    settings = load_settings()
    registry = Registry(settings.resolved_registry_url)
    with registry.session() as session:
        job = store.get_job(session, job_id)
        spec_data, code_version, attempt = job.spec, job.code_version, job.attempts
        moved = store.transition(
            session,
            job_id,
            JobStatus.RUNNING,
            f"driver started on {socket.gethostname()} (pid {os.getpid()})",
        )
        startable = moved or store.get_job(session, job_id).status == JobStatus.RUNNING
    if not startable:
        logging.error("job %s is not startable (cancelled or already finished)", job_id)
        return 1
    ctx = JobContext(
        job_id, registry, settings.resolved_artifact_root, code_version, max(1, attempt)
    )
    try:
        spec = parse_spec(spec_data, check_files=False)
        if spec.kind in RAY_KINDS:
            keep_the_registry_url_on_the_driver()
        module = importlib.import_module(RUNNERS[spec.kind])
        result = module.run(spec, ctx)
        logging.info("job %s succeeded: %s", job_id, result)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the registry
        traceback.print_exc()
        with registry.session() as session:
            if store.get_job(session, job_id).cancel_requested:  # stopped on the user's request
                store.transition(
                    session, job_id, JobStatus.CANCELLED, "cancelled by user", progress=None
                )
            else:
                store.transition(
                    session,
                    job_id,
                    JobStatus.FAILED,
                    "the job raised an error",
                    error=describe_failure(exc),
                    progress=None,
                )
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m jobs.runtime.driver JOB_ID", file=sys.stderr)
        return 2
    return run_job(int(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
