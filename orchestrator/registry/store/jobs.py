"""Jobs and their events: submit, move between states, note, read, cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError
from orchestrator.registry.models import ACTIVE_STATUSES, Job, JobEvent, JobStatus, utcnow

# Which states a job may move to from which: anything else is ignored, so a late or
# duplicate report (the driver and the scheduler both saw the end) never rewrites history.
ALLOWED_FROM: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.QUEUED: (JobStatus.RETRYING,),  # requeued after its driver died
    JobStatus.STARTING: (JobStatus.QUEUED,),
    JobStatus.RUNNING: (JobStatus.STARTING, JobStatus.RETRYING),
    JobStatus.RETRYING: (JobStatus.STARTING, JobStatus.RUNNING),
    JobStatus.SUCCEEDED: ACTIVE_STATUSES,
    JobStatus.FAILED: (JobStatus.QUEUED, *ACTIVE_STATUSES),
    JobStatus.CANCELLED: (JobStatus.QUEUED, *ACTIVE_STATUSES),
}


def create_job(
    session: Session,
    *,
    kind: str,
    name: str,
    spec: dict[str, Any],
    resources: dict[str, float],
    priority: int = 0,
    code_version: str | None = None,
    submitted_by: str | None = None,
) -> Job:
    """A new QUEUED job and its first event."""
    job = Job(
        kind=kind,
        name=name,
        spec=spec,
        resources=resources,
        priority=priority,
        status=JobStatus.QUEUED,
        code_version=code_version,
        submitted_by=submitted_by,
    )
    session.add(job)
    session.flush()
    session.add(
        JobEvent(
            job_id=job.id,
            from_status=None,
            to_status=JobStatus.QUEUED,
            reason=f"submitted with priority {priority}",
        )
    )
    return job


def transition(session: Session, job_id: int, to: JobStatus, reason: str, **fields: Any) -> bool:
    """Move a job to ``to`` if its current state allows it; record the event. True if moved."""
    current = session.scalar(select(Job.status).where(Job.id == job_id))
    if current is None:
        raise NotFoundError(f"job {job_id} does not exist")
    values: dict[str, Any] = {"status": to, **fields}
    if to == JobStatus.RUNNING:
        values.setdefault("started_at", utcnow())
    if to in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        values.setdefault("finished_at", utcnow())
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in ALLOWED_FROM[to]]))
        .values(**values)
    )
    moved = cast(CursorResult[Any], result).rowcount
    if moved:
        session.add(JobEvent(job_id=job_id, from_status=current, to_status=to, reason=reason))
    return bool(moved)


def note(session: Session, job_id: int, reason: str) -> None:
    """An event that changes no state (e.g. which checkpoint a new attempt resumed from)."""
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        raise NotFoundError(f"job {job_id} does not exist")
    session.add(JobEvent(job_id=job_id, from_status=status, to_status=status, reason=reason))


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(
            f"job {job_id} does not exist",
            hint="`orch jobs list` shows the jobs this registry knows",
        )
    return job


def list_jobs(
    session: Session,
    status: Sequence[str] = (),
    kind: Sequence[str] = (),
    limit: int | None = 50,
    submitted_by: str | None = None,
) -> list[Job]:
    """The newest jobs first, filtered by submitter, status and kind."""
    query = select(Job).order_by(Job.id.desc())
    if submitted_by:
        query = query.where(Job.submitted_by == submitted_by)
    if status:
        query = query.where(Job.status.in_(list(status)))
    if kind:
        query = query.where(Job.kind.in_(list(kind)))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def request_cancel(session: Session, job_id: int, by: str | None = None) -> str:
    """Cancel a queued job at once, or flag an active one for the scheduler to stop."""
    status = get_job(session, job_id).status
    if status == JobStatus.QUEUED:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, finished_at=utcnow())
        )
        session.add(
            JobEvent(
                job_id=job_id,
                from_status=status,
                to_status=JobStatus.CANCELLED,
                reason=f"cancelled by {by or 'user'} while queued",
            )
        )
        return JobStatus.CANCELLED
    if JobStatus(status).terminal:
        return status
    session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    if by:
        note(session, job_id, f"{by} asked to cancel it")
    return "CANCEL_REQUESTED"


def set_progress(session: Session, job_id: int, message: str) -> None:
    """The job's latest progress line (what `--wait` and the API show while it runs)."""
    session.execute(update(Job).where(Job.id == job_id).values(progress=message))
