"""The registry on SQLite and PostgreSQL: schema, job state machine, versions, concurrency."""

from __future__ import annotations

import multiprocessing as mp

import pytest
from sqlalchemy import func, inspect, select

from orchestrator.registry import JobStatus, Registry, store
from orchestrator.registry.db import create_registry_engine
from orchestrator.registry.migrate import alembic_config, current_revision, head_revision
from orchestrator.registry.models import Base, Job, JobEvent, Tokenizer

TABLES = {
    "jobs",
    "job_events",
    "datasets",
    "tokenizers",
    "models",
    "model_versions",
    "aliases",
    "alias_events",
    "metrics",
    "deployments",
    "service_state",
    "alembic_version",
}


def new_job(reg: Registry, name: str = "t", priority: int = 0) -> int:
    with reg.session() as s:
        return store.create_job(
            s,
            kind="tokenizer",
            name=name,
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 1}]},
            priority=priority,
        ).id


def test_migrations_create_every_table_and_reach_head(registry_url: str) -> None:
    reg = Registry(registry_url)
    assert set(inspect(reg.engine).get_table_names()) >= TABLES
    assert current_revision(reg.engine) == head_revision(alembic_config(reg.engine))


def test_models_and_migrations_agree(registry_url: str) -> None:
    """Autogenerate finds nothing to do: every model change has its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    reg = Registry(registry_url)
    with reg.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_job_lifecycle_records_every_transition(registry_url: str) -> None:
    reg = Registry(registry_url)
    job_id = new_job(reg)
    with reg.session() as s:
        assert store.transition(s, job_id, JobStatus.STARTING, "admitted")
        assert store.transition(s, job_id, JobStatus.RUNNING, "driver started")
        assert store.transition(s, job_id, JobStatus.SUCCEEDED, "done", result={"x": 1})
    with reg.session() as s:
        job = store.get_job(s, job_id)
        assert job.status == JobStatus.SUCCEEDED and job.result == {"x": 1}
        assert job.started_at is not None and job.finished_at is not None
        assert [(e.from_status, e.to_status) for e in job.events] == [
            (None, "QUEUED"),
            ("QUEUED", "STARTING"),
            ("STARTING", "RUNNING"),
            ("RUNNING", "SUCCEEDED"),
        ]


def test_finished_jobs_never_change_state(registry_url: str) -> None:
    reg = Registry(registry_url)
    job_id = new_job(reg)
    with reg.session() as s:
        assert store.transition(s, job_id, JobStatus.FAILED, "boom", error="boom")
        assert not store.transition(s, job_id, JobStatus.SUCCEEDED, "late report")
        assert not store.transition(s, job_id, JobStatus.RUNNING, "late start")
    with reg.session() as s:
        job = store.get_job(s, job_id)
        assert job.status == JobStatus.FAILED and len(job.events) == 2


def test_cancel_queued_is_immediate_and_running_is_requested(registry_url: str) -> None:
    reg = Registry(registry_url)
    queued, running = new_job(reg), new_job(reg)
    with reg.session() as s:
        store.transition(s, running, JobStatus.STARTING, "admitted")
        store.transition(s, running, JobStatus.RUNNING, "started")
    with reg.session() as s:
        assert store.request_cancel(s, queued) == JobStatus.CANCELLED
        assert store.request_cancel(s, running) == "CANCEL_REQUESTED"
    with reg.session() as s:
        assert store.get_job(s, queued).status == JobStatus.CANCELLED
        job = store.get_job(s, running)
        assert job.status == JobStatus.RUNNING and job.cancel_requested
        assert store.request_cancel(s, queued) == JobStatus.CANCELLED  # idempotent


def test_queue_order_is_priority_then_fifo(registry_url: str) -> None:
    reg = Registry(registry_url)
    a, b, c = new_job(reg), new_job(reg, priority=5), new_job(reg)
    with reg.session() as s:
        assert [j.id for j in store.queued_jobs(s)] == [b, a, c]


def test_tokenizer_versions_count_up_per_name(registry_url: str) -> None:
    reg = Registry(registry_url)
    fields = {"algorithm": "wordpiece", "vocab_size": 10, "vocab_hash": "h", "artifact_uri": "/x"}
    with reg.session() as s:
        versions = [store.add_tokenizer(s, name=n, **fields).version for n in ("a", "a", "b", "a")]
    assert versions == [1, 2, 1, 3]
    with reg.session() as s:
        assert store.get_tokenizer(s, "a").version == 3
        assert store.get_tokenizer(s, "a", 2).version == 2


def _insert_jobs(url: str, n: int, queue: mp.Queue) -> None:
    try:
        reg = Registry(url)
        for _ in range(n):
            job_id = new_job(reg, "concurrent")
            with reg.session() as s:  # a read-modify-write, like a claim
                store.transition(s, job_id, JobStatus.STARTING, "claimed")
        queue.put(None)
    except Exception as exc:  # report, don't hang the parent
        queue.put(repr(exc))


def test_twenty_concurrent_writers_lose_nothing(registry_url: str) -> None:
    Registry(registry_url)  # migrate first, as `orch` does on first use
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_insert_jobs, args=(registry_url, 5, queue)) for _ in range(20)]
    for p in procs:
        p.start()
    errors = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [e for e in errors if e] == []
    reg = Registry(registry_url)
    with reg.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 100
        assert s.scalar(select(func.count()).select_from(JobEvent)) == 200
        assert s.scalar(select(func.count()).where(Job.status == "STARTING")) == 100


def _first_use(url: str, queue: mp.Queue) -> None:
    import time

    from alembic.runtime import migration

    # Widen the gap after each transaction Alembic ends: if it committed after every
    # revision, a second process would take the lock there and apply the next revision
    # again, and this pause makes that race happen every time rather than rarely.
    end = migration._ProxyTransaction.__exit__

    def end_then_pause(self, *exc):  # type: ignore[no-untyped-def]
        end(self, *exc)
        time.sleep(0.2)

    migration._ProxyTransaction.__exit__ = end_then_pause  # type: ignore[method-assign]
    try:
        create_registry_engine(url).dispose()
        queue.put(None)
    except Exception as exc:
        queue.put(repr(exc))


def test_concurrent_first_use_migrates_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_first_use, args=(url, queue)) for _ in range(8)]
    for p in procs:
        p.start()
    assert [queue.get(timeout=120) for _ in procs] == [None] * 8
    for p in procs:
        p.join(timeout=30)
    reg = Registry(url)
    assert current_revision(reg.engine) == head_revision(alembic_config(reg.engine))


def test_an_older_sqlite_registry_upgrades_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A registry written by an earlier release keeps its rows through the upgrade."""
    from alembic import command
    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_registry_engine(url, migrate=False)
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (kind, name, status, priority, spec, resources, "
                "attempts, cancel_requested, created_at) VALUES ('tokenizer', 'old', 'SUCCEEDED', "
                "0, '{}', '{}', 1, 0, CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()
    reg = Registry(url)
    assert current_revision(reg.engine) == head_revision(alembic_config(reg.engine))
    with reg.session() as s:
        assert [(j.name, j.status) for j in s.scalars(select(Job))] == [("old", "SUCCEEDED")]


def test_a_version_number_is_taken_only_once(registry_url: str) -> None:
    """The unique key that makes concurrent publishers retry with the next version."""
    from sqlalchemy.exc import IntegrityError

    reg = Registry(registry_url)
    fields = {"algorithm": "bpe", "vocab_size": 10, "vocab_hash": "h", "artifact_uri": "/x"}
    with reg.session() as s:
        store.add_tokenizer(s, name="race", **fields)
    with pytest.raises(IntegrityError), reg.session() as s:
        s.add(Tokenizer(name="race", version=1, **fields))
    with reg.session() as s:
        assert [t.version for t in store.list_tokenizers(s, "race")] == [1]
