"""Prometheus metrics at ``/metrics`` (any role's token: ``Authorization: Bearer TOKEN``).

Two sources, both read at scrape time, so that a restarted API server loses nothing:

- the registry: jobs by status and kind, how long jobs waited and ran, admissions and
  retries (counted from the job events, whichever scheduler wrote them), the scheduler's
  heartbeat age and the users by role. Every figure is one GROUP BY query in one short
  transaction; durations are bucketed by the database.
- the endpoints: what the Serve replicas record (``jobs.serving.app.EndpointMetrics``),
  relayed from every alive node's Ray metrics agent (``ray_orch_endpoint_*``), within
  ``RELAY_BUDGET_S``. Without a reachable cluster the registry's metrics still answer, and
  ``orch_ray_cluster_up`` says 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from fastapi import Depends, Request, Response
from sqlalchemy import ColumnElement, case, extract, func, literal_column, select
from sqlalchemy.orm import Session

from orchestrator.api.auth import Principal, viewer
from orchestrator.config import Settings
from orchestrator.registry import Registry
from orchestrator.registry.models import Job, JobEvent, JobStatus, Role, User

log = logging.getLogger("orch.api.metrics")
# 1 s .. 8 h: a queue wait of seconds to a run of hours
DURATION_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800)
RELAY_BUDGET_S = 5.0  # the most a scrape waits for the endpoints' metrics
EVENT_COUNTERS = {
    JobStatus.STARTING: ("orch_job_admissions", "Jobs admitted by a scheduler (attempts)"),
    JobStatus.RETRYING: ("orch_job_retries", "Job attempts that failed and were retried"),
}


def metrics_route(request: Request, _: Principal = Depends(viewer)) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(ScrapeCollector(request.app))
    return Response(generate_latest(scrape), media_type=CONTENT_TYPE_LATEST)


class ScrapeCollector:
    """A prometheus_client collector that reads the registry, and relays the endpoints'
    metrics, each time it is collected."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def collect(self) -> list[Any]:
        settings = self.app.state.settings
        families = registry_metrics(settings, self.app.state.registry)
        return families + self.app.state.metrics_relay.families(settings)


# --- the registry's metrics ---------------------------------------------------------------


def registry_metrics(settings: Settings, registry: Registry) -> list[Any]:
    """Every registry metric, read in one transaction (plus the heartbeat's own)."""
    from orchestrator.submission import scheduler_heartbeat

    with registry.session() as session:
        jobs = jobs_by_status_and_kind(session)
        kinds = sorted({kind for _, kind in jobs})
        families = [jobs_gauge(jobs, kinds)]
        families += duration_histograms(session, kinds)
        families += event_counters(session, kinds)
        families.append(users_gauge(session))
    families += heartbeat_gauge(scheduler_heartbeat(settings, registry))
    return families


def jobs_by_status_and_kind(session: Session) -> dict[tuple[str, str], int]:
    query = select(Job.status, Job.kind, func.count()).group_by(Job.status, Job.kind)
    return {(status, kind): count for status, kind, count in session.execute(query)}


