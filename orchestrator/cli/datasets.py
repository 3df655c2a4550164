"""`orch datasets list`."""

from __future__ import annotations

import click

from orchestrator.cli.common import emit, format_option, iso, registry, settings

COLUMNS = ["id", "uri", "format", "files", "size_bytes", "num_rows", "fingerprint", "created_at"]


@click.group()
def datasets() -> None:
    """Datasets the jobs have read, identified by content."""


@datasets.command("list")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option
def list_datasets(limit: int, fmt: str) -> None:
    """Newest first."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        rows = [
            {
                "id": d.id,
                "uri": d.uri,
                "format": d.format,
                "files": len(d.files),
                "size_bytes": d.size_bytes,
                "num_rows": d.num_rows,
                "fingerprint": d.fingerprint if fmt == "json" else d.fingerprint[:12],
                "created_at": iso(d.created_at),
            }
            for d in store.list_datasets(session, limit)
        ]
    emit(rows, COLUMNS, fmt)
