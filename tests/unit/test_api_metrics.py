"""GET /metrics on a real API server: the registry's jobs, durations, admissions and retries,
users and scheduler heartbeat, as Prometheus reads them; without a Ray cluster."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator.registry import JobStatus, store
from orchestrator.registry.models import utcnow
from tests.api_server import ApiServer, running_api_server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def server(registry_url: str, tmp_path: Path) -> Iterator[ApiServer]:
    """The API server on each registry backend (durations are computed by the database)."""
    with running_api_server(tmp_path / "api-home", registry_url) as api:
        yield api


def scrape(api: ApiServer, role: str = "viewer") -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    answer = api.call("GET", "/metrics", role=role)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def add_job(api: ApiServer, kind: str, moves: list[tuple[JobStatus, float | None]]) -> int:
    """A job submitted a day ago that went through ``moves``: (state, seconds after its
    submission when that state began, for RUNNING and the ends; None for the others)."""
    submitted = utcnow() - timedelta(days=1)
    with api.registry.session() as s:
        job = store.create_job(s, kind=kind, name=f"{kind}-job", spec={}, resources={})
        job.created_at = submitted
        for status, after in moves:
            key = "started_at" if status == JobStatus.RUNNING else "finished_at"
            times = {key: submitted + timedelta(seconds=after)} if after is not None else {}
            assert store.transition(s, job.id, status, "test", **times), status
        return job.id


def test_jobs_durations_admissions_and_retries_as_prometheus_reads_them(
    server: ApiServer,
) -> None:
    retried = add_job(
        server,
        "finetune",
        [
            (JobStatus.STARTING, None),
            (JobStatus.RUNNING, 20),
            (JobStatus.RETRYING, None),
            (JobStatus.QUEUED, None),
            (JobStatus.STARTING, None),
            (JobStatus.RUNNING, 100),  # the latest attempt's start: waited 100 s
            (JobStatus.SUCCEEDED, 700),  # ran 600 s
        ],
    )
    with server.registry.session() as s:  # a note keeps the state: not an admission
        store.note(s, retried, "resumed from checkpoint-40")
    add_job(server, "finetune", [])  # queued
    add_job(
        server,
        "tokenizer",
        [(JobStatus.STARTING, None), (JobStatus.RUNNING, 3), (JobStatus.FAILED, 7203)],
    )
    add_job(server, "tokenizer", [(JobStatus.CANCELLED, 50)])  # never started

    m = scrape(server)

    jobs = {
        (dict(k[1])["status"], dict(k[1])["kind"]): v for k, v in m.items() if k[0] == "orch_jobs"
    }
    assert {k: v for k, v in jobs.items() if v} == {
        ("SUCCEEDED", "finetune"): 1,
        ("QUEUED", "finetune"): 1,
        ("FAILED", "tokenizer"): 1,
        ("CANCELLED", "tokenizer"): 1,
    }
    assert len(jobs) == 2 * len(JobStatus)  # every state of every kind, zeros included
    wait, run = "orch_job_queue_wait_seconds", "orch_job_run_seconds"
    for name, kind, seconds, below, at in [
        (wait, "finetune", 100, "60.0", "120.0"),
        (wait, "tokenizer", 3, "1.0", "5.0"),
        (run, "finetune", 600, "300.0", "600.0"),  # bounds are inclusive
        (run, "tokenizer", 7200, "3600.0", "7200.0"),
    ]:
        assert value(m, f"{name}_count", kind=kind) == 1, (name, kind)
        assert value(m, f"{name}_sum", kind=kind) == pytest.approx(seconds, abs=0.01)
        assert value(m, f"{name}_bucket", kind=kind, le=below) == 0, (name, kind)
        assert value(m, f"{name}_bucket", kind=kind, le=at) == 1, (name, kind)
        assert value(m, f"{name}_bucket", kind=kind, le="+Inf") == 1, (name, kind)
    assert value(m, "orch_job_admissions_total", kind="finetune") == 2
    assert value(m, "orch_job_admissions_total", kind="tokenizer") == 1
    assert value(m, "orch_job_retries_total", kind="finetune") == 1
    assert value(m, "orch_job_retries_total", kind="tokenizer") == 0
    for role in ("admin", "member", "viewer"):
        assert value(m, "orch_users", role=role) == 1
    # no Ray cluster for this home: the registry's metrics answer all the same
    assert value(m, "orch_ray_cluster_up") == 0
    assert not any(name.startswith("ray_") for name, _ in m)


def test_durations_bucketed_row_by_row_match_the_database(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a database whose date arithmetic is unknown, the histograms come out the same."""
    from orchestrator.api import metrics

    for wait, run in [(0.5, 30), (4, 4000), (90, 50_000)]:
        add_job(
            api_server,
            "pretrain",
            [
                (JobStatus.STARTING, None),
                (JobStatus.RUNNING, wait),
                (JobStatus.SUCCEEDED, wait + run),
            ],
        )
    in_sql = scrape(api_server)
    monkeypatch.setattr(metrics, "seconds_between", lambda *_: None)
    row_by_row = scrape(api_server)
    histograms = {k for k in in_sql if k[0].startswith(("orch_job_queue", "orch_job_run"))}
    assert len(histograms) == 2 * (len(metrics.DURATION_BUCKETS_S) + 3)
    for key in histograms:
        assert row_by_row[key] == pytest.approx(in_sql[key], abs=0.01), key
    assert value(in_sql, "orch_job_run_seconds_bucket", kind="pretrain", le="+Inf") == 3
    assert value(in_sql, "orch_job_run_seconds_bucket", kind="pretrain", le="28800.0") == 2


