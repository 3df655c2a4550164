"""What the launcher and the host share: which host may run a driver (its key), where hosts
listen, and the messages between them.

A message is a 4-byte length, then that much JSON. The launcher's request carries its stdout
and stderr as passed descriptors; the host answers with the driver's pid (or an error, before
forking anything), then with the driver's exit status. Standard library only: the launcher
imports this module on its way to asking for a driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The folder holding jobs/ and orchestrator/: this file is jobs/runtime/warm/protocol.py.
PROJECT_ROOT = Path(__file__).resolve().parents[3]
SOURCE_PACKAGES = ("jobs", "orchestrator")
# Variables that differ from job to job and are read when the driver runs, not at import: they
# are not part of the host's key. The thread count is applied to torch in the forked driver.
PER_JOB_ENV = frozenset(
    {
        "ORCH_JOB_ID",
        "RAY_JOB_CONFIG_JSON_ENV_VAR",
        "RAY_JOB_SUBMISSION_ID",
        "RAY_JOB_ID",
        "OMP_NUM_THREADS",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    }
)
# The stop signals the launcher forwards to its driver (Ray stops a job by signalling it).
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
MAX_MESSAGE = 1 << 20


def log(message: str) -> None:
    """One line on stderr: the launcher's goes to the job's log, the host's to its log file."""
    print(
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} jobs.runtime.warm[{os.getpid()}]: {message}",
        file=sys.stderr,
        flush=True,
    )


# --- the host's key: which host may run a driver --------------------------------------------


def code_fingerprint() -> list[Any]:
    """Size and mtime of every source file of this project and of the installed packages'
    folders on ``sys.path`` (site-packages, dist-packages; not the others, which depend on
    how and where Python was started): an edit, checkout or upgrade gives another one."""
    files = []
    for package in SOURCE_PACKAGES:
        for folder, dirs, names in os.walk(PROJECT_ROOT / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    with contextlib.suppress(OSError):  # gone mid-checkout: the rest differs
                        st = os.stat(os.path.join(folder, name))
                        files.append([os.path.join(folder, name), st.st_size, st.st_mtime_ns])
    for entry in sys.path:  # an install or upgrade adds a *-info folder: the mtime changes
        with contextlib.suppress(OSError):
            if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry):
                files.append([entry, 0, os.stat(entry).st_mtime_ns])
    return files


def host_key(env: dict[str, str], fingerprint: list[Any] | None = None) -> str:
    """The host for this Python, this code and this environment (per-job variables aside)."""
    shared = {k: v for k, v in env.items() if k not in PER_JOB_ENV}
    payload = json.dumps(
        [sys.executable, fingerprint or code_fingerprint(), sorted(shared.items())]
    ).encode()
    return hashlib.sha256(payload).hexdigest()[:24]


def host_dir() -> Path:
    """A folder only this user can enter (the socket runs code as this user)."""
    folder = Path(tempfile.gettempdir()) / f"orch-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    st = os.lstat(folder)
    if st.st_uid != os.getuid() or st.st_mode & 0o077 or not os.path.isdir(folder):
        raise PermissionError(f"{folder} is not a private folder of this user")
    return folder


# --- messages: a length, then JSON; the launcher's stdout and stderr ride on its request ------


def send_message(sock: socket.socket, payload: dict[str, Any], fds: Sequence[int] = ()) -> None:
    """One message, with ``fds`` passed alongside its first bytes."""
    data = json.dumps(payload).encode()
    frame = struct.pack("!I", len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [frame], list(fds))
        frame = frame[sent:]
    if frame:
        sock.sendall(frame)


def receive_message(
    sock: socket.socket, max_fds: int = 0
) -> tuple[dict[str, Any] | None, list[int]]:
    """One message (None at end of stream) and the descriptors sent with it (closed here if
    the message is bad)."""
    if max_fds:
        head, fds, _flags, _addr = socket.recv_fds(sock, 4, max_fds)
    else:
        head, fds = sock.recv(4), []
    try:
        return _rest_of_message(sock, head, list(fds))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _rest_of_message(
    sock: socket.socket, head: bytes, fds: list[int]
) -> tuple[dict[str, Any] | None, list[int]]:
    while head and len(head) < 4:
        more = sock.recv(4 - len(head))
        if not more:
            break
        head += more
    if len(head) < 4:
        return None, fds
    (size,) = struct.unpack("!I", head)
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    body = b""
    while len(body) < size:
        more = sock.recv(size - len(body))
        if not more:
            return None, fds
        body += more
    return json.loads(body), fds
