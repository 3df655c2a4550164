"""The registry's door: one engine per registry URL, short transactions, UTC datetimes.

The engine's settings per backend (SQLite's ``BEGIN IMMEDIATE`` for read-modify-write,
PostgreSQL's pool) live in ``orchestrator.registry.db``; the query modules beside this one
take the ``Session`` that ``Registry.session()`` hands out, so that several of them can share
one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from orchestrator.registry.db import get_engine, session_scope


def as_utc(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    if dt is None:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


class Registry:
    """Owns the engine for one registry URL; hands out short transactions."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or get_engine(url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.engine) as session:
            yield session
