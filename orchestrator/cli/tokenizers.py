"""`orch tokenizers list|show`."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.common import emit, emit_one, format_option, iso, registry, settings

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


@click.group()
def tokenizers() -> None:
    """Registered tokenizers."""


@tokenizers.command("list")
@click.option("--name", default=None, help="Only versions of this tokenizer.")
@click.option("--limit", type=int, default=100, show_default=True)
@format_option
def list_tokenizers(name: str | None, limit: int, fmt: str) -> None:
    """Every registered tokenizer version, newest version first per name."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        rows = [tokenizer_row(t) for t in store.list_tokenizers(session, name, limit)]
    emit(rows, COLUMNS, fmt)


@tokenizers.command("show")
@click.argument("ref", metavar="NAME[:VERSION]")
@format_option
def show(ref: str, fmt: str) -> None:
    """One tokenizer version (the latest if none is given), with its training corpus."""
    from jobs.specs.names import parse_versioned
    from orchestrator.registry import store

    name, version, _alias = parse_versioned(ref, "tokenizer name")
    with registry(settings()).session() as session:
        t = store.get_tokenizer(session, name, version)
        out = tokenizer_row(t)
        if t.dataset is not None:
            out["dataset"] = {
                "id": t.dataset.id,
                "uri": t.dataset.uri,
                "fingerprint": t.dataset.fingerprint,
                "num_rows": t.dataset.num_rows,
            }
    out["load_with"] = f"AutoTokenizer.from_pretrained({out['artifact_uri']!r})"
    emit_one(out, fmt)
