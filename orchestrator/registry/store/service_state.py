"""Service state: a JSON value under a key with the time it was written (the scheduler's
heartbeat: its last view of the cluster)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from orchestrator.registry.models import ServiceState, utcnow
from orchestrator.registry.store.session import as_utc


def put_state(session: Session, key: str, value: dict[str, Any]) -> None:
    row = session.get(ServiceState, key)
    if row is None:
        session.add(ServiceState(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()


def get_state(session: Session, key: str) -> tuple[dict[str, Any], float] | None:
    """The value and its age in seconds, or None."""
    row = session.get(ServiceState, key)
    if row is None:
        return None
    updated = as_utc(row.updated_at)
    assert updated is not None
    return row.value, (utcnow() - updated).total_seconds()
