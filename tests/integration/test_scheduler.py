"""The scheduler and job drivers on a real local Ray cluster (one for the whole session)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from orchestrator import submission
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec
from tests.conftest import MARS, wait_until_gone

pytestmark = pytest.mark.integration


def submit(cluster: dict, data: dict, priority: int = 0, **sections: dict) -> int:
    spec = parse_spec(
        {
            "kind": "tokenizer",
            "name": sections.pop("name", "tok"),
            "data": data,
            "tokenizer": {"vocab_size": 2000, **sections.pop("tokenizer", {})},
            **sections,
        }
    )
    return submission.submit_spec(cluster["registry"], spec, priority)


def wait(cluster: dict, job_id: int, timeout: float = 120) -> submission.Outcome:
    return submission.follow(
        cluster["registry"], job_id, lambda e: None, lambda p: None, timeout=timeout
    )


def wait_for_status(reg: Registry, job_id: int, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with reg.session() as s:
            if store.get_job(s, job_id).status == status:
                return
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not reach {status} in {timeout}s")


def wait_for_waiting(cluster: dict, job_ids: list[int], timeout: float = 60) -> dict[str, str]:
    """The scheduler's reasons for the waiting jobs, from the first fresh heartbeat that
    names every one of ``job_ids``."""
    deadline = time.monotonic() + timeout
    beat = None
    while time.monotonic() < deadline:
        beat = submission.scheduler_heartbeat(cluster["settings"], cluster["registry"])
        if beat is not None and beat[1] < 10:
            waiting = beat[0].get("waiting", {})
            if all(str(j) in waiting for j in job_ids):
                return waiting
        time.sleep(0.2)
    raise AssertionError(f"the scheduler never reported jobs {job_ids} waiting: {beat}")


def driver_pid(reg: Registry, job_id: int) -> int:
    with reg.session() as s:
        reasons = [e.reason for e in store.get_job(s, job_id).events]
    match = next(m for r in reasons if (m := re.search(r"driver started on .* \(pid (\d+)\)", r)))
    return int(match.group(1))


def test_tokenizer_job_end_to_end(ray_cluster: dict, gutenberg: Path) -> None:
    from transformers import AutoTokenizer

    job_id = submit(
        ray_cluster, {"files": [str(gutenberg)], "max_lines": 20000}, tokenizer={"vocab_size": 5000}
    )
    outcome = wait(ray_cluster, job_id)
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with ray_cluster["registry"].session() as s:
        row = store.get_tokenizer(s, "tok", 1)
        job = store.get_job(s, job_id)
        assert [e.to_status for e in job.events] == ["QUEUED", "STARTING", "RUNNING", "SUCCEEDED"]
        assert row.dataset.num_rows == {"train": 20000}
    tokenizer = AutoTokenizer.from_pretrained(row.artifact_uri)
    assert len(tokenizer) == 5000
    encoded = tokenizer("It was a bright cold day in April.")
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and "[UNK]" not in tokens
    assert tokenizer.decode(encoded["input_ids"], skip_special_tokens=True) == (
        "it was a bright cold day in april."
    )


def test_drivers_are_forked_from_the_warm_driver_host(ray_cluster: dict) -> None:
    """The scheduler starts the head's warm driver host when it starts (jobs/runtime/warm/); once
    it has imported the job code, drivers are forked from it: the launcher says so in the
    job's log, with the pid the driver records."""
    from orchestrator.ray_client.logs import job_logs

    deadline = time.monotonic() + 180
    while True:
        job_id = submit(
            ray_cluster,
            {"files": [str(MARS)], "max_lines": 500},
            name="warm",
            tokenizer={"vocab_size": 500},
        )
        outcome = wait(ray_cluster, job_id)
        assert outcome.status == JobStatus.SUCCEEDED, outcome.error
        with ray_cluster["registry"].session() as s:
            ray_id = store.get_job(s, job_id).ray_job_id
        logs = job_logs(ray_cluster["info"], ray_id)
        if "driver forked by the warm host" in logs:
            break
        assert "cold start: no driver host" in logs, logs  # the host is still importing
        assert time.monotonic() < deadline, "no driver was forked from a warm host"
        time.sleep(5)
    assert f"pid {driver_pid(ray_cluster['registry'], job_id)}" in logs


