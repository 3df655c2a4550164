"""The API server beside a local cluster: started detached by `orch cluster up` (or by the
first command that needs it), found through ``HOME/servers/REGISTRY-KEY.json``, stopped by
`orch cluster down`. On a single machine nothing changes for the user: the local user is an
admin whose token lives in ``HOME/token``, readable by them only, where the CLI finds it."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ClusterError, UsageError

DEFAULT_PORT = 8270
START_TIMEOUT_S = 90.0


def server_file(settings: Settings) -> Path:
    """Where this home's server for this registry says where it listens (one server per
    registry, as there is one scheduler per registry)."""
    return settings.home / "servers" / f"{settings.registry_key}.json"


def local_user() -> str:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "admin"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)[:64] or "admin"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_local_admin(settings: Settings) -> str:
    """The local user's admin token: the one in the token file (made an admin's token of this
    registry if it is not yet: one token for every registry this home uses), else a new one.
    The registry keeps only its hash."""
    from orchestrator.api.auth import new_token, token_hash
    from orchestrator.ray_client.local import file_lock
    from orchestrator.registry import Registry, store
    from orchestrator.registry.models import Role

    path = settings.local_token_path
    registry = Registry(settings.resolved_registry_url)
    with file_lock(settings.home / "token.lock"):
        token = path.read_text().strip() if path.is_file() else ""
        if token:
            with registry.session() as session:
                user = store.user_by_token_hash(session, token_hash(token))
                if user is not None and user.role == Role.ADMIN:
                    return token
        token = token or new_token()
        name = local_user()
        with registry.session() as session:
            known = store.find_user(session, name)
            if known is not None and (known.created_by is not None or known.revoked_at):
                raise UsageError(
                    f"this registry has a user {name} that is not this machine's local admin "
                    + ("(revoked)" if known.revoked_at else f"(added by {known.created_by})"),
                    hint="use a token an admin gave you: ORCH_TOKEN or token_file",
                )
            store.set_user_token(session, name, Role.ADMIN, token_hash(token))
            store.audit(
                session,
                name,
                "user.local-admin",
                f"user/{name}",
                None,
                {"role": "admin", "token_file": str(path)},
            )
        write_private(path, token + "\n")
        return token


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def running_server(settings: Settings) -> dict[str, Any] | None:
    """The local server of this home, if it runs and answers."""
    path = server_file(settings)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _ours(int(info.get("pid", 0)), path) or not healthy(info["url"]):
        return None
    return dict(info)


def _ours(pid: int, state_file: Path) -> bool:
    """Whether ``pid`` is the API server that writes ``state_file`` (a pid can be reused)."""
    import psutil

    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "orchestrator.api" in cmdline and str(state_file) in cmdline


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def ensure_server(settings: Settings, replace: bool = False) -> dict[str, Any]:
    """Start this home's API server unless it runs; returns {url, pid}. A server started for
    another cluster address is replaced when ``replace`` (`orch cluster up`), else refused."""
    from orchestrator.ray_client.local import file_lock

    with file_lock(settings.home / "server.lock"):
        info = running_server(settings)
        if info is not None and info.get("cluster_address") == settings.cluster_address:
            return info
        if info is not None:  # started for another cluster (`orch cluster up --address`)
            if not replace:
                raise UsageError(
                    f"this home's API server works with cluster "
                    f"{info.get('cluster_address') or 'the local one'}, not "
                    f"{settings.cluster_address or 'the local one'}",
                    hint="`orch cluster up` (with or without --address) moves it",
                )
            stop_server(settings)
        ensure_local_admin(settings)
        return _start(settings)


def _start(settings: Settings) -> dict[str, Any]:
    from orchestrator.ray_client.local import port_free

    if settings.server_port:
        return _spawn(settings, settings.server_port)
    if port_free(DEFAULT_PORT):
        try:
            return _spawn(settings, DEFAULT_PORT)
        except ClusterError:  # another home's server took it meanwhile
            pass
    return _spawn(settings, 0)  # the server binds a free port and records it


def _spawn(settings: Settings, port: int) -> dict[str, Any]:
    path = server_file(settings)
    path.unlink(missing_ok=True)
    log_path = settings.home / "server.log"
    env = {
        **os.environ,
        "ORCH_HOME": str(settings.home),
        "ORCH_REGISTRY_URL": settings.resolved_registry_url,
        "ORCH_ARTIFACT_ROOT": str(settings.resolved_artifact_root),
    }
    env.pop("ORCH_CLUSTER_ADDRESS", None)
    if settings.cluster_address:
        env["ORCH_CLUSTER_ADDRESS"] = settings.cluster_address
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestrator.api",
                "--host",
                settings.server_host,
                "--port",
                str(port),
                "--state-file",
                str(path),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the CLI, and its Ctrl-C
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterError(
                f"the API server exited at start (code {proc.returncode})",
                hint=f"its log: {log_path}",
            )
        info = running_server(settings)
        if info is not None:
            return info
        time.sleep(0.2)
    proc.kill()
    raise ClusterError(
        f"the API server did not answer within {START_TIMEOUT_S:.0f}s", hint=f"its log: {log_path}"
    )


def stop_servers(settings: Settings) -> int:
    """Stop every API server of this home (one per registry it used); how many ran."""
    return sum(_stop(path) for path in (settings.home / "servers").glob("*.json"))


def stop_server(settings: Settings) -> bool:
    """Stop this home's API server for this registry; True if one ran."""
    return _stop(server_file(settings))


def _stop(path: Path) -> bool:
    try:
        pid = int(json.loads(path.read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return False
    path.unlink(missing_ok=True)
    if not _ours(pid, path):
        return False
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _alive(pid):
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    return True
