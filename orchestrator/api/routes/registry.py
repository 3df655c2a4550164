"""/api/models, /api/tokenizers, /api/datasets: what jobs registered, and alias moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from orchestrator.api import views
from orchestrator.api.auth import Principal, admin, viewer
from orchestrator.registry import store
from orchestrator.specs.vocabulary import ModelTask

router = APIRouter(prefix="/api", tags=["registry"])


@router.get("/models")
def list_models(
    request: Request,
    task: ModelTask | None = None,
    name: str | None = None,
    sort: str | None = Query(None, description="Best first by this metric."),
    _: Principal = Depends(viewer),
) -> list[dict]:
    """Every model version, newest first per model (or best first by ``sort``)."""
    with request.app.state.registry.session() as session:
        rows = [
            views.version_row(v, store.aliases_of(session, v.model_id).get(v.id, []))
            for v in store.list_model_versions(session, task, name)
        ]
    return views.sort_by_metric(rows, sort) if sort else rows


@router.get("/models/{ref}")
def show_model(ref: str, request: Request, _: Principal = Depends(viewer)) -> dict:
    """One version (NAME, NAME:VERSION or NAME@ALIAS) with its lineage: job, spec, dataset,
    tokenizer, base model, code, and the endpoints serving it."""
    from orchestrator.registry.models import Dataset, Job, ModelVersion, Tokenizer
    from orchestrator.specs.names import parse_versioned

    name, version, alias = parse_versioned(ref, "model name")
    with request.app.state.registry.session() as session:
        v = store.get_model_version(session, name, version, alias)
        out = views.version_row(v, store.aliases_of(session, v.model_id).get(v.id, []))
        job = session.get(Job, v.job_id) if v.job_id else None
        dataset = session.get(Dataset, v.dataset_id) if v.dataset_id else None
        tok = session.get(Tokenizer, v.tokenizer_id) if v.tokenizer_id else None
        base = session.get(ModelVersion, v.base_version_id) if v.base_version_id else None
        out["lineage"] = {
            "job": {"id": job.id, "kind": job.kind, "status": job.status} if job else None,
            "spec": job.spec if job else None,
            "dataset": views.dataset_ref(dataset),
            "tokenizer": f"{tok.name}:{tok.version}" if tok else None,
            "base_model": (f"{base.model.name}:{base.version}" if base else v.base_model),
            "imported_from": v.imported_from,
            "fingerprint": v.fingerprint,
            "code_version": v.code_version,
            "endpoints": [
                d.name for d in store.list_deployments(session) if d.model_version_id == v.id
            ],
        }
    return out


class ImportRequest(BaseModel):
    folder: str = Field(description="A Hugging Face model folder on the server's filesystem.")
    name: str = Field(max_length=64)
    task: ModelTask | None = None
    alias: str | None = Field(None, max_length=64)


@router.post("/models/import", status_code=201)
def import_model(body: ImportRequest, request: Request, user: Principal = Depends(admin)) -> dict:
    """Register a local model folder (safetensors only) as the next version of ``name``."""
    from orchestrator import endpoints, model_import

    settings, registry = request.app.state.settings, request.app.state.registry
    done = model_import.import_model(
        registry,
        settings.resolved_artifact_root,
        Path(body.folder),
        body.name,
        body.task,
        body.alias,
        moved_by=user.name,
    )
    out = {
        "model": f"{done.name}:{done.version}",
        "task": done.task,
        "files": done.files,
        "fingerprint": done.fingerprint,
        "artifact_uri": done.artifact_uri,
        "imported_from": done.imported_from,
    }
    messages = [f"not copied (pickled weights): {', '.join(done.skipped)}"] if done.skipped else []
    with registry.session() as session:
        store.audit(
            session, user.name, "model.import", f"model/{done.name}:{done.version}", None, out
        )
    if body.alias:
        messages.append(f"{body.name}@{body.alias} now points at v{done.version}")
        messages += endpoints.follow_alias(settings, registry, body.name, body.alias)
    return {**out, "messages": messages}


class PromoteRequest(BaseModel):
    version: int = Field(ge=1)
    alias: str = Field("production", max_length=64)


@router.post("/models/{name}/promote")
def promote(
    name: str, body: PromoteRequest, request: Request, user: Principal = Depends(admin)
) -> dict:
    """Point NAME@ALIAS at a version; endpoints following the alias roll to it."""
    from orchestrator import endpoints
    from orchestrator.specs.names import check_name

    check_name(body.alias, "alias")
    settings, registry = request.app.state.settings, request.app.state.registry
    with registry.session() as session:
        previous = store.set_alias(session, name, body.version, body.alias, moved_by=user.name)
        store.audit(
            session,
            user.name,
            "model.promote",
            f"model/{name}@{body.alias}",
            {"version": previous},
            {"version": body.version},
        )
    moved = f"from v{previous} " if previous else ""
    messages = [f"{name}@{body.alias} moved {moved}to v{body.version}"]
    messages += endpoints.follow_alias(settings, registry, name, body.alias)
    return {
        "name": name,
        "alias": body.alias,
        "version": body.version,
        "previous": previous,
        "messages": messages,
    }


class RollbackRequest(BaseModel):
    alias: str = Field("production", max_length=64)


@router.post("/models/{name}/rollback")
def rollback(
    name: str, body: RollbackRequest, request: Request, user: Principal = Depends(admin)
) -> dict:
    """Point NAME@ALIAS back at the version it held before its latest move."""
    from orchestrator import endpoints

    settings, registry = request.app.state.settings, request.app.state.registry
    with registry.session() as session:
        target = store.previous_alias_holder(session, name, body.alias)
        current = store.set_alias(session, name, target, body.alias, moved_by=user.name)
        store.audit(
            session,
            user.name,
            "model.rollback",
            f"model/{name}@{body.alias}",
            {"version": current},
            {"version": target},
        )
    messages = [f"{name}@{body.alias} rolled back from v{current} to v{target}"]
    messages += endpoints.follow_alias(settings, registry, name, body.alias)
    return {
        "name": name,
        "alias": body.alias,
        "version": target,
        "previous": current,
        "messages": messages,
    }


@router.get("/tokenizers")
def list_tokenizers(
    request: Request,
    name: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(viewer),
) -> list[dict]:
    """Every tokenizer version, newest version first per name."""
    with request.app.state.registry.session() as session:
        return [views.tokenizer_row(t) for t in store.list_tokenizers(session, name, limit)]


@router.get("/tokenizers/{ref}")
def show_tokenizer(ref: str, request: Request, _: Principal = Depends(viewer)) -> dict:
    """One tokenizer version (the latest if none is given), with its training corpus."""
    from orchestrator.specs.names import parse_versioned

    name, version, _alias = parse_versioned(ref, "tokenizer name")
    with request.app.state.registry.session() as session:
        t = store.get_tokenizer(session, name, version)
        out: dict[str, Any] = views.tokenizer_row(t)
        if t.dataset is not None:
            out["dataset"] = views.dataset_ref(t.dataset)
    out["load_with"] = f"AutoTokenizer.from_pretrained({out['artifact_uri']!r})"
    return out


@router.get("/datasets")
def list_datasets(
    request: Request, limit: int = Query(100, ge=1, le=1000), _: Principal = Depends(viewer)
) -> list[dict]:
    """Datasets the jobs have read, newest first, identified by content."""
    with request.app.state.registry.session() as session:
        return [views.dataset_row(d) for d in store.list_datasets(session, limit)]
