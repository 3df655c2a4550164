"""The queries the CLI, the scheduler and the job drivers need, on one short transaction each.

Functions take a ``Session`` so that several of them can share one transaction (a driver
registers its tokenizer and marks its job SUCCEEDED atomically); ``Registry`` owns the engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, func, select, update
from sqlalchemy.orm import Session

from orchestrator.errors import NotFoundError, UsageError
from orchestrator.registry.db import get_engine, session_scope
from orchestrator.registry.models import (
    ACTIVE_STATUSES,
    Alias,
    AliasEvent,
    AuditEntry,
    Dataset,
    Deployment,
    DeploymentStatus,
    Job,
    JobEvent,
    JobStatus,
    Metric,
    Model,
    ModelVersion,
    Role,
    ServiceState,
    Tokenizer,
    User,
    utcnow,
)

# Which states a job may move to from which: anything else is ignored, so a late or
# duplicate report (the driver and the scheduler both saw the end) never rewrites history.
ALLOWED_FROM: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.QUEUED: (JobStatus.RETRYING,),  # requeued after its driver died
    JobStatus.STARTING: (JobStatus.QUEUED,),
    JobStatus.RUNNING: (JobStatus.STARTING, JobStatus.RETRYING),
    JobStatus.RETRYING: (JobStatus.STARTING, JobStatus.RUNNING),
    JobStatus.SUCCEEDED: ACTIVE_STATUSES,
    JobStatus.FAILED: (JobStatus.QUEUED, *ACTIVE_STATUSES),
    JobStatus.CANCELLED: (JobStatus.QUEUED, *ACTIVE_STATUSES),
}


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


# --- jobs -------------------------------------------------------------------------------


def create_job(
    session: Session,
    *,
    kind: str,
    name: str,
    spec: dict[str, Any],
    resources: dict[str, float],
    priority: int = 0,
    code_version: str | None = None,
    submitted_by: str | None = None,
) -> Job:
    job = Job(
        kind=kind,
        name=name,
        spec=spec,
        resources=resources,
        priority=priority,
        status=JobStatus.QUEUED,
        code_version=code_version,
        submitted_by=submitted_by,
    )
    session.add(job)
    session.flush()
    session.add(
        JobEvent(
            job_id=job.id,
            from_status=None,
            to_status=JobStatus.QUEUED,
            reason=f"submitted with priority {priority}",
        )
    )
    return job


def transition(session: Session, job_id: int, to: JobStatus, reason: str, **fields: Any) -> bool:
    """Move a job to ``to`` if its current state allows it; record the event. True if moved."""
    current = session.scalar(select(Job.status).where(Job.id == job_id))
    if current is None:
        raise NotFoundError(f"job {job_id} does not exist")
    values: dict[str, Any] = {"status": to, **fields}
    if to == JobStatus.RUNNING:
        values.setdefault("started_at", utcnow())
    if to in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        values.setdefault("finished_at", utcnow())
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in ALLOWED_FROM[to]]))
        .values(**values)
    )
    moved = cast(CursorResult[Any], result).rowcount
    if moved:
        session.add(JobEvent(job_id=job_id, from_status=current, to_status=to, reason=reason))
    return bool(moved)


def note(session: Session, job_id: int, reason: str) -> None:
    """An event that changes no state (e.g. which checkpoint a new attempt resumed from)."""
    status = session.scalar(select(Job.status).where(Job.id == job_id))
    if status is None:
        raise NotFoundError(f"job {job_id} does not exist")
    session.add(JobEvent(job_id=job_id, from_status=status, to_status=status, reason=reason))


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFoundError(
            f"job {job_id} does not exist",
            hint="`orch jobs list` shows the jobs this registry knows",
        )
    return job


def list_jobs(
    session: Session,
    status: Sequence[str] = (),
    kind: Sequence[str] = (),
    limit: int | None = 50,
    submitted_by: str | None = None,
) -> list[Job]:
    query = select(Job).order_by(Job.id.desc())
    if submitted_by:
        query = query.where(Job.submitted_by == submitted_by)
    if status:
        query = query.where(Job.status.in_(list(status)))
    if kind:
        query = query.where(Job.kind.in_(list(kind)))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def queued_jobs(session: Session) -> list[Job]:
    """The queue in admission order: higher priority first, then first come first served."""
    return list(
        session.scalars(
            select(Job).where(Job.status == JobStatus.QUEUED).order_by(Job.priority.desc(), Job.id)
        )
    )


def queue_mark(session: Session) -> tuple[int, int | None]:
    """How many jobs are queued and the newest one's id: a cheap query that changes when a
    job joins the queue (the scheduler polls it between its passes)."""
    row = session.execute(
        select(func.count(Job.id), func.max(Job.id)).where(Job.status == JobStatus.QUEUED)
    ).one()
    return int(row[0]), row[1]


def active_jobs(session: Session) -> list[Job]:
    return list(
        session.scalars(
            select(Job).where(Job.status.in_([s.value for s in ACTIVE_STATUSES])).order_by(Job.id)
        )
    )


def request_cancel(session: Session, job_id: int, by: str | None = None) -> str:
    """Cancel a queued job at once, or flag an active one for the scheduler to stop."""
    status = get_job(session, job_id).status
    if status == JobStatus.QUEUED:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(status=JobStatus.CANCELLED, finished_at=utcnow())
        )
        session.add(
            JobEvent(
                job_id=job_id,
                from_status=status,
                to_status=JobStatus.CANCELLED,
                reason=f"cancelled by {by or 'user'} while queued",
            )
        )
        return JobStatus.CANCELLED
    if JobStatus(status).terminal:
        return status
    session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    if by:
        note(session, job_id, f"{by} asked to cancel it")
    return "CANCEL_REQUESTED"


def set_progress(session: Session, job_id: int, message: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(progress=message))


# --- datasets ---------------------------------------------------------------------------


def upsert_dataset(
    session: Session,
    *,
    uri: str,
    fingerprint: str,
    format: str,
    files: list[dict[str, Any]],
    num_rows: dict[str, int],
    size_bytes: int,
) -> Dataset:
    """The dataset row for this content at this uri, created on first sight."""
    existing = session.scalar(
        select(Dataset).where(Dataset.fingerprint == fingerprint, Dataset.uri == uri)
    )
    if existing is not None:
        existing.num_rows = {**existing.num_rows, **num_rows}
        return existing
    dataset = Dataset(
        uri=uri,
        fingerprint=fingerprint,
        format=format,
        files=files,
        num_rows=num_rows,
        size_bytes=size_bytes,
    )
    session.add(dataset)
    session.flush()
    return dataset


def list_datasets(session: Session, limit: int | None = 100) -> list[Dataset]:
    query = select(Dataset).order_by(Dataset.id.desc())
    return list(session.scalars(query.limit(limit) if limit else query))


# --- tokenizers -------------------------------------------------------------------------


def next_version(session: Session, column: Any, where: Any) -> int:
    return int(session.scalar(select(func.coalesce(func.max(column), 0)).where(where))) + 1


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
    query = select(Tokenizer).order_by(Tokenizer.name, Tokenizer.version.desc())
    if name:
        query = query.where(Tokenizer.name == name)
    return list(session.scalars(query.limit(limit) if limit else query))


def get_tokenizer(session: Session, name: str, version: int | None = None) -> Tokenizer:
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


# --- models, versions, aliases -------------------------------------------------------------


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
    query = select(ModelVersion).join(Model).order_by(Model.name, ModelVersion.version.desc())
    if task:
        query = query.where(ModelVersion.task == task)
    if name:
        query = query.where(Model.name == name)
    return list(session.scalars(query))


def aliases_of(session: Session, model_id: int) -> dict[int, list[str]]:
    """version id -> alias names pointing at it."""
    out: dict[int, list[str]] = {}
    for alias in session.scalars(select(Alias).where(Alias.model_id == model_id)):
        out.setdefault(alias.model_version_id, []).append(alias.name)
    return out


def set_alias(
    session: Session, name: str, version: int, alias: str, moved_by: str | None = None
) -> int | None:
    """Point ``NAME@alias`` at ``version``; record the move. Returns the previous version."""
    target = get_model_version(session, name, version)
    pointer = session.scalar(
        select(Alias).where(Alias.model_id == target.model_id, Alias.name == alias)
    )
    previous = pointer.model_version_id if pointer else None
    if pointer is None:
        session.add(Alias(model_id=target.model_id, name=alias, model_version_id=target.id))
    else:
        pointer.model_version_id, pointer.updated_at = target.id, utcnow()
    session.add(
        AliasEvent(
            model_id=target.model_id,
            alias=alias,
            from_version_id=previous,
            to_version_id=target.id,
            moved_by=moved_by,
        )
    )
    prev_row = session.get(ModelVersion, previous) if previous else None
    return prev_row.version if prev_row else None


def previous_alias_holder(session: Session, name: str, alias: str) -> int:
    """The version ``NAME@alias`` pointed at before its latest move (what a rollback
    restores)."""
    current = get_model_version(session, name, alias=alias)
    event = session.scalar(
        select(AliasEvent)
        .where(AliasEvent.model_id == current.model_id, AliasEvent.alias == alias)
        .order_by(AliasEvent.id.desc())
        .limit(1)
    )
    previous = (
        session.get(ModelVersion, event.from_version_id)
        if event and event.from_version_id
        else None
    )
    if previous is None:
        raise NotFoundError(
            f"{name}@{alias} has no previous version to roll back to",
            hint=f"`orch models promote {name} VERSION --alias {alias}` points it anywhere",
        )
    return previous.version


# --- deployments ----------------------------------------------------------------------------


def live_deployment(session: Session, name: str) -> Deployment | None:
    """The endpoint ``name`` unless it was deleted."""
    return session.scalar(
        select(Deployment)
        .where(Deployment.name == name, Deployment.status != DeploymentStatus.DELETED)
        .order_by(Deployment.id.desc())
        .limit(1)
    )


def get_deployment(session: Session, name: str) -> Deployment:
    row = live_deployment(session, name)
    if row is None:
        raise NotFoundError(
            f"no endpoint named {name}",
            hint=f"`orch serve {name}@production` deploys one; `orch endpoints list` shows all",
        )
    return row


def list_deployments(session: Session, include_deleted: bool = False) -> list[Deployment]:
    query = select(Deployment).order_by(Deployment.name, Deployment.id.desc())
    if not include_deleted:
        query = query.where(Deployment.status != DeploymentStatus.DELETED)
    return list(session.scalars(query))


def save_deployment(session: Session, name: str, **fields: Any) -> Deployment:
    """Update the live endpoint ``name`` or record a new one."""
    row = live_deployment(session, name)
    if row is None:
        row = Deployment(name=name, **fields)
        session.add(row)
    else:
        for key, value in fields.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
    session.flush()
    return row


# --- metrics --------------------------------------------------------------------------------


def add_metrics(session: Session, job_id: int, rows: list[dict[str, Any]]) -> None:
    """rows: {name, value, step?, epoch?, split?}"""
    session.add_all(Metric(job_id=job_id, **row) for row in rows)


def job_metrics(session: Session, job_id: int, name: str | None = None) -> list[Metric]:
    query = select(Metric).where(Metric.job_id == job_id)
    if name:
        query = query.where(Metric.name == name)
    return list(session.scalars(query.order_by(Metric.split, Metric.name, Metric.step, Metric.id)))


# --- service state ----------------------------------------------------------------------


def put_state(session: Session, key: str, value: dict[str, Any]) -> None:
    row = session.get(ServiceState, key)
    if row is None:
        session.add(ServiceState(key=key, value=value, updated_at=utcnow()))
    else:
        row.value = value
        row.updated_at = utcnow()


def get_state(session: Session, key: str) -> tuple[dict[str, Any], float] | None:
    """The value and its age in seconds, or None."""
    row = session.get(ServiceState, key)
    if row is None:
        return None
    updated = as_utc(row.updated_at)
    assert updated is not None
    return row.value, (utcnow() - updated).total_seconds()


# --- users and the audit log --------------------------------------------------------------


def add_user(
    session: Session, name: str, role: Role, token_hash: str, created_by: str | None
) -> User:
    """A new user, or a revoked one given a fresh token and role."""
    user = session.scalar(select(User).where(User.name == name))
    if user is not None and user.revoked_at is None:
        raise UsageError(
            f"user {name} already exists",
            hint=f"`orch users revoke {name}` first to give them a new token",
        )
    if user is None:
        user = User(name=name)
        session.add(user)
    user.role, user.token_hash, user.created_by = role.value, token_hash, created_by
    user.created_at, user.revoked_at = utcnow(), None
    session.flush()
    return user


def set_user_token(session: Session, name: str, role: Role, token_hash: str) -> User:
    """Give ``name`` this token and role, creating the user if needed (the local admin)."""
    user = find_user(session, name)
    if user is None:
        return add_user(session, name, role, token_hash, created_by=None)
    user.role, user.token_hash = role.value, token_hash
    return user


def user_by_token_hash(session: Session, token_hash: str) -> User | None:
    return session.scalar(
        select(User).where(User.token_hash == token_hash, User.revoked_at.is_(None))
    )


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"no user named {name}", hint="`orch users list` shows them")
    return user


def list_users(session: Session, include_revoked: bool = False) -> list[User]:
    query = select(User).order_by(User.name)
    if not include_revoked:
        query = query.where(User.revoked_at.is_(None))
    return list(session.scalars(query))


def audit(
    session: Session,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    session.add(AuditEntry(actor=actor, action=action, target=target, before=before, after=after))


def list_audit(
    session: Session, limit: int = 100, actor: str | None = None, action: str | None = None
) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if action:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query))
