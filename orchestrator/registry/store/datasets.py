"""Datasets: the content (fingerprint) a job read at a uri, recorded once."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.registry.models import Dataset


def upsert_dataset(
    session: Session,
    *,
    uri: str,
    fingerprint: str,
    format: str,
    files: list[dict[str, Any]],
    num_rows: dict[str, int],
    size_bytes: int,
) -> Dataset:
    """The dataset row for this content at this uri, created on first sight."""
    existing = session.scalar(
        select(Dataset).where(Dataset.fingerprint == fingerprint, Dataset.uri == uri)
    )
    if existing is not None:
        existing.num_rows = {**existing.num_rows, **num_rows}
        return existing
    dataset = Dataset(
        uri=uri,
        fingerprint=fingerprint,
        format=format,
        files=files,
        num_rows=num_rows,
        size_bytes=size_bytes,
    )
    session.add(dataset)
    session.flush()
    return dataset


def list_datasets(session: Session, limit: int | None = 100) -> list[Dataset]:
    """The newest datasets first."""
    query = select(Dataset).order_by(Dataset.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))
