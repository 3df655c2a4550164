"""Apply Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from orchestrator.registry.db import MIGRATIONS_DIR


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(cfg: Config) -> str | None:
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Bring the schema to the latest revision; cheap when it is already there.

    Concurrent first uses are safe: env.py takes a database-level lock (BEGIN IMMEDIATE on
    SQLite, an advisory lock on PostgreSQL) and re-reads the revision under it.
    """
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cfg = alembic_config(engine)
    if current_revision(engine) == head_revision(cfg):
        return
    command.upgrade(cfg, "head")
