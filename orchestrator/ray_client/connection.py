"""Reaching a cluster: which one (the configured address, else the local one), ``ray.init``
with its token, the Jobs API client, and the nodes with their free resources."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ClusterError
from orchestrator.ray_client.cluster_info import ClusterInfo
from orchestrator.ray_client.local import local_cluster, start_local_cluster

NAMESPACE = "orch"


def resolve_cluster(settings: Settings, start: bool = False) -> ClusterInfo:
    """The configured cluster (``--address`` / ORCH_CLUSTER_ADDRESS), else the local one,
    started when ``start`` is set."""
    if settings.cluster_address:
        host = settings.cluster_address.rpartition(":")[0]
        token = settings.ray_auth_token_path or Path.home() / ".ray" / "auth_token"
        return ClusterInfo(
            gcs_address=settings.cluster_address,
            dashboard_url=settings.dashboard_url or f"http://{host}:8265",
            token_path=str(token),
            local=False,
        )
    info = local_cluster(settings)
    if info:
        return info
    if not start:
        raise ClusterError(
            "no cluster is running for this orch home",
            hint="start one with `orch cluster up`, or point ORCH_CLUSTER_ADDRESS "
            "at an existing cluster",
        )
    return start_local_cluster(settings)[0]


_init_lock = threading.Lock()  # the API server connects from several request threads


def connect(info: ClusterInfo) -> Any:
    """``ray.init`` against the cluster with its token (no stray attaching to 'auto')."""
    os.environ.update(info.auth_env())
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    with _init_lock:
        if ray.is_initialized():
            return ray
        try:
            ray.init(
                address=info.gcs_address,
                namespace=NAMESPACE,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
        except (ConnectionError, RuntimeError) as exc:
            raise ClusterError(
                f"cannot reach the Ray cluster at {info.gcs_address}: {exc}",
                hint="is it running, and is its auth token at the configured path?",
            ) from None
    return ray


def jobs_client(info: ClusterInfo) -> Any:
    """A Ray Jobs API client for the cluster, with its token."""
    os.environ.update(info.auth_env())
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(info.dashboard_url)


def cluster_nodes(info: ClusterInfo) -> list[dict[str, Any]]:
    """Alive nodes with total and free CPU, GPU and memory."""
    ray = connect(info)
    free_by_node = _free_per_node()
    out = []
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res, free = node.get("Resources", {}), free_by_node.get(node["NodeID"], {})
        out.append(
            {
                "node_id": node["NodeID"][:12],
                "address": node["NodeManagerAddress"],
                "head": "node:__internal_head__" in res,
                "cpus": res.get("CPU", 0.0),
                "cpus_free": free.get("CPU", 0.0),
                "gpus": res.get("GPU", 0.0),
                "gpus_free": free.get("GPU", 0.0),
                "memory_gb": round(res.get("memory", 0.0) / 2**30, 2),
                "memory_free_gb": round(free.get("memory", 0.0) / 2**30, 2),
            }
        )
    return out


def _free_per_node() -> dict[str, dict[str, float]]:
    from ray._private.state import available_resources_per_node  # a DeveloperAPI in 2.60

    try:
        return {nid: dict(res) for nid, res in available_resources_per_node().items()}
    except Exception:  # noqa: BLE001 - show totals without free figures rather than fail
        return {}
