"""A job kind's one door to the registry and the artifact root, on the driver.

Job kinds (``jobs/tokenizer.py``, ``pretrain.py``, ``finetune.py``, ``evaluate.py``) never
import the registry: they look up what they build on, report progress and metrics, record
restarts and finish through a ``JobContext``. Ray Train workers don't get one: they report to
the driver (``jobs/train/reports.py``), which writes through its context. Every kind finishes
through the same checked path: SUCCEEDED only while the job still runs (a job cancelled
meanwhile registers nothing), in the transaction that registers its result.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from jobs.data.readers import Fingerprint
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.registry.artifacts import publish_folder
from orchestrator.specs.names import parse_versioned

log = logging.getLogger("orch.job")


@dataclass(frozen=True)
class Registered:
    """A registered tokenizer or model version, as a job kind needs it."""

    id: int
    name: str
    version: int
    artifact_uri: str
    task: str | None = None
    tokenizer_id: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class DatasetFacts:
    """What a job read, registered with its result: content fingerprint, format and rows
    per split."""

    fingerprint: Fingerprint
    format: str
    num_rows: dict[str, int] = field(default_factory=dict)


@dataclass
class JobContext:
    job_id: int
    registry: Registry
    artifact_root: Path
    code_version: str | None = None
    attempt: int = 1  # 2 and up: an earlier driver of this job died and it was requeued

    # --- while the job runs --------------------------------------------------------------

    def progress(self, message: str) -> None:
        """Shown by `orch jobs show` and `orch submit --wait` while the job runs."""
        log.info(message)
        with self.registry.session() as session:
            store.set_progress(session, self.job_id, message)

    def add_metrics(self, rows: list[dict[str, Any]], progress: str | None = None) -> None:
        """Metric rows (name, value, step, epoch, split) and, with them, a progress line."""
        with self.registry.session() as session:
            store.add_metrics(session, self.job_id, rows)
            if progress:
                store.set_progress(session, self.job_id, progress)

    def restarted(self, why: str, how: str) -> None:
        """A worker or node died and training restarted: RETRYING (why), then RUNNING (how)."""
        with self.registry.session() as session:
            store.transition(session, self.job_id, JobStatus.RETRYING, why)
            store.transition(session, self.job_id, JobStatus.RUNNING, how)

    def note(self, message: str) -> None:
        """An event in the job's history that changes no state."""
        log.info(message)
        with self.registry.session() as session:
            store.note(session, self.job_id, message)

    def tokenizer(self, ref: str) -> Registered:
        """The tokenizer version ``NAME`` (latest) or ``NAME:VERSION``."""
        name, version, _ = parse_versioned(ref, "tokenizer name")
        with self.registry.session() as session:
            row = store.get_tokenizer(session, name, version)
            return Registered(row.id, row.name, row.version, row.artifact_uri)

    def model_version(self, ref: str) -> Registered:
        """The model version ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""
        name, version, alias = parse_versioned(ref, "model name")
        with self.registry.session() as session:
            row = store.get_model_version(session, name, version, alias)
            return Registered(
                row.id, name, row.version, row.artifact_uri, row.task, row.tokenizer_id
            )

    def staging_dir(self) -> Path:
        """A fresh private folder on the artifact root's filesystem (so the final move is an
        atomic rename). Nothing in it is visible to anyone until it is published."""
        path = self.artifact_root / ".staging" / f"job-{self.job_id}-{uuid.uuid4().hex[:8]}"
        path.mkdir(parents=True)
        return path

    # --- finishing: the one checked path -------------------------------------------------

    def finish(
        self, reason: str, result: dict[str, Any], metrics: list[dict[str, Any]] | None = None
    ) -> None:
        """SUCCEEDED with ``result`` (and its last metric rows) in one transaction, for a
        kind that registers no artifact."""
        with self.registry.session() as session:
            if metrics:
                store.add_metrics(session, self.job_id, metrics)
            self._succeed(session, reason, result)

    def publish_tokenizer(
        self, staging: Path, name: str, dataset: DatasetFacts, **fields: Any
    ) -> Registered:
        """Register the tokenizer folder ``staging`` as ``name`` vN and finish the job."""

        def add(session: Session) -> Any:
            return store.add_tokenizer(
                session,
                name=name,
                artifact_uri="",
                dataset_id=self._dataset(session, dataset).id,
                job_id=self.job_id,
                **fields,
            )

        row = self._publish(
            staging,
            self.artifact_root / "tokenizers" / name,
            add,
            lambda r: {
                "tokenizer": f"{r.name}:{r.version}",
                "artifact_uri": r.artifact_uri,
                "vocab_size": r.vocab_size,
            },
        )
        return Registered(row.id, row.name, row.version, row.artifact_uri)

    def publish_model(
        self,
        staging: Path,
        name: str,
        task: str,
        datasets: dict[str, DatasetFacts],
        summary: dict[str, Any],
        **fields: Any,
    ) -> Registered:
        """Register the model folder ``staging`` as ``name`` vN with its datasets (the train
        split is its lineage) and finish the job; ``summary`` joins the job's result."""

        def add(session: Session) -> Any:
            ids = {split: self._dataset(session, facts).id for split, facts in datasets.items()}
            return store.add_model_version(
                session,
                name=name,
                task=task,
                artifact_uri="",
                dataset_id=ids.get("train"),
                job_id=self.job_id,
                code_version=self.code_version,
                **fields,
            )

        row = self._publish(
            staging,
            self.artifact_root / "models" / name,
            add,
            lambda r: {
                "model": f"{name}:{r.version}",
                "task": r.task,
                "artifact_uri": r.artifact_uri,
                **summary,
            },
        )
        return Registered(row.id, name, row.version, row.artifact_uri, row.task, row.tokenizer_id)

    def _dataset(self, session: Session, facts: DatasetFacts) -> Any:
        fp = facts.fingerprint
        return store.upsert_dataset(
            session,
            uri=fp.uri,
            fingerprint=fp.sha256,
            format=facts.format,
            files=fp.files,
            num_rows=facts.num_rows,
            size_bytes=fp.size_bytes,
        )

    def _succeed(self, session: Session, reason: str, result: dict[str, Any]) -> None:
        if not store.transition(
            session, self.job_id, JobStatus.SUCCEEDED, reason, result=result, progress=None
        ):
            raise RuntimeError(
                f"job {self.job_id} is no longer running (cancelled?): its result is not registered"
            )

    def _publish(
        self,
        staging: Path,
        parent: Path,
        add: Callable[[Session], Any],
        result: Callable[[Any], dict[str, Any]],
    ) -> Any:
        """Add the registry row, move ``staging`` to ``parent/v<version>`` and finish the job
        in one transaction. If anything fails the folder goes back to staging, nothing is
        committed, and the job is not marked SUCCEEDED."""
        return publish_folder(
            self.registry,
            staging,
            parent,
            add,
            lambda session, row: self._succeed(
                session, "finished and registered its result", result(row)
            ),
        )
