"""The audit log: who did what to which target, with the state before and after."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.registry.models import AuditEntry


def audit(
    session: Session,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, before=before, after=after))


def list_audit(
    session: Session, limit: int = 100, actor: str | None = None, action: str | None = None
) -> list[AuditEntry]:
    """The newest entries first, filtered by actor and action."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query))
