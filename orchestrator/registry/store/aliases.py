"""Aliases: NAME@ALIAS points at one version of a model; every move is recorded, so that a
rollback knows where the alias pointed before."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError
from orchestrator.registry.models import Alias, AliasEvent, ModelVersion, utcnow
from orchestrator.registry.store.model_versions import get_model_version


def aliases_of(session: Session, model_id: int) -> dict[int, list[str]]:
    """version id -> alias names pointing at it."""
    out: dict[int, list[str]] = {}
    for alias in session.scalars(select(Alias).where(Alias.model_id == model_id)):
        out.setdefault(alias.model_version_id, []).append(alias.name)
    return out


def set_alias(
    session: Session, name: str, version: int, alias: str, moved_by: str | None = None
) -> int | None:
    """Point ``NAME@alias`` at ``version``; record the move. Returns the previous version."""
    target = get_model_version(session, name, version)
    pointer = session.scalar(
        select(Alias).where(Alias.model_id == target.model_id, Alias.name == alias)
    )
    previous = pointer.model_version_id if pointer else None
    if pointer is None:
        session.add(Alias(model_id=target.model_id, name=alias, model_version_id=target.id))
    else:
        pointer.model_version_id, pointer.updated_at = target.id, utcnow()
    session.add(
        AliasEvent(
            model_id=target.model_id,
            alias=alias,
            from_version_id=previous,
            to_version_id=target.id,
            moved_by=moved_by,
        )
    )
    prev_row = session.get(ModelVersion, previous) if previous else None
    return prev_row.version if prev_row else None


def previous_alias_holder(session: Session, name: str, alias: str) -> int:
    """The version ``NAME@alias`` pointed at before its latest move (what a rollback
    restores)."""
    current = get_model_version(session, name, alias=alias)
    event = session.scalar(
        select(AliasEvent)
        .where(AliasEvent.model_id == current.model_id, AliasEvent.alias == alias)
        .order_by(AliasEvent.id.desc())
        .limit(1)
    )
    previous = (
        session.get(ModelVersion, event.from_version_id)
        if event and event.from_version_id
        else None
    )
    if previous is None:
        raise NotFoundError(
            f"{name}@{alias} has no previous version to roll back to",
            hint=f"`orch models promote {name} VERSION --alias {alias}` points it anywhere",
        )
    return previous.version
