"""The launcher: the Ray Jobs entrypoint (``python -m jobs.runtime.warm run JOB_ID``).

It asks this node's host to fork the driver, forwards stop signals to it and exits with its
status; when the warm path cannot be trusted it becomes the driver itself (``exec``, a cold
start). Standard library only: it starts in every job before anything else runs.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from jobs.runtime.warm.protocol import (
    FORWARDED_SIGNALS,
    PER_JOB_ENV,
    host_dir,
    host_key,
    log,
    receive_message,
    send_message,
)

GPU_ENV = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
HANDSHAKE_TIMEOUT_S = 30.0  # the host answers a launcher with the driver's pid within this


def warm_allowed(env: dict[str, str]) -> str | None:
    """Why this driver starts cold, or None."""
    if env.get("ORCH_WARM_DRIVERS", "1").lower() in ("0", "false", "no", "off"):
        return "warm drivers are off (ORCH_WARM_DRIVERS)"
    if any(env.get(name, "").strip() for name in GPU_ENV):
        return "the driver has a GPU"
    return None


def cold(args: list[str], stopped: list[int] | None = None) -> NoReturn:
    """Become the driver (same pid: Ray's supervisor keeps watching this process), unless a
    stop signal came while the host was asked."""
    if stopped:
        log(f"stopped by signal {stopped[0]} before the driver started")
        sys.exit(128 + stopped[0])
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "jobs.runtime.driver", *args])


def spawn_host(key: str, folder: Path) -> None:
    """Start this node's host in the background, in a session of its own and outside this
    job's process tree, so that stopping this job leaves it running; its output goes to a log
    file beside the socket."""
    env = {k: v for k, v in os.environ.items() if k not in PER_JOB_ENV}
    env["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"  # an accidental CUDA check must not init CUDA
    # the GCS address in its command line: `orch cluster down` stops it with the cluster
    address = [f"--address={env['RAY_ADDRESS']}"] if env.get("RAY_ADDRESS") else []
    # Started by a process that exits at once, so that the host is no descendant of this job:
    # Ray stops a job by signalling its entrypoint and every descendant.
    middle = os.fork()
    if middle == 0:
        try:
            with open(folder / f"{key}.log", "ab") as out:
                subprocess.Popen(
                    [sys.executable, "-m", "jobs.runtime.warm", "serve", key, *address],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    env=env,
                    cwd=os.getcwd(),
                    start_new_session=True,
                    close_fds=True,
                )
        finally:
            os._exit(0)
    os.waitpid(middle, 0)


def connect(path: Path) -> socket.socket | None:
    """A connection to the host listening at ``path``, or None if none does."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def prestart() -> int:
    """Start this node's host ahead of the first job (unless drivers here start cold)."""
    if warm_allowed(dict(os.environ)) is None:
        folder, key = host_dir(), host_key(dict(os.environ))
        if connect(folder / f"{key}.sock") is None:
            spawn_host(key, folder)
            log(f"started the driver host {key}")
    return 0


class Forwarder:
    """Forwards the stop signals the launcher receives to its driver (its process group, or
    itself), and holds those that come before the host has said which process that is."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []

    def install(self) -> None:
        for sig in FORWARDED_SIGNALS:
            signal.signal(sig, self.forward)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)

    def forward(self, signum: int, _frame: Any) -> None:
        if self.pid is None:
            self.pending.append(signum)
            return
        for kill in (os.killpg, os.kill):  # its group (its own subprocesses too), or itself
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(self.pid, signum)
                return

    def flush(self) -> None:
        """Forward the signals that came before the driver's pid did."""
        for signum in self.pending:
            self.forward(signum, None)


def launch(args: list[str]) -> NoReturn:
    """Run the driver for ``args`` forked by this node's host, or cold; exit with its status."""
    env = dict(os.environ)
    why = warm_allowed(env)
    if why is not None:
        log(f"cold start: {why}")
        cold(args)
    signals = Forwarder()
    signals.install()
    sock, key = request_driver(args, env, signals.pending)
    pid = signals.pid = driver_pid(sock, args, signals.pending)
    try:
        watch: int | None = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or no pidfd here
        watch = None
    log(f"driver forked by the warm host {key}: pid {pid}")
    signals.flush()
    sys.exit(driver_exit(sock, pid, watch))


def request_driver(
    args: list[str], env: dict[str, str], pending: list[int]
) -> tuple[socket.socket, str]:
    """Send the host the driver's arguments, environment, working folder, and this process's
    stdout and stderr; start cold (and a host for the next job) when no host takes them."""
    try:
        folder = host_dir()
        key = host_key(env)
        sock = connect(folder / f"{key}.sock")
        if sock is None:
            spawn_host(key, folder)
            log(f"cold start: no driver host {key} on this node yet (one is starting)")
            cold(args, pending)
        sock.settimeout(HANDSHAKE_TIMEOUT_S)
        send_message(sock, {"args": args, "env": env, "cwd": os.getcwd()}, [1, 2])
    except OSError as exc:  # nothing was started: the host is dying or unreachable
        log(f"cold start: the driver host did not take the request ({exc})")
        cold(args, pending)
    return sock, key


def driver_pid(sock: socket.socket, args: list[str], pending: list[int]) -> int:
    """The forked driver's pid; a cold start if the host refused before forking anything."""
    try:
        reply, _ = receive_message(sock)
    except (OSError, ValueError) as exc:  # it may have forked a driver: never start another
        log(f"the driver host did not answer ({exc}); giving up")
        sys.exit(1)
    if reply is not None and "error" in reply:  # refused before forking anything
        log(f"cold start: the driver host refused ({reply['error']})")
        cold(args, pending)
    if not reply or "pid" not in reply:
        log("the driver host closed without an answer; giving up")
        sys.exit(1)
    return int(reply["pid"])


def driver_exit(sock: socket.socket, pid: int, watch: int | None) -> int:
    """The launcher's exit status: the driver's, as a shell reports it (128 + the signal that
    ended it), or 1 once the driver has ended if the host went away (its status is lost)."""
    sock.settimeout(None)
    try:
        done, _ = receive_message(sock)
    except OSError:
        done = None
    if done is None:  # the host died: the driver lives on; wait for it
        log(f"the driver host went away; waiting for driver pid {pid}")
        if watch is not None:
            select.select([watch], [], [])
        else:
            while _alive(pid):
                time.sleep(0.5)
        return 1
    code = int(done["exit"])
    return code if code >= 0 else 128 - code


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
