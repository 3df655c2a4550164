"""Submitting jobs and following them: the Python API behind `orch submit` and `--wait`."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.config import Settings
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.registry.models import JobEvent

HEARTBEAT_FRESH_S = 10.0


def submit_spec(
    registry: Registry,
    spec: Any,
    priority: int = 0,
    code_version: str | None = None,
    submitted_by: str | None = None,
) -> int:
    """Insert a QUEUED job for a validated spec and return its id (no Ray involved)."""
    with registry.session() as session:
        task = model_task_of(spec)
        if task is not None:  # refused now rather than after hours of training
            store.check_model_task(session, spec.name, task)
        job = store.create_job(
            session,
            kind=spec.kind,
            name=spec.name,
            spec=spec.model_dump(mode="json"),
            resources={"bundles": spec.gang()},
            priority=priority,
            code_version=code_version,
            submitted_by=submitted_by or _user(),
        )
        return job.id


def model_task_of(spec: Any) -> str | None:
    """The task of the model version a job registers (None: it registers no model)."""
    if spec.kind == "pretrain":
        return "fill-mask"
    if spec.kind == "finetune":
        return str(spec.task)
    return None


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def scheduler_heartbeat(settings: Settings, registry: Registry) -> tuple[dict, float] | None:
    from orchestrator.scheduler.service import HEARTBEAT_KEY

    with registry.session() as session:
        return store.get_state(session, HEARTBEAT_KEY.format(key=settings.registry_key))


def check_fits(settings: Settings, registry: Registry, spec: Any) -> None:
    """Refuse, at submit time, a job whose gang cannot fit the cluster even at its largest
    (its live nodes and every node its autoscaler may add), as the scheduler last saw it."""
    from orchestrator.errors import UsageError
    from orchestrator.scheduler.admission import Request, never_fits

    beat = scheduler_heartbeat(settings, registry)
    largest = beat[0].get("largest") if beat is not None and beat[1] < 60 else None
    if not largest:
        return  # no recent view of the cluster: the scheduler will say why it waits
    why = never_fits(Request(0, 0, tuple(spec.gang())), largest)
    if why:
        raise UsageError(
            f"this job can never start on this cluster, even at its largest: {why}",
            hint="ask for fewer or smaller workers (scaling: or resources:)",
        )


def ensure_scheduler(settings: Settings, registry: Registry, start_cluster: bool = True) -> None:
    """Make sure a scheduler serves this registry, starting the local cluster if needed.
    Cheap when the scheduler's heartbeat is fresh: Ray is not even imported then."""

    def fresh() -> bool:
        beat = scheduler_heartbeat(settings, registry)
        return beat is not None and beat[1] < HEARTBEAT_FRESH_S

    if fresh():
        return
    from orchestrator.ray_client import connection, local, scheduler_host

    with local.file_lock(settings.cluster_dir / "scheduler.lock"):
        if fresh():  # another `orch submit` started it while we waited
            return
        info = connection.resolve_cluster(settings, start=start_cluster)
        scheduler_host.ensure_scheduler(settings, info)


@dataclass
class Outcome:
    status: str
    error: str | None
    result: dict[str, Any] | None


def follow(
    registry: Registry,
    job_id: int,
    on_event: Callable[[JobEvent], None],
    on_progress: Callable[[str], None],
    poll: float = 0.5,
    timeout: float | None = None,
) -> Outcome:
    """Report each new event and progress message of a job until it ends."""
    seen, last_progress = 0, None
    deadline = time.monotonic() + timeout if timeout else None
    while True:
        with registry.session() as session:
            job = store.get_job(session, job_id)
            events = list(job.events)[seen:]
            status, progress, error, result = job.status, job.progress, job.error, job.result
        for event in events:
            on_event(event)
        seen += len(events)
        if progress and progress != last_progress:
            on_progress(progress)
            last_progress = progress
        if JobStatus(status).terminal:
            return Outcome(status, error, result)
        if deadline and time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {status} after {timeout:.0f}s")
        time.sleep(poll)
