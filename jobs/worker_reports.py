"""How Ray Train workers tell their driver what happens, without touching the registry.

Workers never open the registry (no database URL travels to them). Rank 0 puts its facts
(metric rows with a progress line; a restart of the worker group; notes for the job's
history) on a small Ray queue actor
that the driver created; a thread on the driver drains it and writes through the job's
``JobContext``. Metrics therefore still reach the registry while the job runs.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.context import JobContext

log = logging.getLogger("orch.job")
POLL_S = 0.5


@dataclass
class WorkerReporter:
    """The worker's end: picklable (a Ray actor handle inside), so it travels in the
    ``train_loop_config``."""

    queue: Any  # ray.util.queue.Queue

    def metrics(self, rows: list[dict[str, Any]], progress: str) -> None:
        self.queue.put(("metrics", rows, progress))

    def restarted(self, why: str, how: str) -> None:
        self.queue.put(("restarted", why, how))

    def note(self, message: str) -> None:
        self.queue.put(("note", message))


class DriverSink:
    """The driver's end: ``with DriverSink(ctx) as sink: fit(..., sink.reporter)``. On exit
    (success or failure) every report already sent is written, then the queue goes away."""

    def __init__(self, ctx: JobContext) -> None:
        from ray.util.queue import Queue

        self.ctx = ctx
        self.queue = Queue(actor_options={"num_cpus": 0})
        self.reporter = WorkerReporter(self.queue)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="worker-reports", daemon=True)

    def __enter__(self) -> DriverSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.queue.shutdown()

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                item = self.queue.get(block=True, timeout=POLL_S)
            except Empty:
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
