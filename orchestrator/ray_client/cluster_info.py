"""How to reach a cluster, and whether its GCS answers."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass
class ClusterInfo:
    """How to reach a cluster: GCS address, Jobs API URL, token file, and whether it is ours."""

    gcs_address: str
    dashboard_url: str
    token_path: str
    local: bool
    temp_dir: str | None = None
    serve_port: int | None = None  # chosen at `cluster up`; Serve binds it on first deploy

    def auth_env(self) -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path}


def reachable(address: str, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``HOST:PORT``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False
