"""`orch tokenizers list|show`."""

from __future__ import annotations

import click

from orchestrator.cli.common import api, emit, emit_one, format_option

COLUMNS = [
    "name",
    "version",
    "algorithm",
    "vocab_size",
    "job_id",
    "dataset_id",
    "created_at",
    "artifact_uri",
]


@click.group()
def tokenizers() -> None:
    """Registered tokenizers."""


@tokenizers.command("list")
@click.option("--name", default=None, help="Only versions of this tokenizer.")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option
def list_tokenizers(name: str | None, limit: int, fmt: str) -> None:
    """Every registered tokenizer version, newest version first per name."""
    emit(api().get("/api/tokenizers", name=name, limit=limit), COLUMNS, fmt)


@tokenizers.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@format_option
def show(ref: str, fmt: str) -> None:
    """One tokenizer version (the latest if none is given), with its training corpus."""
    from urllib.parse import quote

    emit_one(api().get(f"/api/tokenizers/{quote(ref, safe='')}"), fmt)
