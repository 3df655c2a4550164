"""How Ray Train workers tell their driver what happens, without touching the registry.

Workers never open the registry (no database URL travels to them). Rank 0 puts its facts
(metric rows with a progress line; a restart of the worker group; notes for the job's
history) on a small Ray queue actor
that the driver created; a thread on the driver drains it and writes through the job's
``JobContext``. Metrics therefore still reach the registry while the job runs. A single
worker trains inside the driver (Ray Train's local mode): its queue is a plain in-process
one, and no queue actor (a process of its own) is started.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.runtime.context import JobContext

log = logging.getLogger("orch.job")
POLL_S = 0.5


@dataclass
class WorkerReporter:
    """The worker's end: picklable (a Ray actor handle inside), so it travels in the
    ``train_loop_config``."""

    queue: Any  # ray.util.queue.Queue, or queue.Queue in the driver's own process

    def metrics(self, rows: list[dict[str, Any]], progress: str) -> None:
        self.queue.put(("metrics", rows, progress))

    def restarted(self, why: str, how: str) -> None:
        self.queue.put(("restarted", why, how))

    def note(self, message: str) -> None:
        self.queue.put(("note", message))


class DriverSink:
    """The driver's end: ``with DriverSink(ctx) as sink: fit(..., sink.reporter)``. On exit
    (success or failure) every report already sent is written, then the queue goes away.
    ``in_process``: the worker runs in this process (local mode)."""

    def __init__(self, ctx: JobContext, in_process: bool = False) -> None:
        self.ctx, self.in_process = ctx, in_process
        self.queue: Any
        if in_process:
            import queue

            self.queue, self._empty = queue.Queue(), queue.Empty
        else:
            from ray.util.queue import Empty, Queue

            self.queue, self._empty = Queue(actor_options={"num_cpus": 0}), Empty
        self.reporter = WorkerReporter(self.queue)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="worker-reports", daemon=True)

    def __enter__(self) -> DriverSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        if not self.in_process:
            self.queue.shutdown()  # the Ray queue's actor

    def _drain(self) -> None:
        while True:
            try:
                item = self.queue.get(block=True, timeout=POLL_S)
            except self._empty:
                if self._done.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - the queue actor is gone: nothing more comes
                log.exception("worker reports stopped: the queue is unreachable")
                return
            try:
                self.write(item)
            except Exception:  # noqa: BLE001 - a lost metric row must not kill the job
                log.exception("could not record a worker report")

    def write(self, item: tuple[Any, ...]) -> None:
        kind, *args = item
        if kind == "metrics":
            self.ctx.add_metrics(args[0], progress=args[1])
        elif kind == "restarted":
            self.ctx.restarted(*args)
        elif kind == "note":
            self.ctx.note(args[0])
        else:
            log.warning("unknown worker report %r", kind)
