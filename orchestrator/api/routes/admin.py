"""/api/users, /api/audit, /api/cluster, /api/whoami, /api/vocabulary, /api/health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orchestrator.api import views
from orchestrator.api.auth import Principal, admin, current_user, new_token, token_hash, viewer
from orchestrator.registry import store
from orchestrator.registry.models import Role

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/health")
async def health() -> dict:  # async: answers even while every worker thread is busy
    """Liveness; needs no token and says nothing about the registry."""
    return {"status": "ok"}


@router.get("/vocabulary")
def vocabulary(_: Principal = Depends(viewer)) -> dict[str, list[str]]:
    """The names clients share with the server: job states (and which are terminal), job
    kinds, model and endpoint tasks."""
    from orchestrator.specs.vocabulary import vocabulary

    return vocabulary()


@router.get("/whoami")
def whoami(user: Principal = Depends(current_user)) -> dict:
    return {"name": user.name, "role": user.role.value}


class AddUser(BaseModel):
    name: str = Field(max_length=64)
    role: Role = Role.MEMBER


@router.post("/users", status_code=201)
def add_user(body: AddUser, request: Request, user: Principal = Depends(admin)) -> dict:
    """Add a user; the answer holds their token, shown this once (only a hash is kept)."""
    from orchestrator.specs.names import check_name

    check_name(body.name, "user name")
    token = new_token()
    with request.app.state.registry.session() as session:
        row = store.add_user(session, body.name, body.role, token_hash(token), user.name)
        out = views.user_row(row)
        store.audit(session, user.name, "user.add", f"user/{body.name}", None, out)
    return {**out, "token": token}


@router.get("/users")
def list_users(request: Request, all: bool = False, _: Principal = Depends(admin)) -> list[dict]:
    """Users (with ``all``, revoked ones too)."""
    with request.app.state.registry.session() as session:
        return [views.user_row(u) for u in store.list_users(session, all)]


@router.delete("/users/{name}")
def revoke_user(name: str, request: Request, user: Principal = Depends(admin)) -> dict:
    """Revoke a user's token: their next request is refused."""
    from orchestrator.registry.models import utcnow

    if name == user.name:
        from orchestrator.errors import UsageError

        raise UsageError("an admin cannot revoke their own token", hint="ask another admin")
    with request.app.state.registry.session() as session:
        row = store.get_user(session, name)
        before = views.user_row(row)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        after = views.user_row(row)
        store.audit(session, user.name, "user.revoke", f"user/{name}", before, after)
    return {**after, "messages": [f"user {name}: token revoked"]}


@router.get("/audit")
def audit(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    actor: str | None = None,
    action: str | None = None,
    _: Principal = Depends(viewer),
) -> list[dict]:
    """Changes made through the API, newest first: who, what, when, before and after."""
    with request.app.state.registry.session() as session:
        return [views.audit_row(a) for a in store.list_audit(session, limit, actor, action)]


@router.get("/cluster")
def cluster(request: Request, _: Principal = Depends(viewer)) -> dict[str, Any]:
    """The Ray cluster's nodes (total and free resources) and the scheduler's last view."""
    from orchestrator.ray_client import connection
    from orchestrator.submission import scheduler_heartbeat

    settings = request.app.state.settings
    info = connection.resolve_cluster(settings)
    beat = scheduler_heartbeat(settings, request.app.state.registry)
    return {
        "gcs_address": info.gcs_address,
        "dashboard_url": info.dashboard_url,
        "nodes": connection.cluster_nodes(info),
        "scheduler": {"seen_s_ago": round(beat[1], 1), "view": beat[0]} if beat else None,
    }
