"""Warm drivers (jobs/runtime/warm/) with real processes and a real registry, no Ray: a
driver host forks drivers that run a tokenizer job, their exit codes and output reach the
launcher, a stop signal to the launcher reaches the driver, a killed launcher takes its driver
with it, and drivers start cold when the warm path cannot be trusted."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from jobs.runtime import warm
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec
from tests.conftest import MARS, REPO, wait_until_gone

FORKED = re.compile(r"driver forked by the warm host \w+: pid (\d+)")


# --- pure logic -------------------------------------------------------------------------------


def test_the_key_ignores_per_job_variables_only() -> None:
    env = {"PATH": "/bin", "ORCH_REGISTRY_URL": "sqlite:///a.db", "RAY_ADDRESS": "10.0.0.1:6380"}
    key = warm.host_key(env)
    per_job = {"ORCH_JOB_ID": "7", "OMP_NUM_THREADS": "2", "RAY_JOB_CONFIG_JSON_ENV_VAR": "{}"}
    assert warm.host_key({**env, **per_job}) == key
    assert warm.host_key({**env, "ORCH_REGISTRY_URL": "sqlite:///b.db"}) != key
    assert warm.host_key({**env, "RAY_ADDRESS": "10.0.0.1:6381"}) != key  # another cluster
    code = warm.code_fingerprint()
    changed = [[path, size + 1, mtime] for path, size, mtime in code[:1]] + code[1:]
    assert warm.host_key(env, changed) != warm.host_key(env, code)  # an edited source file


def test_the_code_fingerprint_covers_the_project_sources() -> None:
    paths = {entry[0] for entry in warm.code_fingerprint()}
    assert str(REPO / "jobs" / "runtime" / "driver.py") in paths
    assert str(REPO / "orchestrator" / "scheduler" / "service.py") in paths


@pytest.mark.parametrize(
    "env,why",
    [
        ({}, None),
        ({"ORCH_WARM_DRIVERS": "0"}, "warm drivers are off"),
        ({"ORCH_WARM_DRIVERS": "false"}, "warm drivers are off"),
        ({"CUDA_VISIBLE_DEVICES": "0"}, "the driver has a GPU"),
        ({"CUDA_VISIBLE_DEVICES": ""}, None),
    ],
)
def test_when_a_driver_starts_cold(env: dict[str, str], why: str | None) -> None:
    found = warm.warm_allowed(env)
    assert (found is None) if why is None else (found is not None and why in found)


def test_messages_carry_descriptors(tmp_path: Path) -> None:
    a, b = socket.socketpair()
    target = tmp_path / "out.txt"
    with open(target, "w") as out:  # a large message: it goes in several reads
        sender = threading.Thread(
            target=warm.send_message,
            args=(a, {"args": ["3"], "env": {"X": "é" * 70_000}}, [out.fileno()]),
        )
        sender.start()
        message, fds = warm.receive_message(b, max_fds=2)
        sender.join()
    assert message == {"args": ["3"], "env": {"X": "é" * 70_000}}
    assert len(fds) == 1
    os.write(fds[0], b"through the passed descriptor")
    os.close(fds[0])
    assert target.read_text() == "through the passed descriptor"
    a.close()
    assert warm.receive_message(b) == (None, [])  # the other end closed
    b.close()


# --- a real host, real drivers ----------------------------------------------------------------


@pytest.fixture
def job_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A driver's environment for a registry of its own (so: a host key of its own); the
    host started for it is stopped afterwards."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "RAY_", "PYTEST"))},
        "ORCH_HOME": str(tmp_path / "home"),
        "ORCH_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "ORCH_WARM_DRIVERS": "1",
        "PYTHONPATH": str(REPO),
    }
    yield env
    key = warm.host_key(env)
    for proc in psutil.process_iter(["cmdline"]):
        if proc.info["cmdline"] and key in proc.info["cmdline"]:
            proc.send_signal(signal.SIGTERM)  # retire: it exits once its drivers are done
            proc.wait(timeout=30)


def tokenizer_job(env: dict[str, str], files: list[str]) -> int:
    reg = Registry(env["ORCH_REGISTRY_URL"])
    spec = parse_spec(
        {
            "kind": "tokenizer",
            "name": "tok",
            "data": {"files": files, "max_lines": 1500},
            "tokenizer": {"vocab_size": 1000},
        },
        check_files=False,
    )
    with reg.session() as s:
        job_id = store.create_job(
            s, kind="tokenizer", name="tok", spec=spec.model_dump(mode="json"), resources={}
        ).id
        store.transition(s, job_id, JobStatus.STARTING, "test")
    return job_id


def job_status(env: dict[str, str], job_id: int) -> tuple[JobStatus, str | None]:
    with Registry(env["ORCH_REGISTRY_URL"]).session() as s:
        job = store.get_job(s, job_id)
        return job.status, job.error


def launcher(env: dict[str, str], job_id: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.runtime.warm", "run", str(job_id)],
        env={**env, "ORCH_JOB_ID": str(job_id)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def started_host(env: dict[str, str], timeout: float = 120) -> Path:
    """Start the host for ``env`` as the scheduler does (``prestart``); wait for its socket."""
    subprocess.run([sys.executable, "-m", "jobs.runtime.warm", "prestart"], env=env, check=True)
    path = warm.host_dir() / f"{warm.host_key(env)}.sock"
    deadline = time.monotonic() + timeout
    while (probe := warm.connect(path)) is None:
        assert time.monotonic() < deadline, "the driver host never listened"
        time.sleep(0.2)
    probe.close()
    return path


def forked_pid(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if match := FORKED.search(line):
            return int(match.group(1))
    raise AssertionError("the launcher never said it forked a driver:\n" + "".join(seen))


def test_a_forked_driver_runs_the_job_and_its_exit_code_comes_back(
    job_env: dict[str, str],
) -> None:
    started_host(job_env)
    ok = tokenizer_job(job_env, [str(MARS)])
    proc = launcher(job_env, ok)
    pid = forked_pid(proc)
    assert pid != proc.pid
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output
    assert job_status(job_env, ok)[0] == JobStatus.SUCCEEDED
    assert f"job {ok} succeeded" in output  # the driver's log reached the launcher's stdout
    with Registry(job_env["ORCH_REGISTRY_URL"]).session() as s:
        reasons = [e.reason for e in store.get_job(s, ok).events]
    assert any(f"(pid {pid})" in r for r in reasons), reasons  # the driver's own pid

    bad = tokenizer_job(job_env, ["/nonexistent/corpus.txt"])  # fails for its own reasons
    proc = launcher(job_env, bad)
    forked_pid(proc)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 1, output
    status, error = job_status(job_env, bad)
    assert status == JobStatus.FAILED and "/nonexistent/corpus.txt" in (error or "")


def test_stopping_the_launcher_stops_the_driver(job_env: dict[str, str]) -> None:
    """`ray job stop` sends SIGTERM to the entrypoint (the launcher): it reaches the driver.
    A launcher killed outright (Ray's SIGKILL after its grace period) takes the driver too.
    The drivers are held still meanwhile: this test holds the registry's write lock, so their
    first write (RUNNING) waits."""
    started_host(job_env)
    jobs = [tokenizer_job(job_env, [str(MARS)]) for _ in range(2)]
    lock = sqlite3.connect(job_env["ORCH_REGISTRY_URL"].removeprefix("sqlite:///"))
    lock.execute("BEGIN IMMEDIATE")
    try:
        proc = launcher(job_env, jobs[0])
        pid = forked_pid(proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        assert proc.returncode == 128 + signal.SIGTERM
        assert wait_until_gone(pid), f"driver {pid} still runs after its launcher was stopped"

        proc = launcher(job_env, jobs[1])
        pid = forked_pid(proc)
        proc.kill()
        proc.communicate(timeout=30)
        assert wait_until_gone(pid), f"driver {pid} still runs after its launcher was killed"
    finally:
        lock.rollback()
        lock.close()


def test_without_a_host_the_driver_starts_cold_and_a_host_starts(
    job_env: dict[str, str],
) -> None:
    job_id = tokenizer_job(job_env, [str(MARS)])
    proc = launcher(job_env, job_id)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output
    assert "cold start: no driver host" in output
    assert job_status(job_env, job_id)[0] == JobStatus.SUCCEEDED
    path = warm.host_dir() / f"{warm.host_key(job_env)}.sock"
    deadline = time.monotonic() + 120
    while (probe := warm.connect(path)) is None:  # the cold launcher started one
        assert time.monotonic() < deadline, "no host started after a cold start"
        time.sleep(0.2)
    probe.close()

    off = {**job_env, "ORCH_WARM_DRIVERS": "0"}  # the setting turns the warm path off
    job_id = tokenizer_job(job_env, [str(MARS)])
    output = launcher(off, job_id).communicate(timeout=120)[0]
    assert "cold start: warm drivers are off" in output
    assert job_status(job_env, job_id)[0] == JobStatus.SUCCEEDED
