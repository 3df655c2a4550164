"""Unit tests start no processes that outlive them: an `orch` command run here without a test
server of its own (the ``cli_api``/``api_server`` fixtures) fails to connect instead of
starting a local API server in the background."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_SERVER_URL", "http://127.0.0.1:9")  # discard: nothing answers
    monkeypatch.setenv("ORCH_TOKEN", "orch_unit-tests-start-no-server")
