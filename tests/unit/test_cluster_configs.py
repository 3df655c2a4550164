"""The cluster configurations that ship in cluster/ parse and say what they must."""

from __future__ import annotations

from pathlib import Path

import yaml

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"


def test_kuberay_raycluster_manifest() -> None:
    doc = yaml.safe_load((CLUSTER / "kuberay-raycluster.yaml").read_text())
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    assert doc["spec"]["rayVersion"].startswith("2.60")
    head = doc["spec"]["headGroupSpec"]
    env = {e["name"]: e for e in head["template"]["spec"]["containers"][0]["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token" and "RAY_AUTH_TOKEN" in env
    assert {"ORCH_REGISTRY_URL", "ORCH_ARTIFACT_ROOT"} <= set(env)
    assert head["rayStartParams"]["port"] != "6379"
    gpu = doc["spec"]["workerGroupSpecs"][0]
    limits = gpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert int(limits["nvidia.com/gpu"]) == int(gpu["rayStartParams"]["num-gpus"]) > 0
    mounts = gpu["template"]["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == "/shared" for m in mounts)  # one artifact root for all


def test_cluster_launcher_config() -> None:
    doc = yaml.safe_load((CLUSTER / "ray-cluster.gpu.yaml").read_text())
    assert doc["head_node_type"] in doc["available_node_types"]
    gpu = [t for t in doc["available_node_types"].values() if t["resources"].get("GPU")]
    assert gpu and doc["max_workers"] >= max(t["max_workers"] for t in gpu)
    start = " ".join(doc["head_start_ray_commands"] + doc["worker_start_ray_commands"])
    assert start.count("RAY_AUTH_MODE=token") == 2 and "--dashboard-host=127.0.0.1" in start
    assert "--port=6380" in start and "constraints.txt" in " ".join(doc["setup_commands"])
