"""`orch users add|list|revoke`, `orch audit` and `orch server`."""

from __future__ import annotations

import click

from orchestrator.cli.common import api, emit, format_option, info, print_messages, short_time

ROLES = ["admin", "member", "viewer"]


@click.group()
def users() -> None:
    """Who may use the API, and their roles (admin only)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
def add(name: str, role: str) -> None:
    """Add a user and print their token: it is shown this once (only a hash is kept)."""
    answer = api().post("/api/users", {"name": name, "role": role})
    info(f"added {name} ({role}); give them this token, it is not shown again:")
    click.echo(answer["token"])


@users.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked users.")
@format_option
def list_users(show_all: bool, fmt: str) -> None:
    """Users and their roles."""
    rows = api().get("/api/users", all=show_all or None)
    emit(rows, ["name", "role", "created_by", "created_at", "revoked_at"], fmt)


@users.command("revoke")
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke a user's token: their next request is refused."""
    from urllib.parse import quote

    print_messages(api().delete(f"/api/users/{quote(name, safe='')}"))


@click.command()
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--user", "actor", default=None, help="Only changes by this user.")
@click.option("--action", default=None, help="Only this action (job.submit, model.promote...).")
@format_option
def audit(limit: int, actor: str | None, action: str | None, fmt: str) -> None:
    """Changes made through the API, newest first: who, what, when, before and after."""
    rows = api().get("/api/audit", limit=limit, actor=actor, action=action)
    emit(
        rows,
        ["id", "at", "actor", "action", "target", "before", "after"],
        fmt,
        cell=lambda c, v: short_time(v) if c == "at" else ("-" if v is None else _short(v)),
    )


def _short(value: object) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: server_host).")
@click.option("--port", type=int, default=None, help="Port (default: server_port, else 8270).")
def server(host: str | None, port: int | None) -> None:
    """Run the API server and web console in the foreground, for a registry shared by
    several clusters (`orch cluster up` starts one beside a local cluster by itself).
    The first start makes the local user an admin (token in HOME/token)."""
    from orchestrator.api.__main__ import serve
    from orchestrator.api.local import DEFAULT_PORT, ensure_local_admin
    from orchestrator.cli.common import settings

    s = settings()
    ensure_local_admin(s)
    info(f"admin token: {s.local_token_path} (readable by you only)")
    serve(host or s.server_host, port or s.server_port or DEFAULT_PORT)
