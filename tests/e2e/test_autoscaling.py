"""A cluster that grows for a queued job: Ray's real autoscaler with its fake node provider
(worker "nodes" are real raylets started on this machine), driven through `orch`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import MARS, run_orch
from tests.e2e.test_cli_cluster import clean_env

pytestmark = pytest.mark.e2e


def fake_launcher_config(gcs_address: str) -> dict:
    """A cluster launcher config for the fake provider: a 1-CPU head and up to one 2-CPU
    worker node, none at the start."""
    return {
        "cluster_name": "orch-fake",
        "max_workers": 1,
        "provider": {
            "type": "fake_multinode",
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
            "gcs_address": gcs_address,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "cpu2": {
                "resources": {"CPU": 2},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 1,
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "docker": {},
        **{k: [] for k in ("initialization_commands", "setup_commands", "head_setup_commands")},
        **{k: [] for k in ("worker_setup_commands", "head_start_ray_commands")},
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


@pytest.fixture
def autoscaling_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A 1-CPU head whose autoscaler may add one 2-CPU node; `orch` pointed at it, with the
    launcher config as its `autoscaling_config`. Stopped (fake nodes included) afterwards."""
    from ray._private.services import get_node_ip_address

    from orchestrator.config import Settings
    from orchestrator.ray_client import local

    home = tmp_path / "home"
    settings = Settings(home=home)
    port = local.pick_port()
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump(fake_launcher_config(f"{get_node_ip_address()}:{port}")))
    monkeypatch.setenv("RAY_FAKE_CLUSTER", "1")  # read by `ray start` and its autoscaler
    monkeypatch.setenv("AUTOSCALER_UPDATE_INTERVAL_S", "1")
    try:
        local.start_local_cluster(
            settings, num_cpus=1, extra_args=(f"--autoscaling-config={config}",), gcs_port=port
        )
        yield clean_env(home, ORCH_AUTOSCALING_CONFIG=str(config))
    finally:
        from orchestrator.api.local import stop_servers

        stop_servers(settings)  # started by the first `orch` command
        local.stop_local_cluster(settings)


def test_a_job_larger_than_the_head_gets_a_node_started_and_runs(
    autoscaling_cluster: dict[str, str],
) -> None:
    from orchestrator.config import Settings
    from orchestrator.registry import Registry
    from orchestrator.submission import scheduler_heartbeat

    env = autoscaling_cluster
    nodes = json.loads(run_orch(["cluster", "status", "--format", "json"], env, check=True).stdout)
    assert len(nodes) == 1  # the head alone
    tokenizer = ["submit", "jobs/configs/tokenizer-wordpiece.yaml", "--set", f"data.files=[{MARS}]"]
    proc = run_orch([*tokenizer, "--set", "name=grown", "--set", "resources.cpus=2", "--wait"], env)
    assert proc.returncode == 0, proc.stderr
    job = json.loads(run_orch(["jobs", "show", "1", "--format", "json"], env, check=True).stdout)
    assert job["status"] == "SUCCEEDED"
    reasons = [e["reason"] for e in job["events"]]
    assert "asked the autoscaler for 2 CPU: waiting for nodes" in reasons, reasons
    nodes = json.loads(run_orch(["cluster", "status", "--format", "json"], env, check=True).stdout)
    assert len(nodes) == 2  # the autoscaler started a worker node for it

    # the request is withdrawn once the job is admitted
    settings = Settings(home=Path(env["ORCH_HOME"]))
    registry = Registry(settings.resolved_registry_url)
    deadline = time.monotonic() + 30
    while (beat := scheduler_heartbeat(settings, registry)) and beat[0]["requested"]:
        assert time.monotonic() < deadline, beat
        time.sleep(0.5)
    assert beat is not None and len(beat[0]["largest"]) == 2

    # a job larger than the cluster at its largest is refused at submit, naming why
    refused = run_orch([*tokenizer, "--set", "name=huge", "--set", "resources.cpus=3"], env)
    assert refused.returncode == 2
    assert "even at its largest" in refused.stderr and "largest node has 2 CPU" in refused.stderr
