"""``python -m orchestrator.api``: run the API server in the foreground (`orch server` and
the local server that `orch cluster up` starts)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
from pathlib import Path


def serve(host: str, port: int, state_file: Path | None = None) -> None:
    """Bind, record where (``state_file``: {url, pid}), and serve until SIGTERM."""
    import uvicorn

    from orchestrator.api.app import create_app
    from orchestrator.api.local import write_private
    from orchestrator.config import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    url = f"http://[{shown}]:{bound}" if ":" in shown else f"http://{shown}:{bound}"
    if state_file is not None:
        record = {"url": url, "pid": os.getpid(), "cluster_address": settings.cluster_address}
        write_private(state_file, json.dumps(record))
    logging.getLogger("orch.api").info("serving the API and console at %s", url)
    config = uvicorn.Config(app, log_level="info", access_log=True, timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m orchestrator.api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8270)
    parser.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args()
    serve(args.host, args.port, args.state_file)


if __name__ == "__main__":
    main()
