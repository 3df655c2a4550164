"""Warm drivers: a job's driver forked from a process that has already imported the job code.

A job's driver is a Ray Jobs entrypoint, a new Python process per job. Before it reads a row
it imports torch, transformers, Ray Data and Ray Train: about 6 s on 2 busy cores, a third of
the time from submit to the first training step (README, *Benchmarks*). Here the entrypoint is
``python -m jobs.runtime.warm run JOB_ID``, which imports nothing but the standard library and asks
this node's *driver host* (``python -m jobs.runtime.warm serve KEY``: one per node, cluster, code
version and environment, started by the first launcher that finds none) to fork a driver.
The forked driver takes the launcher's environment, working folder, stdout and stderr (so
Ray's job log and ``orch jobs logs`` see its output), runs ``jobs.runtime.driver`` as a new process
would, and its exit status comes back to the launcher, which exits with it.

What Ray sees does not change: the launcher is the entrypoint process, holds the driver's
resources and is what ``ray job stop`` signals; it forwards SIGTERM/SIGINT/SIGHUP to the
driver, and if the launcher is killed the host kills the driver. The launcher runs the driver
itself (``exec``, a cold start) whenever the warm path cannot be trusted:

- no host answers (the first job on a node starts one in the background and runs cold);
- the host runs other code: the key covers the Python executable, every ``.py`` file's size
  and mtime under ``jobs/`` and ``orchestrator/``, the ``site-packages`` folders' mtimes (an
  upgrade) and the environment except per-job variables; a host whose code changed under it
  stops taking jobs and exits once its drivers have finished;
- the driver is given a GPU (``CUDA_VISIBLE_DEVICES`` and the like): forking a process that
  imported torch is only safe before CUDA is initialised, which is not checked on a GPU here;
- ``ORCH_WARM_DRIVERS=0`` in the driver's environment (the ``warm_drivers`` setting).

The host listens on a Unix socket in a folder only this user can enter, checks the peer's uid,
and exits when its Ray cluster's GCS stops answering or after an hour without a job.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

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
GPU_ENV = ("CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
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
HANDSHAKE_TIMEOUT_S = 30.0  # the host answers a launcher with the driver's pid within this
REQUEST_TIMEOUT_S = 5.0  # a launcher sends its request as soon as it connects
CHECK_EVERY_S = 5.0  # the host looks at its code, its cluster and its idle time this often
IDLE_EXIT_S = 3600.0
MAX_MESSAGE = 1 << 20
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def log(message: str) -> None:
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
    root = Path(__file__).resolve().parents[2]
    files = []
    for package in ("jobs", "orchestrator"):
        for folder, dirs, names in os.walk(root / package):
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


def send_message(sock: socket.socket, payload: dict[str, Any], fds: list[int] = ()) -> None:  # type: ignore[assignment]
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


# --- the launcher: the Ray Jobs entrypoint ----------------------------------------------------


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


def warm_allowed(env: dict[str, str]) -> str | None:
    """Why this driver starts cold, or None."""
    if env.get("ORCH_WARM_DRIVERS", "1").lower() in ("0", "false", "no", "off"):
        return "warm drivers are off (ORCH_WARM_DRIVERS)"
    if any(env.get(name, "").strip() for name in GPU_ENV):
        return "the driver has a GPU"
    return None


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
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def launch(args: list[str]) -> NoReturn:
    env = dict(os.environ)
    why = warm_allowed(env)
    if why is not None:
        log(f"cold start: {why}")
        cold(args)
    driver: list[int] = []  # its pid, once the host has answered
    pending: list[int] = []  # stop signals that came before it

    def forward(signum: int, _frame: Any) -> None:
        if not driver:
            pending.append(signum)
            return
        for kill in (os.killpg, os.kill):  # its group (its own subprocesses too), or itself
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(driver[0], signum)
                return

    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED_SIGNALS)
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
    pid = int(reply["pid"])
    driver.append(pid)
    try:
        watch: int | None = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or no pidfd here
        watch = None
    log(f"driver forked by the warm host {key}: pid {pid}")
    for signum in pending:
        forward(signum, None)
    sock.settimeout(None)
    try:
        done, _ = receive_message(sock)
    except OSError:
        done = None
    if done is None:  # the host died: the driver lives on (its exit status is lost); wait
        log(f"the driver host went away; waiting for driver pid {pid}")
        if watch is not None:
            select.select([watch], [], [])
        else:
            while _alive(pid):
                time.sleep(0.5)
        sys.exit(1)
    code = int(done["exit"])
    sys.exit(code if code >= 0 else 128 - code)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the host ---------------------------------------------------------------------------------


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


class Host:
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
        wake_r, wake_w = os.pipe()
        self.private_fds += [wake_r, wake_w]
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the selector through the pipe
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.append("SIGTERM"))
        self.selector.register(wake_r, selectors.EVENT_READ, "signal")
        self.listen()
        log(f"serving {self.path}")
        next_check = time.monotonic() + CHECK_EVERY_S
        while self.listener is not None or self.children:
            for item, _ in self.selector.select(timeout=1.0):
                try:
                    if item.data == "accept":
                        self.accept()
                    elif item.data == "signal":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 512)
                    else:  # a launcher's connection: it only ever closes (the launcher is gone)
                        self.launcher_gone(item.data, item.fileobj)
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

    def check(self) -> None:
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
        if self.listener is None:  # retired by a signal while this event was pending
            return
        conn, _ = self.listener.accept()
        fds: list[int] = []
        try:
            uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.getuid():
                raise PermissionError(f"a process of uid {uid} connected")
            conn.settimeout(REQUEST_TIMEOUT_S)
            request, fds = receive_message(conn, max_fds=2)
            if request is None or len(fds) != 2:
                raise ValueError("incomplete request")
            if host_key(request["env"], self.fingerprint) != self.key:
                raise ValueError("the launcher's code or environment is not this host's")
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
        sys.stdout.flush()
        sys.stderr.flush()
        # A stop signal the launcher forwards at once must not reach the host's handlers in
        # the new driver: blocked until the driver has its own, then delivered.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)
        pid = os.fork()
        if pid:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return pid
        # the driver: nothing of the host may leak into it
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.setsid()
            for obj in [self.listener, *self.children.values()]:
                if obj is not None:
                    obj.close()
            self.selector.close()
            conn.settimeout(None)  # kept: the driver follows its launcher even without a host
            threading.Thread(target=_follow_launcher, args=(conn,), daemon=True).start()
            for fd in self.private_fds:  # the wake-up pipe; the lock (else a driver holds it)
                os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            os.environ.clear()
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            sys.argv = ["-m", *request["args"]]
            threads = os.environ.get("OMP_NUM_THREADS", "")
            if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(int(threads))
            from jobs.runtime.driver import main

            code = main(list(request["args"]))
        except SystemExit as exc:  # as the interpreter treats it
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - the driver's own failure: print it, exit 1
            traceback.print_exc()
        finally:
            try:
                atexit._run_exitfuncs()  # what a normal exit runs: ray.shutdown(), logging
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)

    def launcher_gone(self, pid: int, conn: Any) -> None:
        """The launcher's end closed before its driver exited: Ray stopped or lost the job."""
        log(f"launcher of driver pid {pid} went away; killing the driver")
        for kill in (os.killpg, os.kill):  # its group, and itself if it has none yet
            with contextlib.suppress(ProcessLookupError, PermissionError):
                kill(pid, signal.SIGKILL)
        self.selector.unregister(conn)

    def reap(self) -> None:
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


