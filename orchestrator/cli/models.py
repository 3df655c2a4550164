"""`orch models list|show|import|promote|rollback`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from orchestrator.cli.common import emit, emit_one, format_option, info, iso, registry, settings

LOWER_IS_BETTER = ("loss", "perplexity")
# jobs.specs.serving.MODEL_TASKS, spelt out: `orch --help` imports nothing beyond click
MODEL_TASKS = (
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "feature-extraction",
)


def version_row(v: Any, aliases: list[str]) -> dict[str, Any]:
    return {
        "name": v.model.name,
        "version": v.version,
        "task": v.task,
        "aliases": ",".join(sorted(aliases)) or None,
        "job_id": v.job_id,
        "metrics": v.metrics,
        "created_at": iso(v.created_at),
        "artifact_uri": v.artifact_uri,
    }


@click.group()
def models() -> None:
    """Registered models and their versions."""


@models.command("list")
@click.option("--task", type=click.Choice(MODEL_TASKS), default=None)
@click.option("--name", default=None, help="Only versions of this model.")
@click.option(
    "--sort",
    "sort_by",
    default=None,
    metavar="METRIC",
    help="Best first by this metric (e.g. accuracy; loss and perplexity: lowest).",
)
@format_option
def list_models(task: str | None, name: str | None, sort_by: str | None, fmt: str) -> None:
    """Every model version, newest first per model (or best first with --sort)."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        versions = store.list_model_versions(session, task, name)
        rows = [
            version_row(v, store.aliases_of(session, v.model_id).get(v.id, [])) for v in versions
        ]
    columns = ["name", "version", "task", "aliases", "job_id", "created_at"]
    if sort_by:
        scored = [r for r in rows if sort_by in (r["metrics"] or {})]
        scored.sort(key=lambda r: r["metrics"][sort_by], reverse=sort_by not in LOWER_IS_BETTER)
        rows = scored
        for r in rows:
            r[sort_by] = round(float(r["metrics"][sort_by]), 4)
        columns.insert(4, sort_by)
    else:
        for r in rows:
            keys = ("f1",) if r["task"] == "token-classification" else ("accuracy", "perplexity")
            for key in keys:
                if key in (r["metrics"] or {}):
                    r["headline"] = f"{key} {float(r['metrics'][key]):.4g}"
                    break
        columns.insert(4, "headline")
    emit(rows, columns, fmt)


@models.command("show")
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@format_option
def show(ref: str, fmt: str) -> None:
    """One version with its lineage: job, spec, dataset, tokenizer, base model, code."""
    from jobs.specs.names import parse_versioned
    from orchestrator.registry import store
    from orchestrator.registry.models import Dataset, Job, ModelVersion, Tokenizer

    name, version, alias = parse_versioned(ref, "model name")
    with registry(settings()).session() as session:
        v = store.get_model_version(session, name, version, alias)
        out = version_row(v, store.aliases_of(session, v.model_id).get(v.id, []))
        job = session.get(Job, v.job_id) if v.job_id else None
        dataset = session.get(Dataset, v.dataset_id) if v.dataset_id else None
        tok = session.get(Tokenizer, v.tokenizer_id) if v.tokenizer_id else None
        base = session.get(ModelVersion, v.base_version_id) if v.base_version_id else None
        out["lineage"] = {
            "job": {"id": job.id, "kind": job.kind, "status": job.status} if job else None,
            "spec": job.spec if job else None,
            "dataset": {
                "id": dataset.id,
                "uri": dataset.uri,
                "fingerprint": dataset.fingerprint,
                "num_rows": dataset.num_rows,
            }
            if dataset
            else None,
            "tokenizer": f"{tok.name}:{tok.version}" if tok else None,
            "base_model": (f"{base.model.name}:{base.version}" if base else v.base_model),
            "imported_from": v.imported_from,
            "fingerprint": v.fingerprint,
            "code_version": v.code_version,
        }
    emit_one(out, fmt)


@models.command("import")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--name", required=True, help="Registry name; the import is its next version.")
@click.option(
    "--task",
    type=click.Choice(MODEL_TASKS),
    default=None,
    help="Default: read from config.json's architectures (a given task must agree).",
)
@click.option("--alias", default=None, help="Point NAME@ALIAS at the imported version.")
@format_option
def import_model(folder: Path, name: str, task: str | None, alias: str | None, fmt: str) -> None:
    """Register a local Hugging Face model FOLDER as a new version of NAME.

    The folder needs config.json, its tokenizer and safetensors weights (pickled weights,
    e.g. pytorch_model.bin, are never loaded nor copied). Its files are copied under the
    artifact root with a content fingerprint; the version can then be served, evaluated,
    promoted and fine-tuned from (base.model: NAME@ALIAS) like a trained one.
    """
    from orchestrator import model_import

    s = settings()
    done = model_import.import_model(
        registry(s), s.resolved_artifact_root, folder, name, task, alias
    )
    if done.skipped:
        info(f"not copied (pickled weights): {', '.join(done.skipped)}")
    if alias:
        info(f"{name}@{alias} now points at v{done.version}")
        _follow(name, alias)  # endpoints serving NAME@ALIAS move to it
    emit_one(
        {
            "model": f"{done.name}:{done.version}",
            "task": done.task,
            "files": done.files,
            "fingerprint": done.fingerprint,
            "artifact_uri": done.artifact_uri,
            "imported_from": done.imported_from,
        },
        fmt,
    )


@models.command("promote")
@click.argument("name")
@click.argument("version", type=int)
@click.option(
    "--alias",
    default="production",
    show_default=True,
    help="The alias to point at this version (production, staging, ...).",
)
def promote(name: str, version: int, alias: str) -> None:
    """Point NAME@ALIAS at VERSION; the move is recorded."""
    from jobs.specs.names import check_name
    from orchestrator.registry import store

    check_name(alias, "alias")
    s = settings()
    with registry(s).session() as session:
        previous = store.set_alias(session, name, version, alias)
    moved = f"from v{previous} " if previous else ""
    info(f"{name}@{alias} moved {moved}to v{version}")
    _follow(name, alias)


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
def rollback(name: str, alias: str) -> None:
    """Point NAME@ALIAS back at the version it held before its latest move."""
    from orchestrator.registry import store

    s = settings()
    with registry(s).session() as session:
        target = store.previous_alias_holder(session, name, alias)
        current = store.set_alias(session, name, target, alias)
    info(f"{name}@{alias} rolled back from v{current} to v{target}")
    _follow(name, alias)


def _follow(name: str, alias: str) -> None:
    """Endpoints serving NAME@ALIAS move with it."""
    from orchestrator import endpoints

    s = settings()
    for line in endpoints.follow_alias(s, registry(s), name, alias):
        info(line)
