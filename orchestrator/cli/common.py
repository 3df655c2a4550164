"""Options and helpers every command shares: --format, settings, registry, output."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from orchestrator.client import Api
    from orchestrator.config import Settings

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json (no decoration) for programs.",
)
address_option = click.option(
    "--address",
    envvar="ORCH_CLUSTER_ADDRESS",
    default=None,
    help="GCS address (host:port) of an existing Ray cluster; default: the local cluster.",
)


def settings(**overrides: Any) -> Settings:
    from orchestrator.config import load_settings

    return load_settings(**overrides)


def api(start: bool = True) -> Api:
    """The API server this command talks to (the local one is started unless ``start`` is
    False)."""
    from orchestrator.client import api as connect

    return connect(start)


def info(message: str) -> None:
    """Progress and logs go to stderr; stdout carries data only."""
    click.echo(message, err=True)


def short_time(value: str | datetime | None) -> str:
    """An ISO time (as the API answers) in the local time zone, to the second."""
    if not value:
        return "-"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_messages(answer: dict[str, Any]) -> None:
    for line in answer.get("messages", []):
        info(line)


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    cell: Callable[[str, Any], str] | None = None,
) -> None:
    """Print rows as an aligned table or as a JSON array whose keys are the columns."""
    if fmt == "json":
        click.echo(json.dumps([{c: r.get(c) for c in columns} for r in rows], default=str))
        return
    if not rows:
        info("(none)")
        return
    render = cell or (lambda _c, v: "-" if v is None else str(v))
    table = [[c.upper() for c in columns]] + [[render(c, r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit_one(obj: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(obj, default=str))
        return
    width = max(len(k) for k in obj)
    for key, value in obj.items():
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        click.echo(f"{key.ljust(width)}  {'-' if value is None else value}")


@cache
def code_version() -> str:
    """The project's git revision (with -dirty), else the package version."""
    from orchestrator import __version__

    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=3,
        )
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return __version__
