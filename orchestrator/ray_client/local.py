"""The local cluster: its ports, auth token, temp dir and state file, and the start and stop of
its head (our own processes only: ``ray stop`` would stop every Ray cluster on the machine)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from orchestrator.config import Settings
from orchestrator.errors import ClusterError
from orchestrator.ray_client import PROJECT_ROOT
from orchestrator.ray_client.cluster_info import ClusterInfo, reachable

STATE_FILE = "state.json"
STOP_GRACE_S = 10.0
PREFERRED_PORTS = {"gcs": 6380, "dashboard": 8265, "client": 10001, "serve": 8000}
# Ports Ray otherwise takes at fixed defaults (the dashboard agent's 52365...): a second
# cluster on the same machine would fail to start its agent and refuse every job.
FREE_PORT_FLAGS = (
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
    "node-manager-port",
    "object-manager-port",
)
# Ray Serve runs each replica's code and each proxy's router on an event loop of their own
# thread by default; on the same loop, a request costs less CPU (no hand-off between
# threads). Our replicas never block their loop (inference and model loading run in worker
# threads), so the same loop is safe.
SERVE_ENV = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
}


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on this machine now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
            return True
        except OSError:
            return False


def pick_port(preferred: int | None = None) -> int:
    """``preferred`` if it is free, else a free port the system chooses."""
    if preferred and port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def ensure_token(path: Path) -> Path:
    """Create Ray's auth token if missing, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def _temp_dir(settings: Settings) -> str:
    """Short (Ray's unix socket paths must stay under ~107 bytes) and private to this home."""
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:10]
    return os.path.join(tempfile.gettempdir(), f"orch-{os.getuid()}-{digest}")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes on this machine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cluster_lock(settings: Settings) -> Any:
    """Serialise cluster up/down (twenty `orch submit` at once start one cluster, not 20)."""
    return file_lock(settings.cluster_dir / "lock")


def local_cluster(settings: Settings) -> ClusterInfo | None:
    """The local cluster if its state file exists and its GCS answers."""
    path = settings.cluster_dir / STATE_FILE
    if not path.is_file():
        return None
    info = ClusterInfo(**json.loads(path.read_text()))
    return info if reachable(info.gcs_address) else None


def _ray_env(info_env: dict[str, str]) -> dict[str, str]:
    env = {**SERVE_ENV, **os.environ, **info_env, "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    return env


def start_local_cluster(
    settings: Settings,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    extra_args: tuple[str, ...] = (),
    gcs_port: int | None = None,
) -> tuple[ClusterInfo, bool]:
    """Start the local Ray head unless it runs already (``extra_args`` go to ``ray start``,
    e.g. ``--autoscaling-config=FILE``, whose provider may need the GCS port beforehand).
    Returns (info, started_now)."""
    with _cluster_lock(settings):
        running = local_cluster(settings)
        if running:
            return running, False
        token = ensure_token(settings.ray_auth_token_path or settings.cluster_dir / "auth_token")
        ports = {name: pick_port(p) for name, p in PREFERRED_PORTS.items()}
        ports["gcs"] = gcs_port or ports["gcs"]
        temp_dir = _temp_dir(settings)
        cmd = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            f"--port={ports['gcs']}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={ports['dashboard']}",
            f"--ray-client-server-port={ports['client']}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ]
        cmd += [f"--{flag}={pick_port()}" for flag in FREE_PORT_FLAGS]
        cpus = num_cpus if num_cpus is not None else settings.num_cpus
        gpus = num_gpus if num_gpus is not None else settings.num_gpus
        cmd += [f"--num-cpus={cpus:g}"] if cpus is not None else []
        cmd += [f"--num-gpus={gpus:g}"] if gpus is not None else []
        cmd += list(extra_args)
        info = ClusterInfo(
            gcs_address="",
            token_path=str(token),
            local=True,
            temp_dir=temp_dir,
            dashboard_url=f"http://127.0.0.1:{ports['dashboard']}",
            serve_port=ports["serve"],
        )
        proc = subprocess.run(
            cmd, env=_ray_env(info.auth_env()), capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise ClusterError(
                f"`ray start --head` failed (exit {proc.returncode}):\n"
                f"{(proc.stderr or proc.stdout)[-2000:]}"
            )
        info.gcs_address = _gcs_address_from(temp_dir, ports["gcs"])
        (settings.cluster_dir / STATE_FILE).write_text(json.dumps(asdict(info), indent=2))
        return info, True


def _gcs_address_from(temp_dir: str, port: int) -> str:
    """Ray binds the GCS to the node's own address, not loopback: read which one it chose."""
    try:
        session = Path(temp_dir) / "session_latest" / "node_ip_address.json"
        ip = json.loads(session.read_text()).get("node_ip_address")
    except (OSError, ValueError):
        ip = None
    return f"{ip or socket.gethostbyname(socket.gethostname())}:{port}"


def our_processes(temp_dir: str, gcs_address: str | None = None) -> list[psutil.Process]:
    """Every process of the cluster that uses ``temp_dir`` or names its GCS (the Ray client
    server names only ``--address=IP:PORT``, with whichever of this machine's IPs Ray
    picked), with all their descendants."""
    local_ips = {a.address for addrs in psutil.net_if_addrs().values() for a in addrs}
    port = gcs_address.rpartition(":")[2] if gcs_address else None

    def ours(arg: str) -> bool:
        host, _, arg_port = arg.removeprefix("--address=").rpartition(":")
        by_gcs = arg.startswith("--address=") and arg_port == port and host in local_ips
        return temp_dir in arg or by_gcs

    roots = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(ours(arg) for arg in proc.info["cmdline"] or []):
                roots.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    found = {p.pid: p for p in roots}
    for root in roots:
        try:
            found.update({c.pid: c for c in root.children(recursive=True)})
        except psutil.NoSuchProcess:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def stop_local_cluster(settings: Settings) -> int:
    """Stop the local cluster's processes (and only those). Returns how many were stopped."""
    with _cluster_lock(settings):
        path = settings.cluster_dir / STATE_FILE
        state = json.loads(path.read_text()) if path.is_file() else {}
        temp_dir = state.get("temp_dir") or _temp_dir(settings)
        procs = our_processes(temp_dir, state.get("gcs_address"))
        for proc in procs:
            with suppress(psutil.NoSuchProcess):
                proc.send_signal(signal.SIGTERM)
        _gone, alive = psutil.wait_procs(procs, timeout=STOP_GRACE_S)
        for proc in alive:
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        path.unlink(missing_ok=True)
        subprocess.run(["rm", "-rf", temp_dir], check=False)
        return len(procs)
