"""/api/jobs: submit, list, show, events, logs, metrics, cancel, why."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from orchestrator.api import views
from orchestrator.api.auth import Principal, member, viewer
from orchestrator.api.errors import TEXT_RESPONSE
from orchestrator.registry import store
from orchestrator.registry.models import Role
from orchestrator.specs.vocabulary import JobKind, JobStatus

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


class SubmitRequest(BaseModel):
    spec: dict[str, Any] = Field(description="A job spec, as a spec file holds it.")
    priority: int = Field(0, ge=-1000, le=1000, description="Higher starts first.")
    code_version: str | None = Field(None, max_length=64)


@router.post("", status_code=201)
def submit(body: SubmitRequest, request: Request, user: Principal = Depends(member)) -> dict:
    """Queue a job; the scheduler serving this registry is started when none runs."""
    from orchestrator import submission
    from orchestrator.errors import OrchestratorError
    from orchestrator.specs import parse_spec

    settings, registry = request.app.state.settings, request.app.state.registry
    confined = not user.may(Role.ADMIN)  # jobs read files as the cluster's user
    spec = parse_spec(
        body.spec,
        source="(request body: spec)",
        allowed_roots=[str(r) for r in settings.data_roots or []] if confined else None,
        forbidden_roots=[str(settings.home)] if confined else None,
    )
    submission.check_fits(settings, registry, spec)
    job_id = submission.submit_spec(registry, spec, body.priority, body.code_version, user.name)
    with registry.session() as session:
        store.audit(session, user.name, "job.submit", f"job/{job_id}", None, {"spec": body.spec})
    messages = [f"queued job {job_id}: {spec.kind} {spec.name!r}"]
    try:
        submission.ensure_scheduler(settings, registry)
    except OrchestratorError as exc:
        raise type(exc)(
            f"job {job_id} is queued, but no scheduler could be started: {exc.message}", exc.hint
        ) from None
    return {"id": job_id, "status": "QUEUED", "messages": messages}


@router.get("")
def list_jobs(
    request: Request,
    status: list[JobStatus] = Query(default=[]),
    kind: list[JobKind] = Query(default=[]),
    submitted_by: str | None = None,
    limit: int = Query(50, ge=1, le=1000),
    _: Principal = Depends(viewer),
) -> list[dict]:
    """Newest jobs first."""
    with request.app.state.registry.session() as session:
        jobs = store.list_jobs(session, list(status), kind, limit, submitted_by)
        return [views.job_row(j) for j in jobs]


@router.get("/{job_id}")
def show(job_id: int, request: Request, _: Principal = Depends(viewer)) -> dict:
    """Everything about one job: spec, events, result or error."""
    with request.app.state.registry.session() as session:
        return views.job_detail(store.get_job(session, job_id))


@router.get("/{job_id}/events")
def events(
    job_id: int, request: Request, after: int = Query(0, ge=0), _: Principal = Depends(viewer)
) -> dict:
    """The job's events from the ``after``-th on, with its state (what `--wait` follows)."""
    with request.app.state.registry.session() as session:
        job = store.get_job(session, job_id)
        return {
            "status": job.status,
            "progress": job.progress,
            "error": job.error,
            "result": job.result,
            "events": [views.event_row(e) for e in list(job.events)[after:]],
        }


@router.get("/{job_id}/metrics")
def metrics(
    job_id: int, request: Request, name: str | None = None, _: Principal = Depends(viewer)
) -> list[dict]:
    """Every value the job logged: step, epoch, split (train, eval, final), name, value."""
    with request.app.state.registry.session() as session:
        store.get_job(session, job_id)
        return [views.metric_row(m) for m in store.job_metrics(session, job_id, name)]


@router.get("/{job_id}/logs", responses=TEXT_RESPONSE)
def logs(
    job_id: int, request: Request, follow: bool = False, _: Principal = Depends(viewer)
) -> Any:
    """The driver's log; with ``follow`` streamed until the job ends. 409 while the job has
    no driver yet (its detail says why)."""
    from orchestrator.ray_client.connection import resolve_cluster
    from orchestrator.ray_client.logs import follow_logs, job_logs

    with request.app.state.registry.session() as session:
        job = store.get_job(session, job_id)
        ray_id, status = job.ray_job_id, job.status
    if ray_id is None:
        raise HTTPException(409, f"job {job_id} is {status} and has not started: no log yet")
    cluster = resolve_cluster(request.app.state.settings)
    if follow:
        return StreamingResponse(follow_logs(cluster, ray_id), media_type="text/plain")
    return PlainTextResponse(job_logs(cluster, ray_id))


@router.post("/{job_id}/cancel")
def cancel(job_id: int, request: Request, user: Principal = Depends(member)) -> dict:
    """Cancel a queued job at once, or ask the scheduler to stop a running one. Members may
    cancel their own jobs; admins any."""
    with request.app.state.registry.session() as session:
        job = store.get_job(session, job_id)
        if not user.may(Role.ADMIN) and job.submitted_by != user.name:
            raise HTTPException(
                403,
                f"job {job_id} was submitted by {job.submitted_by}: only they or an "
                "admin may cancel it",
            )
        before = job.status
        outcome = store.request_cancel(session, job_id, by=user.name)
        store.audit(
            session,
            user.name,
            "job.cancel",
            f"job/{job_id}",
            {"status": before},
            {"status": outcome},
        )
    messages = {
        "CANCELLED": f"job {job_id} cancelled",
        "CANCEL_REQUESTED": f"job {job_id}: stop requested; the scheduler stops its "
        "driver within seconds",
    }
    text = messages.get(outcome, f"job {job_id} already ended ({outcome}); nothing to cancel")
    return {"id": job_id, "outcome": outcome, "messages": [text]}


@router.get("/{job_id}/why")
def why(job_id: int, request: Request, _: Principal = Depends(viewer)) -> dict:
    """Why a job is still queued: what it asks for against what is free."""
    from orchestrator.scheduler.admission import fmt as fmt_res
    from orchestrator.scheduler.admission import total
    from orchestrator.submission import scheduler_heartbeat

    settings, registry = request.app.state.settings, request.app.state.registry
    with registry.session() as session:
        job = store.get_job(session, job_id)
        status, bundles = job.status, job.resources.get("bundles", [])
    beat = scheduler_heartbeat(settings, registry)
    out: dict[str, Any] = {"id": job_id, "status": status, "asks": fmt_res(total(bundles))}
    if status != "QUEUED":
        out["reason"] = f"not waiting: the job is {status}"
    elif beat is None or beat[1] > 30:
        age = "never" if beat is None else f"{beat[1]:.0f}s ago"
        out["reason"] = (
            f"no scheduler is running for this registry (last seen: {age}); "
            "start one with `orch cluster up`"
        )
    else:
        view = beat[0]
        free = {k: view["total"].get(k, 0) - view["in_use"].get(k, 0) for k in view["total"]}
        out["free"] = fmt_res(free)
        out["cluster"] = fmt_res(view["total"])
        out["reason"] = view["waiting"].get(str(job_id), "about to start")
    return out