def test_the_scheduler_heartbeat_age_and_who_may_scrape(api_server: ApiServer) -> None:
    from orchestrator.scheduler.service import HEARTBEAT_KEY

    assert ("orch_scheduler_heartbeat_age_seconds", frozenset()) not in scrape(api_server)
    key = HEARTBEAT_KEY.format(key=api_server.settings.registry_key)
    with api_server.registry.session() as s:
        store.put_state(s, key, {"nodes": 1})
    assert 0 <= value(scrape(api_server), "orch_scheduler_heartbeat_age_seconds") < 30

    assert api_server.call("GET", "/metrics", role=None).status_code == 401
    bad = {"Authorization": "Bearer orch_not-a-token"}
    assert api_server.call("GET", "/metrics", role=None, headers=bad).status_code == 401


def agent_text(node: str, requests: float) -> str:
    """What a node's Ray metrics agent answers (abridged): Ray's series and ours."""
    labels = f'Component="core_worker",NodeAddress="{node}",WorkerId="w-{node}",endpoint="cls"'
    return (
        "# HELP ray_tasks Current number of tasks.\n# TYPE ray_tasks gauge\n"
        f'ray_tasks{{NodeAddress="{node}",State="RUNNING"}} 2.0\n'
        "# HELP ray_orch_endpoint_requests_total Requests the endpoint answered\n"
        "# TYPE ray_orch_endpoint_requests_total counter\n"
        f"ray_orch_endpoint_requests_total{{{labels}}} {requests}\n"
    )


class Fixed:
    """A collector of given metric families."""

    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> list[Any]:
        return self.families


def test_two_nodes_endpoint_series_relay_as_one_family() -> None:
    """Prometheus refuses an exposition that declares a family twice: the relay merges the
    nodes' families and keeps only our endpoint metrics."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from orchestrator.ray_client.metrics import ENDPOINT_PREFIX, keep_prefixed, merge_families

    texts = [
        keep_prefixed(agent_text(ip, n), ENDPOINT_PREFIX)
        for ip, n in [("10.0.0.1", 5), ("10.0.0.2", 7)]
    ]
    relayed = CollectorRegistry(auto_describe=False)
    relayed.register(Fixed(merge_families(texts)))
    out = generate_latest(relayed).decode()
    assert out.count("# TYPE ray_orch_endpoint_requests_total counter") == 1
    assert "ray_tasks" not in out
    (family,) = text_string_to_metric_families(out)
    assert {s.labels["NodeAddress"]: s.value for s in family.samples} == {
        "10.0.0.1": 5,
        "10.0.0.2": 7,
    }
