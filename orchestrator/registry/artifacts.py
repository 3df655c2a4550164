"""Artifacts become registry rows atomically: a staged folder is renamed to its final place
in the transaction that adds its row, so a reader never sees a row without its files nor a
version folder without its row. Used by the jobs (through their context) and by
`orch models import`."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.registry.store import Registry

PUBLISH_ATTEMPTS = 5
Row = TypeVar("Row", bound=Any)


def publish_folder(
    registry: Registry,
    staging: Path,
    parent: Path,
    add: Callable[[Session], Row],
    finish: Callable[[Session, Row], None] | None = None,
) -> Row:
    """Add the row (``add`` returns it, with a ``version`` and an ``artifact_uri``), move
    ``staging`` to ``parent/v<version>`` and run ``finish`` in the same transaction. If
    anything fails the folder goes back to staging and nothing is committed; a concurrent
    writer that took the same version number makes it try again. ``staging`` is gone
    afterwards either way."""
    moved: list[Path] = []

    def undo_move() -> None:
        while moved:
            os.rename(moved.pop(), staging)

    try:
        for attempt in range(PUBLISH_ATTEMPTS):
            try:
                with registry.session() as session:
                    row = add(session)
                    final = parent / f"v{row.version}"
                    parent.mkdir(parents=True, exist_ok=True)
                    if final.exists():  # left by a crash between rename and commit
                        shutil.rmtree(final)
                    os.rename(staging, final)
                    moved.append(final)
                    row.artifact_uri = str(final)
                    if finish is not None:
                        finish(session, row)
                return row
            except IntegrityError:  # a concurrent writer took the same version number
                undo_move()
                if attempt == PUBLISH_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
            except BaseException:
                undo_move()
                raise
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        shutil.rmtree(staging, ignore_errors=True)
