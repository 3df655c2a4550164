"""The API over real HTTP (uvicorn on 127.0.0.1, a real registry): the OpenAPI schema
covers every route and every route answers as it says (schemathesis), users and roles, the
audit trail, and the CLI through the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from orchestrator.cli import cli
from orchestrator.registry import JobStatus, store
from tests.api_server import ApiServer


def seed(api: ApiServer) -> dict[str, int]:
    with api.registry.session() as s:
        mine = store.create_job(
            s,
            kind="tokenizer",
            name="t",
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 1}]},
            submitted_by="member1",
        ).id
        theirs = store.create_job(
            s,
            kind="tokenizer",
            name="u",
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 1}]},
            submitted_by="someone-else",
        ).id
        for version in (1, 2):
            store.add_model_version(
                s,
                name="clf",
                task="text-classification",
                artifact_uri=f"/a/clf/v{version}",
                metrics={"accuracy": 0.8 + version / 100},
            )
    return {"mine": mine, "theirs": theirs}


# Routes that reach the Ray cluster answer 503 where none runs (as here); submitting a valid
# spec would start one: both are exercised by the integration and e2e tests.
NEEDS_A_CLUSTER = {("GET", "/api/cluster"), ("POST", "/api/jobs")}


def test_every_route_answers_as_its_schema_says(api_server: ApiServer) -> None:
    """Generated requests to every operation, valid and not (schemathesis): no 5xx,
    documented status codes, answers that conform to the schema, declared content types."""
    seed(api_server)
    schema = schemathesis.openapi.from_url(
        f"{api_server.url}/api/openapi.json",
        headers={"Authorization": f"Bearer {api_server.tokens['admin']}"},
    )
    tested = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in NEEDS_A_CLUSTER:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()
        tested += 1
    assert tested >= 23


def test_the_schema_lists_every_route(api_server: ApiServer) -> None:
    from fastapi.routing import APIRoute

    from orchestrator.api.app import create_app
    from orchestrator.api.routes import admin, endpoints, jobs, registry

    paths = api_server.call("GET", "/api/openapi.json", role=None).json()["paths"]
    app = create_app(api_server.settings, api_server.registry)
    routers = [jobs.router, registry.router, endpoints.router, admin.router]
    every = [*app.routes, *(r for router in routers for r in router.routes)]
    routes = {
        (method.lower(), r.path)
        for r in every
        if isinstance(r, APIRoute) and r.include_in_schema
        for method in r.methods
    }
    documented = {(m, p) for p, ops in paths.items() for m in ops}
    assert routes == documented
    assert len(routes) >= 25


def test_roles_and_the_audit_trail(api_server: ApiServer) -> None:
    ids = seed(api_server)
    assert api_server.call("GET", "/api/jobs", "viewer").status_code == 200
    refused = api_server.call("POST", "/api/models/clf/promote", "member", json={"version": 1})
    assert refused.status_code == 403 and "needs the admin role" in refused.json()["detail"]
    ok = api_server.call("POST", "/api/models/clf/promote", "admin", json={"version": 1})
    assert ok.status_code == 200 and ok.json()["messages"] == ["clf@production moved to v1"]
    api_server.call("POST", "/api/models/clf/promote", "admin", json={"version": 2})
    back = api_server.call("POST", "/api/models/clf/rollback", "admin", json={})
    assert back.json()["messages"] == ["clf@production rolled back from v2 to v1"]
    # members cancel their own jobs only; admins any
    other = api_server.call("POST", f"/api/jobs/{ids['theirs']}/cancel", "member")
    assert other.status_code == 403 and "submitted by someone-else" in other.json()["detail"]
    own = api_server.call("POST", f"/api/jobs/{ids['mine']}/cancel", "member")
    assert own.json()["outcome"] == "CANCELLED"
    assert api_server.call("POST", f"/api/jobs/{ids['theirs']}/cancel", "admin").ok
    shown = api_server.call("GET", f"/api/jobs/{ids['mine']}", "viewer").json()
    assert shown["events"][-1]["reason"] == "cancelled by member1 while queued"
    trail = api_server.call("GET", "/api/audit", "viewer").json()
    assert [(a["actor"], a["action"]) for a in trail[:5]] == [
        ("admin1", "job.cancel"),
        ("member1", "job.cancel"),
        ("admin1", "model.rollback"),
        ("admin1", "model.promote"),
        ("admin1", "model.promote"),
    ]
    assert trail[2]["target"] == "model/clf@production"
    assert (trail[2]["before"], trail[2]["after"]) == ({"version": 2}, {"version": 1})
    assert trail[0]["before"] == {"status": "QUEUED"}
    with api_server.registry.session() as s:  # who moved the alias is recorded with the move
        from orchestrator.registry.models import AliasEvent

        assert {e.moved_by for e in s.query(AliasEvent)} == {"admin1"}


def test_users_are_added_listed_and_revoked_through_the_cli(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch, orch_home: Path
) -> None:
    from orchestrator.client import api

    def orch(*args: str, role: str = "admin") -> tuple[int, str, str]:
        for key, value in api_server.env(role).items():
            monkeypatch.setenv(key, value)
        api.cache_clear()
        result = CliRunner().invoke(cli, list(args))
        return result.exit_code, result.stdout, result.stderr

    code, out, err = orch("users", "add", "ada", "--role", "viewer")
    token = out.strip()
    assert code == 0 and token.startswith("orch_") and "not shown again" in err
    with api_server.registry.session() as s:  # only the hash is stored
        assert (
            store.get_user(s, "ada").token_hash != token
            and len(store.get_user(s, "ada").token_hash) == 64
        )
    users = json.loads(orch("users", "list", "--format", "json")[1])
    assert {(u["name"], u["role"]) for u in users} >= {("ada", "viewer"), ("admin1", "admin")}
    assert orch("users", "add", "ada")[0] == 2  # exists already
    assert orch("users", "add", "../ada")[0] == 2  # a name that could become a path
    code, _, err = orch("users", "list", role="member")
    assert code == 1 and "needs the admin role" in err
    api_server.tokens["ada"] = token
    assert orch("jobs", "list", role="ada")[0] == 0
    code, _, err = orch("users", "revoke", "ada")
    assert code == 0 and "token revoked" in err
    code, _, err = orch("jobs", "list", role="ada")
    assert code == 1 and "not valid (unknown or revoked)" in err and token not in err
    audit = json.loads(orch("audit", "--format", "json", "--action", "user.revoke")[1])
    assert audit[0]["target"] == "user/ada" and audit[0]["actor"] == "admin1"
    table = orch("audit")[1]
    assert table.splitlines()[0].split()[:5] == ["ID", "AT", "ACTOR", "ACTION", "TARGET"]


def test_an_unreachable_server_is_one_line_after_retries(
    monkeypatch: pytest.MonkeyPatch, orch_home: Path
) -> None:
    import socket
    import time

    from orchestrator.client import api

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ORCH_SERVER_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ORCH_TOKEN", "orch_x")
    api.cache_clear()
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["jobs", "list"])
    api.cache_clear()
    assert result.exit_code == 1 and time.monotonic() - started > 2  # retried with backoff
    assert result.stderr.startswith(
        f"error: cannot reach the API server at http://127.0.0.1:{port}"
    )
    assert "Traceback" not in result.output and "orch_x" not in result.output


def test_job_states_and_events_follow_through_the_api(api_server: ApiServer) -> None:
    ids = seed(api_server)
    with api_server.registry.session() as s:
        store.transition(s, ids["mine"], JobStatus.STARTING, "admitted")
    events = api_server.call("GET", f"/api/jobs/{ids['mine']}/events?after=1", "viewer").json()
    assert events["status"] == "STARTING" and [e["to"] for e in events["events"]] == ["STARTING"]
