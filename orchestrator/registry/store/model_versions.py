"""Models and their versions: a name holds versions of one task."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError, UsageError
from orchestrator.registry.models import Alias, Model, ModelVersion
from orchestrator.registry.store.versioning import next_version


def find_model(session: Session, name: str) -> Model | None:
    return session.scalar(select(Model).where(Model.name == name))


def check_model_task(session: Session, name: str, task: str) -> None:
    """A model name holds versions of one task: an endpoint that follows NAME@ALIAS, a
    fine-tune from it or an evaluation can count on the task."""
    model = find_model(session, name)
    if model is not None and model.task != task:
        raise UsageError(
            f"model {name} holds {model.task} versions; register a {task} model under another name"
        )


def add_model_version(session: Session, *, name: str, task: str, **fields: Any) -> ModelVersion:
    """Register the next version of model ``name`` (created on first use)."""
    check_model_task(session, name, task)
    model = session.scalar(select(Model).where(Model.name == name))
    if model is None:
        model = Model(name=name, task=task)
        session.add(model)
        session.flush()
    version = next_version(session, ModelVersion.version, ModelVersion.model_id == model.id)
    row = ModelVersion(model_id=model.id, version=version, task=task, **fields)
    session.add(row)
    session.flush()
    return row


def get_model_version(
    session: Session, name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """NAME (latest), NAME:VERSION or NAME@ALIAS."""
    model = session.scalar(select(Model).where(Model.name == name))
    which = f"{name}@{alias}" if alias else (f"{name}:{version}" if version else name)
    row = None
    if model is not None:
        if alias:
            pointer = session.scalar(
                select(Alias).where(Alias.model_id == model.id, Alias.name == alias)
            )
            row = session.get(ModelVersion, pointer.model_version_id) if pointer else None
        else:
            query = select(ModelVersion).where(ModelVersion.model_id == model.id)
            query = (
                query.where(ModelVersion.version == version)
                if version
                else query.order_by(ModelVersion.version.desc()).limit(1)
            )
            row = session.scalar(query)
    if row is None:
        raise NotFoundError(
            f"model {which} is not registered",
            hint="`orch models list` shows the registered models",
        )
    return row


def list_model_versions(
    session: Session, task: str | None = None, name: str | None = None
) -> list[ModelVersion]:
    """By model name, the newest version first."""
    query = select(ModelVersion).join(Model).order_by(Model.name, ModelVersion.version.desc())
    if task:
        query = query.where(ModelVersion.task == task)
    if name:
        query = query.where(Model.name == name)
    return list(session.scalars(query))
