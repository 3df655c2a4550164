"""What a running job driver gets: its job id, the registry, and the artifact root, with
the two things every job kind does through them (report progress, publish its result)."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orchestrator.registry import JobStatus, Registry, store

log = logging.getLogger("orch.job")
PUBLISH_ATTEMPTS = 5


@dataclass
class JobContext:
    job_id: int
    registry: Registry
    artifact_root: Path
    code_version: str | None = None

    def progress(self, message: str) -> None:
        """Shown by `orch jobs show` and `orch submit --wait` while the job runs."""
        log.info(message)
        with self.registry.session() as session:
            store.set_progress(session, self.job_id, message)

    def staging_dir(self) -> Path:
        """A fresh private folder on the artifact root's filesystem (so the final move is an
        atomic rename). Nothing in it is visible to anyone until ``publish``."""
        path = self.artifact_root / ".staging" / f"job-{self.job_id}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    def publish(
        self,
        staging: Path,
        parent: Path,
        register: Callable[[Session, Callable[[int], str]], Any],
        result: Callable[[Any], dict[str, Any]],
    ) -> Any:
        """Register the artifact and finish the job in one transaction.

        ``register(session, place)`` adds the registry rows; it calls ``place(version)`` once
        it knows its version number, which moves the staged folder to ``parent/v<version>``
        and returns its path. If anything fails the folder goes back to staging, nothing is
        committed, and the job is not marked SUCCEEDED.
        """
        moved: list[Path] = []

        def place(version: int) -> str:
            final = parent / f"v{version}"
            parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left by a crash between rename and commit: never registered
                shutil.rmtree(final)
            os.rename(staging, final)
            moved.append(final)
            return str(final)

        def undo_move() -> None:
            while moved:
                os.rename(moved.pop(), staging)

        try:
            for attempt in range(PUBLISH_ATTEMPTS):
                try:
                    with self.registry.session() as session:
                        obj = register(session, place)
                        if not store.transition(
                            session,
                            self.job_id,
                            JobStatus.SUCCEEDED,
                            "finished and registered its result",
                            result=result(obj),
                            progress=None,
                        ):
                            raise RuntimeError(
                                f"job {self.job_id} is no longer running "
                                "(cancelled?): its result is not registered"
                            )
                    return obj
                except IntegrityError:  # a concurrent job took the same version number
                    undo_move()
                    if attempt == PUBLISH_ATTEMPTS - 1:
                        raise
                    time.sleep(0.05 * (attempt + 1))
                except BaseException:
                    undo_move()
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
