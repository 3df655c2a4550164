"""A real API server (uvicorn, real HTTP on 127.0.0.1) in a thread of the test process, on a
registry of the test's own, with users of each role."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests


@dataclass
class ApiServer:
    url: str
    registry: Any  # orchestrator.registry.Registry
    settings: Any  # orchestrator.config.Settings
    tokens: dict[str, str] = field(default_factory=dict)  # role -> token (users admin1...)

    def add_user(self, name: str, role: str) -> str:
        from orchestrator.api.auth import new_token, token_hash
        from orchestrator.registry import store
        from orchestrator.registry.models import Role

        token = new_token()
        with self.registry.session() as session:
            store.add_user(session, name, Role(role), token_hash(token), created_by="test")
        return token

    def call(self, method: str, path: str, role: str | None = "admin", **kw: Any) -> Any:
        headers = dict(kw.pop("headers", {}) or {})
        if role is not None:
            headers["Authorization"] = f"Bearer {self.tokens[role]}"
        return requests.request(method, self.url + path, headers=headers, timeout=60, **kw)

    def env(self, role: str = "admin") -> dict[str, str]:
        """Environment for an `orch` process that talks to this server as ``role``."""
        return {"ORCH_SERVER_URL": self.url, "ORCH_TOKEN": self.tokens[role]}


@contextmanager
def running_api_server(home: Path, registry_url: str | None = None) -> Iterator[ApiServer]:
    import uvicorn

    from orchestrator.api.app import create_app
    from orchestrator.config import Settings
    from orchestrator.registry import Registry

    settings = Settings(home=home, registry_url=registry_url or f"sqlite:///{home / 'registry.db'}")
    registry = Registry(settings.resolved_registry_url)
    app = create_app(settings, registry)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # log_config=None: uvicorn's loggers (the access log too) propagate, so tests see them
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    api = ApiServer(url, registry, settings)
    for role in ("admin", "member", "viewer"):
        api.tokens[role] = api.add_user(f"{role}1", role)
    try:
        yield api
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
