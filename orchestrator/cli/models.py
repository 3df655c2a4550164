"""`orch models list|show|import|promote|rollback`."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.common import api, emit, emit_one, format_option, print_messages
from orchestrator.specs.vocabulary import MODEL_TASKS


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
    rows = api().get("/api/models", task=task, name=name, sort=sort_by)
    columns = ["name", "version", "task", "aliases", "job_id", "created_at"]
    columns.insert(4, sort_by or "headline")
    emit(rows, columns, fmt)


@models.command("show")
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@format_option
def show(ref: str, fmt: str) -> None:
    """One version with its lineage: job, spec, dataset, tokenizer, base model, code."""
    from urllib.parse import quote

    emit_one(api().get(f"/api/models/{quote(ref, safe='')}"), fmt)


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
    answer = api().post(
        "/api/models/import",
        {"folder": str(folder.expanduser().resolve()), "name": name, "task": task, "alias": alias},
    )
    print_messages(answer)
    answer.pop("messages", None)
    emit_one(answer, fmt)


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
    from urllib.parse import quote

    print_messages(
        api().post(
            f"/api/models/{quote(name, safe='')}/promote", {"version": version, "alias": alias}
        )
    )


@models.command("rollback")
@click.argument("name")
@click.option("--alias", default="production", show_default=True, help="The alias to move back.")
def rollback(name: str, alias: str) -> None:
    """Point NAME@ALIAS back at the version it held before its latest move."""
    from urllib.parse import quote

    print_messages(api().post(f"/api/models/{quote(name, safe='')}/rollback", {"alias": alias}))
