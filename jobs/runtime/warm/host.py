"""The driver host (``python -m jobs.runtime.warm serve KEY``): one per node, cluster, code
version and environment. It imports the job code once, then forks a driver for each launcher
that connects, tells the launcher its pid and later its exit status, and kills a driver whose
launcher went away. It retires (takes no more jobs, exits once its drivers have finished) when
its code changes, its Ray cluster's GCS stops answering, it is idle for an hour, or on SIGTERM.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import importlib
import os
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from jobs.runtime.warm.forked import run_driver
from jobs.runtime.warm.protocol import (
    FORWARDED_SIGNALS,
    code_fingerprint,
    host_dir,
    host_key,
    log,
    receive_message,
    send_message,
)

# What the host imports before it takes jobs: what every driver imports, and what a training
# driver (one worker trains in the driver) imports on the way to its first step.
PRELOAD = (
    "jobs.runtime.driver",
    "jobs.tokenizer",
    "jobs.finetune",
    "jobs.pretrain",
    "jobs.evaluate",
    "jobs.train.worker",
    "ray.train.torch",
    "ray.data",
)
PRELOAD_ATTRIBUTES = ("AutoTokenizer", "AutoConfig", "AutoModelForSequenceClassification")
REQUEST_TIMEOUT_S = 5.0  # a launcher sends its request as soon as it connects
CHECK_EVERY_S = 5.0  # the host looks at its code, its cluster and its idle time this often
IDLE_EXIT_S = 3600.0


def serve(key: str) -> int:
    """Hold the host's lock for ``key``, preload the job code and serve until retired."""
    folder = host_dir()
    lock = open(folder / f"{key}.lock", "w")  # noqa: SIM115 - held for the host's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return 0  # another host of this key runs (two launchers raced): it serves
        raise
    started = time.monotonic()
    preload()
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        log("CUDA was initialised while preloading: not serving (forked drivers would fail)")
        return 1
    log(f"preloaded the job code in {time.monotonic() - started:.1f} s")
    host = Host(key, folder)
    host.private_fds.append(lock.fileno())
    host.serve()
    return 0


def preload() -> None:
    """Import what drivers import (a module that fails is left for the driver to report)."""
    for module in PRELOAD:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - the driver will import it and say why
            log(f"could not preload {module}: {exc}")
    try:
        import transformers

        for name in PRELOAD_ATTRIBUTES:
            getattr(transformers, name)
    except Exception as exc:  # noqa: BLE001
        log(f"could not preload transformers: {exc}")


def _cluster_alive(address: str | None) -> bool:
    """Whether the GCS this host's drivers connect to still answers (no address: assume so)."""
    if not address or ":" not in address:
        return True
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def check_peer(conn: socket.socket) -> None:
    """Only a process of this user may have a driver forked (it runs code as this user)."""
    uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    if uid != os.getuid():
        raise PermissionError(f"a process of uid {uid} connected")


