"""The forked driver: the child of the host's ``fork`` becomes the driver its launcher asked
for, with the launcher's stdout, stderr, environment and working folder, and nothing of the
host (its signal handlers, sockets, wake-up pipe and lock)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, NoReturn


def run_driver(
    request: dict[str, Any],
    fds: list[int],
    conn: socket.socket,
    mask: set[int | signal.Signals],
    release: Callable[[], None],
) -> NoReturn:
    """Run ``jobs.runtime.driver`` as a new process would, then exit with its status.

    ``mask`` is the signal mask the host had before it blocked the forwarded signals for the
    fork; ``release`` closes what the host holds open."""
    code = 1
    try:
        take_signals(mask)
        os.setsid()
        release()
        conn.settimeout(None)  # kept: the driver follows its launcher even without a host
        threading.Thread(target=follow_launcher, args=(conn,), daemon=True).start()
        take_over(request, fds)
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


def take_signals(mask: set[int | signal.Signals]) -> None:
    """A new process's handlers; then the forwarded signals that came meanwhile arrive."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def take_over(request: dict[str, Any], fds: list[int]) -> None:
    """The launcher's stdout and stderr (``fds``), environment, working folder and arguments;
    its thread count applied to torch, which the host imported before it was known."""
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


def follow_launcher(conn: socket.socket) -> None:
    """End the driver (and its process group) when its launcher's end of the connection
    closes, should the host that would otherwise do it be gone. The launcher sends nothing
    after its request, so only the end of the stream ever arrives."""
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass
    os.killpg(0, signal.SIGKILL)
