"""Alembic environment: runs against the engine handed over in config.attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from orchestrator.registry.models import Base

MIGRATION_LOCK_ID = 4_242_001  # PostgreSQL advisory lock serialising concurrent upgrades

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
        # SQLite's DDL is transactional, but Alembic assumes not and commits after each
        # revision: a second process taking the lock in between would read an older revision
        # and apply the next one again ("duplicate column"). One transaction (the
        # engine's BEGIN IMMEDIATE) holds the write lock from the revision read to the end.
        transactional_ddl=True if sqlite else None,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.run_migrations()
