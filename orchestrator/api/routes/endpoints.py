"""/api/endpoints: serve a model on Ray Serve, list, show, predict, delete."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field, model_validator

from orchestrator.api import views
from orchestrator.api.auth import Principal, admin, member, viewer
from orchestrator.registry import store
from orchestrator.registry.models import Role
from orchestrator.specs.vocabulary import EndpointTask

router = APIRouter(prefix="/api/endpoints", tags=["endpoints"])


class Autoscale(BaseModel):
    min_replicas: int = Field(ge=0)
    max_replicas: int = Field(ge=1)


class ServeRequest(BaseModel):
    """What `orch serve` takes; an option left out keeps the running endpoint's value."""

    ref: str = Field(max_length=140, description="NAME, NAME:VERSION or NAME@ALIAS")
    replicas: int | None = Field(None, ge=1)
    autoscale: Autoscale | None = None
    cpus_per_replica: float | None = Field(None, gt=0)
    gpus_per_replica: float | None = Field(None, ge=0)
    task: EndpointTask | None = None
    max_batch_size: int | None = Field(None, ge=1)
    batch_wait_ms: float | None = Field(None, ge=0)
    quantize: Literal["none", "int8"] | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] | None = None
    api_key: str | None = Field(None, max_length=256, description="Key the endpoint requires.")
    no_api_key: bool = False

    @model_validator(mode="after")
    def _one_scaling(self) -> ServeRequest:
        if self.replicas and self.autoscale:
            raise ValueError("give replicas or autoscale, not both")
        return self


@router.post("", status_code=201)
def serve(body: ServeRequest, request: Request, user: Principal = Depends(member)) -> dict:
    """Serve a registered version at /models/NAME (or update that endpoint)."""
    from orchestrator import endpoints
    from orchestrator.specs.names import parse_versioned

    settings, registry = request.app.state.settings, request.app.state.registry
    name = parse_versioned(body.ref, "model name")[0]
    with registry.session() as session:
        running = store.live_deployment(session, name)
        before = views.endpoint_row(running) if running else None
    if before and not user.may(Role.ADMIN) and before["created_by"] != user.name:
        raise HTTPException(
            403,
            f"endpoint {name} was deployed by {before['created_by']}: only they or an admin "
            "may change it (promote moves an alias's endpoint)",
        )
    flags = body.model_dump(exclude={"ref"})
    if body.autoscale is not None:
        flags["autoscale"] = (body.autoscale.min_replicas, body.autoscale.max_replicas)
    try:
        url = endpoints.deploy(settings, registry, body.ref, by=user.name, **flags)
    finally:  # recorded whatever the outcome: a failed deploy changed the row too
        with registry.session() as session:
            row = store.live_deployment(session, name)
            after = views.endpoint_row(row) if row else None
            store.audit(session, user.name, "endpoint.serve", f"endpoint/{name}", before, after)
    return {"name": name, "url": url, "messages": [f"serving {body.ref} at {url}"]}


@router.get("")
def list_endpoints(
    request: Request, all: bool = False, _: Principal = Depends(viewer)
) -> list[dict]:
    """Endpoints as the registry records them (with ``all``, deleted ones too)."""
    with request.app.state.registry.session() as session:
        return [views.endpoint_row(r) for r in store.list_deployments(session, all)]


@router.get("/{name}")
def show(name: str, request: Request, live: bool = True, _: Principal = Depends(viewer)) -> dict:
    """One endpoint: the registry's record and (``live``) what Serve says of it now."""
    from orchestrator import endpoints

    with request.app.state.registry.session() as session:
        out = views.endpoint_row(store.get_deployment(session, name))
    if live:
        out["serve"] = endpoints.live_status(request.app.state.settings, name) or (
            "no cluster reachable"
        )
    return out


class PredictRequest(BaseModel):
    body: dict[str, Any] = Field(description="The endpoint's request, e.g. {'inputs': [...]}.")
    api_key: str | None = Field(None, max_length=256)


@router.post("/{name}/predict")
def predict(
    name: str, req: PredictRequest, request: Request, _: Principal = Depends(member)
) -> dict:
    """Call the endpoint; answers its result, the version that answered and its task."""
    from orchestrator import endpoints

    result, version, task = endpoints.predict(
        request.app.state.settings,
        request.app.state.registry,
        name,
        lambda _task: req.body,
        req.api_key,
    )
    return {"result": result, "version": version, "task": task}


@router.delete("/{name}")
def delete(name: str, request: Request, user: Principal = Depends(admin)) -> dict:
    """Stop serving NAME; the registry keeps its row, marked DELETED."""
    from orchestrator import endpoints

    settings, registry = request.app.state.settings, request.app.state.registry
    with registry.session() as session:
        before = views.endpoint_row(store.get_deployment(session, name))
    message = "failed"
    try:
        message = endpoints.delete(settings, registry, name)
    finally:
        with registry.session() as session:
            store.audit(
                session,
                user.name,
                "endpoint.delete",
                f"endpoint/{name}",
                before,
                {"outcome": message},
            )
    return {"name": name, "outcome": message, "messages": [f"endpoint {name}: {message}"]}
