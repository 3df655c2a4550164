"""Deployments: the endpoints serving model versions; a name has at most one live row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError
from orchestrator.registry.models import Deployment, DeploymentStatus, utcnow


def live_deployment(session: Session, name: str) -> Deployment | None:
    """The endpoint ``name`` unless it was deleted."""
    return session.scalar(
        select(Deployment)
        .where(Deployment.name == name, Deployment.status != DeploymentStatus.DELETED)
        .order_by(Deployment.id.desc())
        .limit(1)
    )


def get_deployment(session: Session, name: str) -> Deployment:
    row = live_deployment(session, name)
    if row is None:
        raise NotFoundError(
            f"no endpoint named {name}",
            hint=f"`orch serve {name}@production` deploys one; `orch endpoints list` shows all",
        )
    return row


def list_deployments(session: Session, include_deleted: bool = False) -> list[Deployment]:
    """By name, the newest row first; the deleted ones only when asked."""
    query = select(Deployment).order_by(Deployment.name, Deployment.id.desc())
    if not include_deleted:
        query = query.where(Deployment.status != DeploymentStatus.DELETED)
    return list(session.scalars(query))


def save_deployment(session: Session, name: str, **fields: Any) -> Deployment:
    """Update the live endpoint ``name`` or record a new one."""
    row = live_deployment(session, name)
    if row is None:
        row = Deployment(name=name, **fields)
        session.add(row)
    else:
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    session.flush()
    return row
