"""Tokenizers: versions under a name, the latest one by default."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError
from orchestrator.registry.models import Tokenizer
from orchestrator.registry.store.versioning import next_version


def add_tokenizer(session: Session, **fields: Any) -> Tokenizer:
    """Register the next version of ``fields['name']``."""
    version = next_version(session, Tokenizer.version, Tokenizer.name == fields["name"])
    tokenizer = Tokenizer(version=version, **fields)
    session.add(tokenizer)
    session.flush()
    return tokenizer


def list_tokenizers(
    session: Session, name: str | None = None, limit: int | None = 100
) -> list[Tokenizer]:
    """By name, the newest version first."""
    query = select(Tokenizer).order_by(Tokenizer.name, Tokenizer.version.desc())
    if name:
        query = query.where(Tokenizer.name == name)
    return list(session.scalars(query.limit(limit) if limit else query))


def get_tokenizer(session: Session, name: str, version: int | None = None) -> Tokenizer:
    """NAME:VERSION, or NAME's latest version."""
    query = select(Tokenizer).where(Tokenizer.name == name)
    query = (
        query.where(Tokenizer.version == version)
        if version
        else query.order_by(Tokenizer.version.desc()).limit(1)
    )
    tokenizer = session.scalar(query)
    if tokenizer is None:
        which = f"{name}:{version}" if version else name
        raise NotFoundError(
            f"tokenizer {which} is not registered",
            hint="`orch tokenizers list` shows the registered tokenizers",
        )
    return tokenizer