def _follow_launcher(conn: socket.socket) -> None:
    """In a forked driver: end it (and its process group) when its launcher's end of the
    connection closes, should the host that would otherwise do it be gone. The launcher sends
    nothing after its request, so only the end of the stream ever arrives."""
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass
    os.killpg(0, signal.SIGKILL)


def serve(key: str) -> int:
    folder = host_dir()
    lock = open(folder / f"{key}.lock", "w")  # noqa: SIM115 - held for the host's lifetime
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return 0  # another host of this key runs (two launchers raced): it serves
        raise
    started = time.monotonic()
    import importlib

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
    if "torch" in sys.modules and sys.modules["torch"].cuda.is_initialized():
        log("CUDA was initialised while preloading: not serving (forked drivers would fail)")
        return 1
    log(f"preloaded the job code in {time.monotonic() - started:.1f} s")
    host = Host(key, folder)
    host.private_fds.append(lock.fileno())
    host.serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "run" and argv[1].isdigit():
        launch([argv[1]])
    if len(argv) in (2, 3) and argv[0] == "serve":  # serve KEY [--address=GCS]
        return serve(argv[1])
    if argv == ["prestart"]:  # start this node's host ahead of the first job
        why = warm_allowed(dict(os.environ))
        if why is None:
            folder, key = host_dir(), host_key(dict(os.environ))
            if connect(folder / f"{key}.sock") is None:
                spawn_host(key, folder)
                log(f"started the driver host {key}")
        return 0
    print(
        "usage: python -m jobs.runtime.warm run JOB_ID | serve KEY [--address=GCS] | prestart",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
