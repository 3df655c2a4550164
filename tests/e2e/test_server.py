"""`orch server` on its own, as on a machine that serves a registry shared by several
clusters: a real process, a colleague's CLI with a URL and a token, and a log with no token."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import orch_cmd, run_orch
from tests.e2e.test_cli_cluster import clean_env

pytestmark = pytest.mark.e2e


def test_a_standalone_server_serves_a_colleague_with_a_url_and_a_token(tmp_path: Path) -> None:
    from orchestrator.ray_client.local import pick_port

    port = pick_port()
    home = tmp_path / "home"
    env = clean_env(home)
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [*orch_cmd(), "server", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/api/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        admin = (home / "token").read_text().strip()
        assert (home / "token").stat().st_mode & 0o777 == 0o600
        as_admin = {
            **clean_env(tmp_path / "elsewhere"),
            "ORCH_SERVER_URL": url,
            "ORCH_TOKEN": admin,
        }
        token = run_orch(["users", "add", "ada", "--role", "viewer"], as_admin, check=True)
        ada = {**clean_env(tmp_path / "ada"), "ORCH_SERVER_URL": url}
        (tmp_path / "ada-token").write_text(token.stdout)
        ada["ORCH_TOKEN_FILE"] = str(tmp_path / "ada-token")
        listed = run_orch(["jobs", "list", "--format", "json"], ada, check=True)
        assert json.loads(listed.stdout) == []
        refused = run_orch(["models", "promote", "clf", "1"], ada)
        assert refused.returncode == 1 and "ada is a viewer" in refused.stderr
        assert "Traceback" not in refused.stderr
        # the colleague's machine has no database: nothing was created beside them
        assert not (tmp_path / "ada").exists() or not list((tmp_path / "ada").rglob("*.db"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "GET /api/jobs" in text  # the access log is on
    assert admin not in text and token.stdout.strip() not in text
