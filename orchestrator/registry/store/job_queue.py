"""The scheduler's view of the jobs: the queue in admission order and the active jobs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from orchestrator.registry.models import ACTIVE_STATUSES, Job, JobStatus


def queued_jobs(session: Session) -> list[Job]:
    """The queue in admission order: higher priority first, then first come first served."""
    return list(
        session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED).order_by(Job.priority.desc(), Job.id)
        )
    )


def queue_mark(session: Session) -> tuple[int, int | None]:
    """How many jobs are queued and the newest one's id: a cheap query that changes when a
    job joins the queue (the scheduler polls it between its passes)."""
    row = session.execute(
        select(func.count(Job.id), func.max(Job.id)).where(Job.status == JobStatus.QUEUED)
    ).one()
    return int(row[0]), row[1]


def active_jobs(session: Session) -> list[Job]:
    """The jobs between admission and their end, oldest first."""
    return list(
        session.scalars(
            select(Job).where(Job.status.in_([s.value for s in ACTIVE_STATUSES])).order_by(Job.id)
        )
    )