def jobs_gauge(jobs: dict[tuple[str, str], int], kinds: list[str]) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    gauge = GaugeMetricFamily("orch_jobs", "Jobs in the registry", labels=["status", "kind"])
    for kind in kinds:
        for status in JobStatus:
            gauge.add_metric([status.value, kind], jobs.get((status.value, kind), 0))
    return gauge


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[Any] | None:
    """``end - start`` in seconds, in SQL; None where this database's dialect is not known."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # julianday is a float of days (~40 us steps): round to the millisecond, or 7200 s
        # comes out as 7200.0000001 and misses its bucket
        days = func.julianday(end) - func.julianday(start)
        return func.round(days * literal_column("86400.0"), literal_column("3"))
    if dialect == "postgresql":
        return extract("epoch", end - start)
    return None


def bucket_of(seconds: Any) -> Any:
    """The index of the first bucket that holds ``seconds`` (len(buckets) past the last).
    Literal bounds, not bound parameters: the expression must read the same in SELECT and
    GROUP BY for PostgreSQL to accept it."""
    whens: list[tuple[Any, Any]] = [
        (seconds <= literal_column(str(b)), literal_column(str(i)))
        for i, b in enumerate(DURATION_BUCKETS_S)
    ]
    return case(*whens, else_=literal_column(str(len(DURATION_BUCKETS_S))))


def bucket_index(seconds: float) -> int:
    last = len(DURATION_BUCKETS_S)
    return next((i for i, b in enumerate(DURATION_BUCKETS_S) if seconds <= b), last)


def grouped_durations(session: Session, start: Any, end: Any) -> list[tuple[str, int, int, float]]:
    """(kind, bucket index, jobs, total seconds) of the jobs that have both times, grouped
    by the database; on a database whose date arithmetic we do not know, row by row here."""
    where = (start.is_not(None), end.is_not(None))
    seconds = seconds_between(session, start, end)
    if seconds is None:
        rows = session.execute(select(Job.kind, start, end).where(*where))
        by_row = [(kind, (e - s).total_seconds()) for kind, s, e in rows]
        return [(kind, bucket_index(span), 1, span) for kind, span in by_row]
    # a materialized CTE computes each span once (SQLite would otherwise inline the
    # subquery and recompute it in every CASE branch, once per bucket)
    spans = select(Job.kind.label("kind"), seconds.label("s")).where(*where).cte("spans")
    spans = spans.prefix_with("MATERIALIZED")
    bucket = bucket_of(spans.c.s).label("bucket")
    query = select(spans.c.kind, bucket, func.count(), func.sum(spans.c.s))
    rows = session.execute(query.group_by(spans.c.kind, bucket))
    return [(kind, int(index), count, float(total or 0.0)) for kind, index, count, total in rows]


def duration_counts(session: Session, start: Any, end: Any) -> dict[str, tuple[list[int], float]]:
    """Per kind, how many jobs took how long from ``start`` to ``end`` (per bucket, not yet
    cumulative), and their total seconds."""
    out: dict[str, tuple[list[int], float]] = {}
    for kind, index, count, total in grouped_durations(session, start, end):
        counts, seconds = out.get(kind, ([0] * (len(DURATION_BUCKETS_S) + 1), 0.0))
        counts[index] += count
        out[kind] = (counts, seconds + total)
    return out


def duration_histograms(session: Session, kinds: Sequence[str]) -> list[Any]:
    waited = duration_counts(session, Job.created_at, Job.started_at)
    ran = duration_counts(session, Job.started_at, Job.finished_at)
    return [
        histogram(
            "orch_job_queue_wait_seconds",
            "From submission to the start of the job's latest attempt (jobs that started)",
            waited,
            kinds,
        ),
        histogram(
            "orch_job_run_seconds",
            "From the start of the job's latest attempt to its end (jobs that ended)",
            ran,
            kinds,
        ),
    ]


def histogram(
    name: str, doc: str, counts: dict[str, tuple[list[int], float]], kinds: Sequence[str]
) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, doc, labels=["kind"])
    bounds = [str(float(b)) for b in DURATION_BUCKETS_S] + ["+Inf"]
    for kind in kinds:
        per_bucket, total = counts.get(kind, ([0] * len(bounds), 0.0))
        cumulative, running = [], 0
        for bound, count in zip(bounds, per_bucket, strict=True):
            running += count
            cumulative.append((bound, running))
        family.add_metric([kind], cumulative, sum_value=total)
    return family


def event_counters(session: Session, kinds: Sequence[str]) -> list[Any]:
    """Admissions (to STARTING) and retries (to RETRYING) per kind, from the job events;
    notes (events that keep the state, e.g. which checkpoint an attempt resumed from) are
    not moves and do not count."""
    from prometheus_client.core import CounterMetricFamily

    query = (
        select(Job.kind, JobEvent.to_status, func.count())
        .join(Job, Job.id == JobEvent.job_id)
        .where(JobEvent.to_status.in_([s.value for s in EVENT_COUNTERS]))
        .where(JobEvent.from_status != JobEvent.to_status)
        .group_by(Job.kind, JobEvent.to_status)
    )
    counts = {(kind, to): n for kind, to, n in session.execute(query)}
    families = []
    for status, (name, doc) in EVENT_COUNTERS.items():
        counter = CounterMetricFamily(name, doc, labels=["kind"])
        for kind in kinds:
            counter.add_metric([kind], counts.get((kind, status.value), 0))
        families.append(counter)
    return families


def users_gauge(session: Session) -> Any:
    from prometheus_client.core import GaugeMetricFamily

    query = select(User.role, func.count()).where(User.revoked_at.is_(None)).group_by(User.role)
    counts: dict[str, int] = {role: n for role, n in session.execute(query)}
    gauge = GaugeMetricFamily("orch_users", "Users with a valid token", labels=["role"])
    for role in Role:
        gauge.add_metric([role.value], counts.get(role.value, 0))
    return gauge


def heartbeat_gauge(beat: tuple[dict[str, Any], float] | None) -> list[Any]:
    """The age of the scheduler's last heartbeat; absent when no scheduler ever beat (alert
    on ``absent(orch_scheduler_heartbeat_age_seconds)`` as well as on its value)."""
    from prometheus_client.core import GaugeMetricFamily

    if beat is None:
        return []
    doc = "Seconds since the scheduler serving this registry last wrote its heartbeat"
    return [GaugeMetricFamily("orch_scheduler_heartbeat_age_seconds", doc, value=beat[1])]


# --- the endpoints' metrics, relayed from Ray -----------------------------------------------


class Relay:
    """Fetches the endpoints' metrics off the request's thread, within a budget: a cluster
    that hangs costs a scrape ``budget_s`` at most, and slow fetches never pile up (a scrape
    that finds one still running waits for that one). Daemon threads: a fetch stuck in Ray
    never holds up the server's exit."""

    def __init__(self, budget_s: float = RELAY_BUDGET_S) -> None:
        self.budget_s = budget_s
        self.pending: Future[tuple[list[Any], int, int]] | None = None
        self.lock = threading.Lock()

    def families(self, settings: Settings) -> list[Any]:
        with self.lock:
            if self.pending is None or self.pending.done():
                self.pending = self._start(settings)
            pending = self.pending
        try:
            families, answered, failed = pending.result(timeout=self.budget_s)
        except Exception as exc:  # noqa: BLE001 - no cluster, or a slow one: registry only
            log.debug("endpoint metrics not relayed: %s", exc)
            return relay_gauges(up=False, answered=0, failed=0)
        return families + relay_gauges(up=True, answered=answered, failed=failed)

    @staticmethod
    def _start(settings: Settings) -> Future[tuple[list[Any], int, int]]:
        from orchestrator.ray_client.metrics import endpoint_metric_families

        future: Future[tuple[list[Any], int, int]] = Future()

        def fetch() -> None:
            try:
                future.set_result(endpoint_metric_families(settings))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting scrape
                future.set_exception(exc)

        threading.Thread(target=fetch, name="orch-metrics-relay", daemon=True).start()
        return future


def relay_gauges(up: bool, answered: int, failed: int) -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily

    agents = GaugeMetricFamily(
        "orch_ray_metrics_agents",
        "Ray nodes' metrics agents by whether they answered this scrape",
        labels=["state"],
    )
    agents.add_metric(["answered"], answered)
    agents.add_metric(["failed"], failed)
    doc = "Whether the Ray cluster was reached for the endpoints' metrics (1) or not (0)"
    return [GaugeMetricFamily("orch_ray_cluster_up", doc, value=int(up)), agents]
