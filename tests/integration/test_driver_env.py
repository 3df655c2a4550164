"""What a job's driver hands on to the tasks, actors and Ray Train workers it starts."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

PROBE = """
import os, ray
from jobs.runtime.driver import keep_the_registry_url_on_the_driver

keep_the_registry_url_on_the_driver()

@ray.remote(num_cpus=0)
def seen_by_a_task():
    return os.environ.get("ORCH_REGISTRY_URL")

print("driver:", os.environ["ORCH_REGISTRY_URL"])
print("task:", repr(ray.get(seen_by_a_task.remote())))
"""


def test_the_registry_url_stays_on_the_driver(ray_cluster: dict, tmp_path: Path) -> None:
    """The scheduler gives a driver the registry URL through the job's environment, which Ray
    passes to every task and worker of the job: the driver blanks it for them."""
    from orchestrator.ray_client.connection import jobs_client

    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    url = "postgresql://lab:s3cret@db.example/registry"
    client = jobs_client(ray_cluster["info"])
    job = client.submit_job(
        entrypoint=f"{sys.executable} {script}",
        runtime_env={"env_vars": {"ORCH_REGISTRY_URL": url, "PYTHONPATH": str(REPO)}},
        entrypoint_num_cpus=0,
    )
    deadline = time.monotonic() + 120
    while (status := client.get_job_status(job).value) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"probe job still {status}"
        time.sleep(0.5)
    logs = client.get_job_logs(job)
    assert status == "SUCCEEDED", logs
    assert f"driver: {url}" in logs
    assert "task: ''" in logs and "s3cret" not in logs.split("task:")[1]
