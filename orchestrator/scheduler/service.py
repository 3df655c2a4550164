"""The scheduler loop: admit queued jobs, submit their drivers, reconcile Ray into the registry.

One scheduler runs per (cluster, registry), as a detached Ray actor on the head started by
``orchestrator.ray_client``. It keeps no state of its own between ticks: everything lives
in the registry, so a restarted scheduler carries on where the last one stopped.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from datetime import timedelta
from typing import Any, Protocol

from orchestrator.registry import JobStatus, Registry, store
from orchestrator.registry.models import Job, utcnow
from orchestrator.scheduler.admission import Request, Resources, fmt, plan, total
from orchestrator.scheduler.capacity import NodeGroup, scalable_nodes

log = logging.getLogger("orch.scheduler")

LOST_GRACE = timedelta(seconds=60)  # a just-submitted driver may not be listed by Ray yet
HEARTBEAT_KEY = "scheduler:{key}"
SUBMIT_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # ~30 s before a refused submit fails


class Backend(Protocol):
    """What the scheduler needs from a Ray cluster (``ray_client.jobs_api.RayBackend``)."""

    def nodes(self) -> list[dict[str, float]]: ...
    def job_statuses(self) -> dict[str, tuple[str, str]]: ...
    def submit(
        self, submission_id: str, entrypoint: str, resources: dict[str, float], env: dict[str, str]
    ) -> None: ...
    def stop(self, submission_id: str) -> None: ...
    def log_tail(self, submission_id: str, lines: int = 20) -> str: ...
    def node_groups(self) -> list[NodeGroup]: ...
    def request_resources(self, bundles: list[dict[str, float]]) -> None: ...


def submission_id(registry_key: str, job: Job) -> str:
    return f"orch-{registry_key}-{job.id}-{job.attempts + 1}"


def retries_left(job: Job) -> int:
    """How many more drivers this job may start (``retries`` in its spec; 0 for job kinds
    that have no checkpoints to resume from)."""
    return int(job.spec.get("retries", 0)) - max(0, job.attempts - 1)


def driver_entrypoint(job_id: int) -> str:
    """The driver's command: a launcher that forks it from this node's warm driver host, or
    runs ``python -m jobs.runtime.driver JOB_ID`` itself when it cannot
    (``jobs/runtime/warm/``)."""
    return f"{shlex.quote(sys.executable)} -m jobs.runtime.warm run {job_id}"


class Scheduler:
    def __init__(
        self,
        registry: Registry,
        backend: Backend,
        registry_key: str,
        driver_env: dict[str, str],
        node_groups: list[NodeGroup] | None = None,
    ) -> None:
        self.registry = registry
        self.backend = backend
        self.key = registry_key
        self.driver_env = driver_env
        self.node_groups = node_groups  # None: ask the cluster (autoscaler v2, KubeRay)
        self.requested: list[dict[str, float]] = []  # what the autoscaler was last asked for
        self.asked_for: set[int] = set()  # jobs whose history says so already

    # --- one pass ------------------------------------------------------------------------

    def tick(self) -> dict[str, Any]:
        nodes = self.backend.nodes()
        statuses = self.backend.job_statuses()
        self.reconcile(statuses)
        self.stop_cancelled(statuses)
        view = self.admit(nodes)
        self.publish(view)
        return view

    def reconcile(self, statuses: dict[str, tuple[str, str]]) -> None:
        """Bring every active job's registry state in line with what Ray says of its driver."""
        with self.registry.session() as session:
            active = [
                (j.id, j.ray_job_id, j.cancel_requested, retries_left(j))
                for j in store.active_jobs(session)
            ]
        for job_id, ray_id, cancelled, retries in active:
            ray_status, message = statuses.get(ray_id or "", (None, ""))
            self._reconcile_one(job_id, ray_id, cancelled, ray_status, message, retries)

    def _reconcile_one(
        self,
        job_id: int,
        ray_id: str | None,
        cancelled: bool,
        ray_status: str | None,
        message: str,
        retries: int = 0,
    ) -> None:
        if ray_status in ("PENDING", None) and ray_id is not None:
            if ray_status is None and self._submitted_long_ago(job_id):
                self._finish(
                    job_id,
                    JobStatus.FAILED,
                    f"lost: Ray no longer knows driver {ray_id} (was the cluster restarted?)",
                )
            return
        if ray_status == "RUNNING":  # the driver itself records RUNNING once it has started
            return
        if ray_status == "SUCCEEDED":
            self._finish(job_id, JobStatus.FAILED, "the driver exited without registering a result")
        elif ray_status == "STOPPED":
            self._finish(
                job_id,
                JobStatus.CANCELLED if cancelled else JobStatus.FAILED,
                "cancelled by user" if cancelled else "driver stopped outside orch",
            )
        elif ray_status == "FAILED":
            tail = self.backend.log_tail(ray_id or "")
            first = message.splitlines()[0] if message else "no message from Ray"
            if not cancelled and retries > 0:
                # The driver records its own failures (bad data, a bug) before it exits; one
                # that Ray saw die with the job still active was killed (OOM, a lost node).
                self._requeue(job_id, f"driver died ({first})")
                return
            self._finish(
                job_id,
                JobStatus.CANCELLED if cancelled else JobStatus.FAILED,
                f"driver failed: {first}" + (f"\n--- last log lines ---\n{tail}" if tail else ""),
            )

    def _submitted_long_ago(self, job_id: int) -> bool:
        with self.registry.session() as session:
            job = store.get_job(session, job_id)
            last = max((t for e in job.events if (t := store.as_utc(e.at))), default=None)
        return last is not None and utcnow() - last > LOST_GRACE

    def stop_cancelled(self, statuses: dict[str, tuple[str, str]]) -> None:
        with self.registry.session() as session:
            targets = [
                (j.id, j.ray_job_id) for j in store.active_jobs(session) if j.cancel_requested
            ]
        for job_id, ray_id in targets:
            if ray_id is None or statuses.get(ray_id, ("",))[0] in ("STOPPED", "FAILED"):
                continue
            log.info("stopping job %s (%s) on request", job_id, ray_id)
            self.backend.stop(ray_id)
            if statuses.get(ray_id, ("",))[0] == "PENDING":  # Ray ignores stop while pending
                self._finish(job_id, JobStatus.CANCELLED, "cancelled by user before it started")

    def admit(self, nodes: list[dict[str, float]]) -> dict[str, Any]:
        with self.registry.session() as session:
            granted = [
                b for j in store.active_jobs(session) for b in j.resources.get("bundles", [])
            ]
            queue = [
                Request(j.id, j.priority, tuple(j.resources.get("bundles", [])))
                for j in store.queued_jobs(session)
            ]
        groups = self.node_groups if self.node_groups is not None else self.backend.node_groups()
        scalable = scalable_nodes(groups, nodes)
        in_use = total(granted)
        decision = plan(queue, nodes, in_use, scalable)
        self.ask_autoscaler(decision.scale_up, granted)
        for job_id in decision.admitted:
            self._start(job_id)
        return {
            "nodes": nodes,
            "total": total(nodes),
            "in_use": in_use,
            "waiting": {str(k): v for k, v in decision.waiting.items()},
            "admitted": decision.admitted,
            "largest": [*nodes, *scalable],  # the cluster at its largest, node by node
            "requested": self.requested,
            "pid": os.getpid(),
        }

    def ask_autoscaler(
        self, scale_up: dict[int, list[Resources]], granted: list[Resources]
    ) -> None:
        """Ask Ray's autoscaler for the gangs that fit only on nodes it may add, and withdraw
        the request once none waits (admitted, cancelled or failed). Its request is for the
        cluster's whole size, so the gangs already granted are part of it; a new call
        replaces the last one."""
        wanted: list[dict[str, float]] = []
        if scale_up:
            asked = [*granted, *(b for bundles in scale_up.values() for b in bundles)]
            wanted = [shape for b in asked if (shape := {k: float(v) for k, v in b.items() if v})]
        if wanted != self.requested:
            self.backend.request_resources(wanted)
            log.info("asked the autoscaler for %s", wanted or "nothing (request withdrawn)")
            self.requested = wanted
        for job_id in sorted(set(scale_up) - self.asked_for):
            with self.registry.session() as session:
                store.note(
                    session,
                    job_id,
                    f"asked the autoscaler for {fmt(total(scale_up[job_id]))}: waiting for nodes",
                )
        self.asked_for = set(scale_up)

    def _start(self, job_id: int) -> None:
        """Claim a queued job (atomically: a cancel may have won) and submit its driver."""
        with self.registry.session() as session:
            job = store.get_job(session, job_id)
            ray_id = submission_id(self.key, job)
            bundles = job.resources.get("bundles", [])
            claimed = store.transition(
                session,
                job_id,
                JobStatus.STARTING,
                f"admitted: {fmt(total(bundles))} fit the cluster; driver {ray_id}",
                ray_job_id=ray_id,
                attempts=job.attempts + 1,
            )
        if not claimed:
            return
        driver = bundles[0] if bundles else {}
        env = {**self.driver_env, "ORCH_JOB_ID": str(job_id)}
        for delay in (*SUBMIT_RETRY_DELAYS, None):
            try:
                self.backend.submit(ray_id, driver_entrypoint(job_id), driver, env)
                return
            except Exception as exc:  # noqa: BLE001 - a refused submit fails the job, not us
                if delay is None:
                    log.exception("submitting job %s failed", job_id)
                    self._finish(
                        job_id, JobStatus.FAILED, f"could not submit the driver to Ray: {exc}"
                    )
                    return
                # e.g. "No available agent to submit job" while a new cluster settles
                log.warning("submitting job %s failed (%s); retrying in %.1fs", job_id, exc, delay)
                time.sleep(delay)

    def prestart_driver_host(self) -> None:
        """Start the head node's warm driver host before the first job needs it: a Ray job
        whose environment is a driver's, so that the host's key matches (Ray gives an
        entrypoint that asks for no resources other variables: it asks for a sliver of CPU)."""
        if self.driver_env.get("ORCH_WARM_DRIVERS") == "0":
            return
        ray_id = f"orch-{self.key}-warm-{int(time.time() * 1000)}"
        command = f"{shlex.quote(sys.executable)} -m jobs.runtime.warm prestart"
        try:
            self.backend.submit(ray_id, command, {"CPU": 0.01}, dict(self.driver_env))
        except Exception as exc:  # noqa: BLE001 - drivers then start cold until one is up
            log.warning("could not prestart the warm driver host: %s", exc)

    def _requeue(self, job_id: int, why: str) -> None:
        """RETRYING (why), then back in the queue: the next attempt's driver starts the job
        again and its training resumes from the latest complete checkpoint of this one."""
        with self.registry.session() as session:
            job = store.get_job(session, job_id)
            attempt, of = job.attempts + 1, job.spec.get("retries", 0) + 1
            if store.transition(
                session,
                job_id,
                JobStatus.RETRYING,
                f"{why}; requeued for attempt {attempt} of {of}, which resumes from the "
                "latest complete checkpoint",
            ):
                store.transition(session, job_id, JobStatus.QUEUED, "requeued", progress=None)
                log.info("job %s requeued for attempt %s: %s", job_id, attempt, why)

    # --- helpers -------------------------------------------------------------------------

    def _finish(self, job_id: int, to: JobStatus, reason: str) -> None:
        with self.registry.session() as session:
            fields: dict[str, Any] = {"progress": None}
            if to == JobStatus.FAILED:
                fields["error"] = reason
            if store.transition(session, job_id, to, reason.splitlines()[0], **fields):
                log.info("job %s -> %s: %s", job_id, to, reason.splitlines()[0])

    def publish(self, view: dict[str, Any]) -> None:
        with self.registry.session() as session:
            store.put_state(session, HEARTBEAT_KEY.format(key=self.key), view)

    def run_forever(
        self, interval: float = 1.0, should_stop: Any = None, wake_every: float = 0.1
    ) -> None:
        """A pass every ``interval`` seconds, and at once when a job joins the queue (a
        cheap query every ``wake_every`` seconds): a submitted job is admitted within about
        0.1 s instead of half a pass on average."""
        while not (should_stop and should_stop()):
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a bad tick must not kill the scheduler
                log.exception("scheduler tick failed; retrying")
            seen = self._queue_mark()
            while time.monotonic() - started < interval and not (should_stop and should_stop()):
                time.sleep(min(wake_every, max(0.0, interval - (time.monotonic() - started))))
                if self._queue_mark() != seen:
                    break

    def _queue_mark(self) -> Any:
        try:
            with self.registry.session() as session:
                return store.queue_mark(session)
        except Exception:  # noqa: BLE001 - the next pass logs a registry that is down
            return None
