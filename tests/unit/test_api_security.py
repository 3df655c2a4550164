"""The API's security defaults over real HTTP: no token 401, a role that may not 403 on every
mutating route, tokens never in logs or answers, names that would become paths refused,
oversized bodies refused, cross-origin changes refused."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import requests

from orchestrator.registry import store
from tests.api_server import ApiServer
from tests.conftest import MARS

PUBLIC = {("get", "/api/health"), ("get", "/api/openapi.json")}
# What each role may do beyond reading: members submit, cancel (their own), serve, predict
MEMBER_ROUTES = {
    ("post", "/api/jobs"),
    ("post", "/api/jobs/{job_id}/cancel"),
    ("post", "/api/endpoints"),
    ("post", "/api/endpoints/{name}/predict"),
}


def operations(api: ApiServer) -> list[tuple[str, str]]:
    paths = api.call("GET", "/api/openapi.json", role=None).json()["paths"]
    return [(method, path) for path, ops in paths.items() for method in ops]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "1" if "id" in m.group(0) else "clf", path)


def test_every_route_needs_a_valid_token(api_server: ApiServer) -> None:
    ops = operations(api_server)
    assert len(ops) >= 25
    for method, path in ops:
        if (method, path) in PUBLIC:
            continue
        for headers in ({}, {"Authorization": "Bearer orch_not-a-token"}, {"Authorization": "x"}):
            resp = api_server.call(method, concrete(path), role=None, headers=headers, json={})
            assert resp.status_code == 401, (method, path, headers, resp.text)
            assert resp.headers["www-authenticate"] == "Bearer"


def test_every_mutating_route_refuses_a_role_that_may_not(api_server: ApiServer) -> None:
    mutating = [(m, p) for m, p in operations(api_server) if m in ("post", "put", "delete")]
    assert len(mutating) >= 9
    for method, path in mutating:
        resp = api_server.call(method, concrete(path), "viewer", json={})
        assert resp.status_code == 403, (method, path, resp.text)
        assert "viewer1 is a viewer" in resp.json()["detail"]
        if (method, path) not in MEMBER_ROUTES:
            resp = api_server.call(method, concrete(path), "member", json={})
            assert resp.status_code == 403, (method, path, resp.text)
            assert "needs the admin role" in resp.json()["detail"]


def test_tokens_never_reach_logs_or_answers(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "orch_this-must-never-be-echoed"
    answers = [
        api_server.call(
            "GET", "/api/jobs", role=None, headers={"Authorization": f"Bearer {secret}"}
        ),
        api_server.call("GET", f"/api/jobs?token={secret}", role=None),
        api_server.call("GET", "/api/nope", "admin"),
        api_server.call("POST", "/api/users", "admin", json={"name": "u1", "role": "viewer"}),
    ]
    issued = answers[3].json()["token"]
    assert all(secret not in r.text for r in answers[:3])
    assert api_server.call("GET", "/api/users", "admin").text.count("orch_") == 0
    server_side = ("uvicorn", "orch", "fastapi", "starlette")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(server_side))
    assert "GET /api/jobs" in logged and "orch_[redacted]" in logged  # the access log
    for token in (secret, issued, *api_server.tokens.values()):
        assert token not in logged
    with api_server.registry.session() as s:
        for row in store.list_audit(s):
            assert issued not in str(row.after) and issued not in str(row.before)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/users", {"name": "../etc"}),
        ("post", "/api/users", {"name": "a/b"}),
        ("post", "/api/models/clf/promote", {"version": 1, "alias": "../x"}),
        ("post", "/api/models/import", {"folder": "/nonexistent", "name": "../x"}),
        ("post", "/api/endpoints", {"ref": "../x@production"}),
        ("get", "/api/models/..%2F..%2Fetc", None),
        ("get", "/api/tokenizers/a%2Fb:1", None),
    ],
)
def test_names_that_would_become_paths_are_refused(
    api_server: ApiServer, method: str, path: str, body: dict | None
) -> None:
    resp = api_server.call(method, path, "admin", json=body)
    assert resp.status_code in (400, 404, 422), resp.text
    assert resp.json()["detail"]


def test_oversized_bodies_are_refused(api_server: ApiServer) -> None:
    huge = {"spec": {"kind": "tokenizer", "name": "x" * (2 << 20)}}
    resp = api_server.call("POST", "/api/jobs", "admin", json=huge)
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(40):
            yield b"x" * 65536

    resp = requests.post(
        f"{api_server.url}/api/jobs",
        data=chunks(),
        headers={
            "Authorization": f"Bearer {api_server.tokens['admin']}",
            "Content-Type": "application/json",
        },
        timeout=30,
    )
    assert resp.status_code == 413
    with api_server.registry.session() as s:
        assert store.list_jobs(s) == []


def test_changes_from_another_origin_are_refused(api_server: ApiServer) -> None:
    evil = {"Origin": "http://evil.example"}
    resp = api_server.call(
        "POST", "/api/users", "admin", headers=evil, json={"name": "mallory", "role": "admin"}
    )
    assert resp.status_code == 403 and "cross-origin" in resp.json()["detail"]
    with api_server.registry.session() as s:
        assert "mallory" not in {u.name for u in store.list_users(s)}
    # no CORS grant either: a preflight from another origin gets no Allow-Origin
    pre = requests.options(
        f"{api_server.url}/api/users",
        headers={**evil, "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in pre.headers
    # the console's own origin may
    own = {"Origin": api_server.url}
    ok = api_server.call("POST", "/api/users", "admin", headers=own, json={"name": "eve"})
    assert ok.status_code == 201
    page = api_server.call("GET", "/api/health", role=None)
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_revoked_token_is_refused_at_once(api_server: ApiServer) -> None:
    token = api_server.add_user("temp", "member")
    headers = {"Authorization": f"Bearer {token}"}
    assert api_server.call("GET", "/api/whoami", role=None, headers=headers).json() == {
        "name": "temp",
        "role": "member",
    }
    assert api_server.call("DELETE", "/api/users/temp", "admin").ok
    assert api_server.call("GET", "/api/jobs", role=None, headers=headers).status_code == 401
    own = api_server.call("DELETE", "/api/users/admin1", "admin")
    assert own.status_code == 400 and "cannot revoke their own" in own.json()["detail"]


def test_a_member_changes_only_the_endpoints_they_deployed(api_server: ApiServer) -> None:
    from orchestrator.registry.models import DeploymentStatus

    with api_server.registry.session() as s:
        v = store.add_model_version(s, name="clf", task="text-classification", artifact_uri="/a")
        s.flush()
        store.save_deployment(
            s, "clf", model_version_id=v.id, route="/models/clf", status=DeploymentStatus.RUNNING,
            task="text-classification", created_by="admin1",
        )  # fmt: skip
    body = {"ref": "clf:1", "no_api_key": True}
    refused = api_server.call("POST", "/api/endpoints", "member", json=body)
    assert refused.status_code == 403 and "deployed by admin1" in refused.json()["detail"]
    with api_server.registry.session() as s:
        assert store.get_deployment(s, "clf").status == DeploymentStatus.RUNNING  # untouched


def test_members_jobs_read_data_only_where_the_server_allows(
    api_server: ApiServer, tmp_path: Path
) -> None:
    def submit(role: str, files: list[str]) -> requests.Response:
        spec = {"kind": "tokenizer", "name": "t", "data": {"files": files}}
        return api_server.call("POST", "/api/jobs", role, json={"spec": spec})

    token_file = api_server.settings.home / "token"
    token_file.write_text("orch_secret\n")
    refused = submit("member", [str(token_file)])
    assert refused.status_code == 422
    assert "would read the orchestrator's own files" in refused.json()["detail"]
    assert submit("member", ["/"]).status_code == 422  # a folder holding the home: refused
    api_server.settings.data_roots = [tmp_path / "data"]
    (tmp_path / "data").mkdir()
    outside = submit("member", [str(MARS)])
    assert "outside the data folders this server allows" in outside.json()["detail"]
    (tmp_path / "data" / "x.txt").symlink_to(token_file)  # a link out of the data folder
    linked = submit("member", [str(tmp_path / "data" / "x.txt")])
    assert "outside the data folders this server allows" in linked.json()["detail"]
    with api_server.registry.session() as s:  # nothing was queued
        assert store.list_jobs(s) == []


def test_an_endpoints_own_refusals_are_not_the_apis() -> None:
    from orchestrator.api.app import status_of
    from orchestrator.errors import EndpointError

    assert status_of(EndpointError("a key is required", status=401)) == 400
    assert status_of(EndpointError("bad input", status=422)) == 422
    assert status_of(EndpointError("does not answer")) == 502
    assert status_of(EndpointError("failed", status=500)) == 502


def test_a_remote_server_never_gets_the_local_admin_token(
    monkeypatch: pytest.MonkeyPatch, orch_home: Path
) -> None:
    from orchestrator.client import connect
    from orchestrator.config import load_settings
    from orchestrator.errors import AccessError

    orch_home.mkdir(parents=True, exist_ok=True)
    (orch_home / "token").write_text("orch_local-admin\n")
    monkeypatch.delenv("ORCH_TOKEN")
    with pytest.raises(AccessError, match="no token for http://127.0.0.1:9"):
        connect(load_settings())


def test_cluster_down_stops_only_our_server_processes(orch_home: Path) -> None:
    import json
    import subprocess

    from orchestrator.api.local import stop_servers
    from orchestrator.config import Settings

    other = subprocess.Popen(["sleep", "60"])  # a process that reused a recorded pid
    try:
        state = orch_home / "servers" / "x.json"
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": other.pid}))
        assert stop_servers(Settings(home=orch_home)) == 0
        assert other.poll() is None and not state.exists()
    finally:
        other.kill()