def test_failed_job_says_why(ray_cluster: dict, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    outcome = wait(ray_cluster, submit(ray_cluster, {"files": [str(empty)]}, name="empty"))
    assert outcome.status == JobStatus.FAILED
    assert "the corpus is empty" in outcome.error and str(empty) in outcome.error
    with ray_cluster["registry"].session() as s:
        assert store.list_tokenizers(s, "empty") == []


def test_a_killed_driver_marks_the_job_failed(ray_cluster: dict, gutenberg: Path) -> None:
    reg = ray_cluster["registry"]
    job_id = submit(
        ray_cluster, {"files": [str(gutenberg)]}, name="killed", tokenizer={"vocab_size": 30000}
    )
    wait_for_status(reg, job_id, JobStatus.RUNNING)
    os.kill(driver_pid(reg, job_id), signal.SIGKILL)
    outcome = wait(ray_cluster, job_id, timeout=60)
    assert outcome.status == JobStatus.FAILED
    assert "driver failed" in outcome.error
    with reg.session() as s:
        assert store.list_tokenizers(s, "killed") == []


def test_cancel_a_running_job_stops_its_driver(ray_cluster: dict, gutenberg: Path) -> None:
    reg = ray_cluster["registry"]
    job_id = submit(
        ray_cluster, {"files": [str(gutenberg)]}, name="cancelled", tokenizer={"vocab_size": 30000}
    )
    wait_for_status(reg, job_id, JobStatus.RUNNING)
    pid = driver_pid(reg, job_id)
    with reg.session() as s:
        assert store.request_cancel(s, job_id) == "CANCEL_REQUESTED"
    outcome = wait(ray_cluster, job_id, timeout=60)
    assert outcome.status == JobStatus.CANCELLED
    assert wait_until_gone(pid), f"the driver (pid {pid}) of a cancelled job still runs"
    with reg.session() as s:
        assert store.list_tokenizers(s, "cancelled") == []


def test_priority_then_fifo_and_why(ray_cluster: dict, gutenberg: Path) -> None:
    """With the cluster full, a later high-priority job starts before an earlier low one,
    and `why` explains the wait in terms of resources."""
    reg = ray_cluster["registry"]
    whole = {"cpus": 2}
    blocker = submit(
        ray_cluster,
        {"files": [str(gutenberg)]},
        name="blocker",
        tokenizer={"vocab_size": 30000},
        resources=whole,
    )
    wait_for_status(reg, blocker, JobStatus.RUNNING)
    small = {"files": [str(gutenberg)], "max_lines": 2000}
    low = submit(ray_cluster, small, name="low", resources=whole)
    high = submit(ray_cluster, small, priority=10, name="high", resources=whole)
    never = submit(ray_cluster, small, name="never", resources={"cpus": 64})
    waiting = wait_for_waiting(ray_cluster, [high, low, never])
    assert waiting[str(high)].startswith("waiting for resources: asks for 2 CPU, free now 0 CPU")
    assert waiting[str(low)].startswith(f"queued behind job {high}")
    assert "can never start on this cluster" in waiting[str(never)]
    with reg.session() as s:
        store.request_cancel(s, blocker)
        store.request_cancel(s, never)
    assert wait(ray_cluster, high).status == JobStatus.SUCCEEDED
    assert wait(ray_cluster, low).status == JobStatus.SUCCEEDED
    with reg.session() as s:
        started = {j: store.get_job(s, j).started_at for j in (low, high)}
    assert started[high] < started[low]


def test_scheduler_restarts_after_being_killed(ray_cluster: dict, tmp_path: Path) -> None:
    from orchestrator.ray_client.connection import NAMESPACE, connect
    from orchestrator.ray_client.scheduler_host import scheduler_name

    settings, reg = ray_cluster["settings"], ray_cluster["registry"]
    ray = connect(ray_cluster["info"])  # this cluster, by its address
    actor = ray.get_actor(scheduler_name(settings), namespace=NAMESPACE)
    old_pid = ray.get(actor.ping.remote())
    ray.kill(actor, no_restart=False)
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(f"line {i} of a small corpus" for i in range(200)))
    job_id = submit(
        ray_cluster, {"files": [str(corpus)]}, name="after-restart", tokenizer={"vocab_size": 300}
    )
    assert wait(ray_cluster, job_id).status == JobStatus.SUCCEEDED
    assert ray.get(actor.ping.remote()) != old_pid
    assert submission.scheduler_heartbeat(settings, reg)[0]["pid"] != old_pid