class Host:
    """The socket, the event loop and the drivers forked from this process."""

    def __init__(self, key: str, folder: Path) -> None:
        self.key, self.folder = key, folder
        self.path = folder / f"{key}.sock"
        self.fingerprint = code_fingerprint()
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, socket.socket] = {}  # driver pid -> its launcher's connection
        self.listener: socket.socket | None = None
        self.private_fds: list[int] = []  # closed in every driver
        self.last_job = time.monotonic()
        self.unreachable = 0
        self.stopping: list[str] = []  # set by SIGTERM; the loop retires

    def listen(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(64)
        self.listener = listener
        self.selector.register(listener, selectors.EVENT_READ, "accept")

    def retire(self, why: str) -> None:
        """Take no more jobs; exit once the running drivers have finished."""
        if self.listener is None:
            return
        log(f"retiring: {why}")
        self.selector.unregister(self.listener)
        self.listener.close()
        self.listener = None
        with contextlib.suppress(FileNotFoundError):  # the lock keeps other hosts off it
            self.path.unlink()

    def serve(self) -> None:
        """The event loop: until retired and every driver has been reaped."""
        wake_r = self.wake_on_signals()
        self.listen()
        log(f"serving {self.path}")
        next_check = time.monotonic() + CHECK_EVERY_S
        while self.listener is not None or self.children:
            for item, _ in self.selector.select(timeout=1.0):
                try:
                    self.handle(item.data, item.fileobj, wake_r)
                except Exception as exc:  # noqa: BLE001 - the host outlives one bad event
                    log(f"error handling an event: {exc!r}")
            self.reap()
            if self.stopping:
                self.retire(self.stopping[0])
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + CHECK_EVERY_S
                try:
                    self.check()
                except Exception as exc:  # noqa: BLE001
                    log(f"error checking the host: {exc!r}")
        log("no drivers left; exiting")

    def wake_on_signals(self) -> int:
        """A pipe that SIGCHLD and SIGTERM write to, so that they wake the selector; SIGTERM
        also asks the loop to retire. Returns the pipe's read end."""
        wake_r, wake_w = os.pipe()
        self.private_fds += [wake_r, wake_w]
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the pipe
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.append("SIGTERM"))
        self.selector.register(wake_r, selectors.EVENT_READ, "signal")
        return wake_r

    def handle(self, data: Any, fileobj: Any, wake_r: int) -> None:
        if data == "accept":
            self.accept()
        elif data == "signal":
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
        else:  # a launcher's connection: it only ever closes (the launcher is gone)
            self.launcher_gone(data, fileobj)

    def check(self) -> None:
        """Retire when the code changed, after an idle hour, or when the cluster is gone."""
        if self.listener is None:
            return
        if code_fingerprint() != self.fingerprint:
            self.retire("the code changed")
        elif not self.children and time.monotonic() - self.last_job > IDLE_EXIT_S:
            self.retire(f"no job for {IDLE_EXIT_S:.0f} s")
        elif not _cluster_alive(os.environ.get("RAY_ADDRESS")):
            self.unreachable += 1
            if self.unreachable >= 3:
                self.retire("the Ray cluster is gone")
        else:
            self.unreachable = 0

    def accept(self) -> None:
        """Take one launcher's request: fork its driver and send it the driver's pid, or
        refuse it (before forking anything) with the reason."""
        if self.listener is None:  # retired by a signal while this event was pending
            return
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            check_peer(conn)
            conn.settimeout(REQUEST_TIMEOUT_S)
            received, fds = receive_message(conn, max_fds=2)
            request = self.check_request(received, fds)
            pid = self.fork(request, fds, conn)
        except Exception as exc:  # noqa: BLE001 - one bad launcher must not stop the host
            log(f"refused a launcher: {exc}")
            with contextlib.suppress(OSError):
                send_message(conn, {"error": str(exc)})
            conn.close()
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.admit(pid, conn, request)

    def check_request(self, request: dict[str, Any] | None, fds: list[int]) -> dict[str, Any]:
        """The request, if it is complete and its code and environment are this host's."""
        if request is None or len(fds) != 2:
            raise ValueError("incomplete request")
        if host_key(request["env"], self.fingerprint) != self.key:
            raise ValueError("the launcher's code or environment is not this host's")
        return request

    def admit(self, pid: int, conn: socket.socket, request: dict[str, Any]) -> None:
        """Follow the new driver's launcher and tell it the driver's pid."""
        self.last_job = time.monotonic()
        conn.settimeout(None)
        self.children[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        try:
            send_message(conn, {"pid": pid})
        except OSError:  # the launcher is gone already (killed, or it gave up)
            self.launcher_gone(pid, conn)
            return
        log(f"forked driver pid {pid} ({' '.join(request['args'])})")

    def fork(self, request: dict[str, Any], fds: list[int], conn: socket.socket) -> int:
        """Fork the driver for ``request``; its pid."""
        sys.stdout.flush()
        sys.stderr.flush()
        # A stop signal the launcher forwards at once must not reach the host's handlers in
        # the new driver: blocked until the driver has its own, then delivered.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        pid = os.fork()
        if pid == 0:
            run_driver(request, fds, conn, mask, release=self.release)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return pid

    def release(self) -> None:
        """In a forked driver: close what the host holds (its sockets, selector, wake-up pipe
        and lock), so that nothing of the host leaks into the driver."""
        for obj in [self.listener, *self.children.values()]:
            if obj is not None:
                obj.close()
        self.selector.close()
        for fd in self.private_fds:  # the wake-up pipe; the lock (else a driver holds it)
            os.close(fd)

    def launcher_gone(self, pid: int, conn: Any) -> None:
        """The launcher's end closed before its driver exited: Ray stopped or lost the job."""
        log(f"launcher of driver pid {pid} went away; killing the driver")
        for kill in (os.killpg, os.kill):  # its group, and itself if it has none yet
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)
        self.selector.unregister(conn)

    def reap(self) -> None:
        """Collect the drivers that exited; send each one's status to its launcher."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            code = os.waitstatus_to_exitcode(status)
            log(f"driver pid {pid} exited with {code}")
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn)
            with contextlib.suppress(OSError):
                send_message(conn, {"exit": code})
            conn.close()
