"""Warm drivers: a job's driver forked from a process that has already imported the job code.

A job's driver is a Ray Jobs entrypoint, a new Python process per job. Before it reads a row
it imports torch, transformers, Ray Data and Ray Train: a large share of the time from submit
to the first training step (docs/benchmarks.md, *Start-up*). Here the entrypoint is
``python -m jobs.runtime.warm run JOB_ID``, which imports nothing but the standard library and
asks this node's *driver host* (``python -m jobs.runtime.warm serve KEY``: one per node,
cluster, code version and environment, started by the first launcher that finds none) to fork
a driver. The forked driver takes the launcher's environment, working folder, stdout and stderr
(so Ray's job log and ``orch jobs logs`` see its output), runs ``jobs.runtime.driver`` as a new
process would, and its exit status comes back to the launcher, which exits with it.

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

Modules: ``protocol`` (the host's key, its folder, the messages), ``launcher`` (the entrypoint
and the cold start), ``host`` (the host's loop, fork and reaping), ``forked`` (the child that
becomes the driver), ``__main__`` (the command line). This package and the launcher import the
standard library only; the host's modules are imported to serve.
"""

from jobs.runtime.warm.launcher import (
    GPU_ENV,
    HANDSHAKE_TIMEOUT_S,
    cold,
    connect,
    launch,
    prestart,
    spawn_host,
    warm_allowed,
)
from jobs.runtime.warm.protocol import (
    FORWARDED_SIGNALS,
    MAX_MESSAGE,
    PER_JOB_ENV,
    code_fingerprint,
    host_dir,
    host_key,
    log,
    receive_message,
    send_message,
)

__all__ = [
    "FORWARDED_SIGNALS",
    "GPU_ENV",
    "HANDSHAKE_TIMEOUT_S",
    "MAX_MESSAGE",
    "PER_JOB_ENV",
    "code_fingerprint",
    "cold",
    "connect",
    "host_dir",
    "host_key",
    "launch",
    "log",
    "prestart",
    "receive_message",
    "send_message",
    "spawn_host",
    "warm_allowed",
]
