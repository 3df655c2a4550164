"""Registry rows as the JSON the API answers (and the CLI prints): one function per kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orchestrator.registry.store import as_utc

LOWER_IS_BETTER = ("loss", "perplexity")


def iso(value: datetime | None) -> str | None:
    dt = as_utc(value)
    return dt.isoformat(timespec="seconds") if dt else None


def job_row(job: Any) -> dict[str, Any]:
    start, end = as_utc(job.started_at), as_utc(job.finished_at)
    summary = (
        (job.error or "").splitlines()[0][:80]
        if job.error
        else (
            ", ".join(f"{k}={v}" for k, v in (job.result or {}).items() if k != "artifact_uri")
            or (job.progress or "")
        )
    )
    return {
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "submitted_by": job.submitted_by,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_s": round((end - start).total_seconds(), 1) if start and end else None,
        "summary": summary,
    }


def event_row(e: Any) -> dict[str, Any]:
    return {"at": iso(e.at), "from": e.from_status, "to": e.to_status, "reason": e.reason}


def job_detail(job: Any) -> dict[str, Any]:
    return {
        **job_row(job),
        "ray_job_id": job.ray_job_id,
        "attempts": job.attempts,
        "progress": job.progress,
        "error": job.error,
        "result": job.result,
        "resources": job.resources,
        "code_version": job.code_version,
        "cancel_requested": job.cancel_requested,
        "spec": job.spec,
        "events": [event_row(e) for e in job.events],
    }


def metric_row(m: Any) -> dict[str, Any]:
    return {"step": m.step, "epoch": m.epoch, "split": m.split, "name": m.name, "value": m.value}


def version_row(v: Any, aliases: list[str]) -> dict[str, Any]:
    row = {
        "name": v.model.name,
        "version": v.version,
        "task": v.task,
        "aliases": ",".join(sorted(aliases)) or None,
        "job_id": v.job_id,
        "metrics": v.metrics,
        "created_at": iso(v.created_at),
        "artifact_uri": v.artifact_uri,
    }
    keys = ("f1",) if v.task == "token-classification" else ("accuracy", "perplexity")
    for key in keys:
        if key in (v.metrics or {}):
            row["headline"] = f"{key} {float(v.metrics[key]):.4g}"
            break
    return row


def sort_by_metric(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Versions that logged ``metric``, best first (loss and perplexity: lowest)."""
    scored = [r for r in rows if metric in (r["metrics"] or {})]
    scored.sort(key=lambda r: r["metrics"][metric], reverse=metric not in LOWER_IS_BETTER)
    for r in scored:
        r[metric] = round(float(r["metrics"][metric]), 4)
    return scored


def dataset_ref(d: Any) -> dict[str, Any] | None:
    if d is None:
        return None
    return {"id": d.id, "uri": d.uri, "fingerprint": d.fingerprint, "num_rows": d.num_rows}


def dataset_row(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "uri": d.uri,
        "format": d.format,
        "files": len(d.files),
        "size_bytes": d.size_bytes,
        "num_rows": d.num_rows,
        "fingerprint": d.fingerprint,
        "created_at": iso(d.created_at),
    }


def tokenizer_row(t: Any) -> dict[str, Any]:
    return {
        "name": t.name,
        "version": t.version,
        "algorithm": t.algorithm,
        "vocab_size": t.vocab_size,
        "vocab_hash": t.vocab_hash,
        "job_id": t.job_id,
        "dataset_id": t.dataset_id,
        "training_seconds": t.training_seconds,
        "created_at": iso(t.created_at),
        "artifact_uri": t.artifact_uri,
        "params": t.params,
    }


def endpoint_row(row: Any) -> dict[str, Any]:
    options = row.options or {}
    scale = row.autoscaling
    return {
        "name": row.name,
        "model": f"{row.model_version.model.name}:{row.model_version.version}",
        "alias": row.alias,
        "task": row.task,
        "route": row.route,
        "url": row.url,
        "replicas": f"{scale['min_replicas']}-{scale['max_replicas']}" if scale else row.replicas,
        "status": row.status,
        "message": row.message,
        "api_key": "required" if options.get("api_key_sha256") else "none",
        "options": {k: v for k, v in options.items() if k != "api_key_sha256"},
        "created_by": row.created_by,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def user_row(u: Any) -> dict[str, Any]:
    return {
        "name": u.name,
        "role": u.role,
        "created_by": u.created_by,
        "created_at": iso(u.created_at),
        "revoked_at": iso(u.revoked_at),
    }


def audit_row(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "at": iso(a.at),
        "actor": a.actor,
        "action": a.action,
        "target": a.target,
        "before": a.before,
        "after": a.after,
    }
