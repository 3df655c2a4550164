"""`orch datasets list`."""

from __future__ import annotations

import click

from orchestrator.cli.common import api, emit, format_option

COLUMNS = ["id", "uri", "format", "files", "size_bytes", "num_rows", "fingerprint", "created_at"]


@click.group()
def datasets() -> None:
    """Datasets the jobs have read, identified by content."""


@datasets.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option
def list_datasets(limit: int, fmt: str) -> None:
    """Newest first."""
    rows = api().get("/api/datasets", limit=limit)
    if fmt != "json":
        for row in rows:
            row["fingerprint"] = row["fingerprint"][:12]
    emit(rows, COLUMNS, fmt)
