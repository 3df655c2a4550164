"""Alembic environment: runs against the engine handed over in config.attributes."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from orchestrator.registry.models import Base

MIGRATION_LOCK_ID = 4_242_001  # PostgreSQL advisory lock serialising concurrent upgrades

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
        context.run_migrations()
