"""Metrics a job reports: a named value by step, epoch and split."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.registry.models import Metric


def add_metrics(session: Session, job_id: int, rows: list[dict[str, Any]]) -> None:
    """rows: {name, value, step?, epoch?, split?}"""
    session.add_all(Metric(job_id=job_id, **row) for row in rows)


def job_metrics(session: Session, job_id: int, name: str | None = None) -> list[Metric]:
    """A job's metrics (one name, or all), by split, name and step."""
    query = select(Metric).where(Metric.job_id == job_id)
    if name:
        query = query.where(Metric.name == name)
    return list(session.scalars(query.order_by(Metric.split, Metric.name, Metric.step, Metric.id)))
