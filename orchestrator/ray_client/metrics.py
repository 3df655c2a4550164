"""Metrics that Ray exports: where each node's metrics agent serves them, and our endpoint
metrics (``ray.util.metrics`` recorded by the Serve replicas, see ``jobs.serving.app``) read
from every alive node, for the API server's ``/metrics`` to relay.

Ray prefixes what ``ray.util.metrics`` records with ``ray_``: the replicas' counter
``orch_endpoint_requests`` comes out as ``ray_orch_endpoint_requests_total``. Each series
carries Ray's own labels too (``NodeAddress``, ``WorkerId``, ...): one series per replica.
The agents answer plain HTTP without auth (docs/guide/security.md, *Ray*).
"""

from __future__ import annotations

import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ClusterError
from orchestrator.ray_client.cluster_info import ClusterInfo, reachable
from orchestrator.ray_client.connection import connect, resolve_cluster

ENDPOINT_PREFIX = "ray_orch_endpoint_"
FETCH_TIMEOUT_S = 2.0


def metrics_targets(info: ClusterInfo) -> list[str]:
    """``HOST:PORT`` of every alive node's metrics agent (Prometheus text at ``/metrics``)."""
    ray = connect(info)
    targets = []
    for node in ray.nodes():
        if node.get("Alive") and node.get("MetricsExportPort"):
            host = node["NodeManagerAddress"]
            host = f"[{host}]" if ":" in host else host  # an IPv6 address
            targets.append(f"{host}:{node['MetricsExportPort']}")
    return targets


def fetch_metrics_text(target: str, timeout: float = FETCH_TIMEOUT_S) -> str:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=timeout) as response:
        return str(response.read().decode("utf-8", errors="replace"))


def keep_prefixed(text: str, prefix: str) -> str:
    """The lines of a Prometheus text exposition that belong to metrics named ``prefix...``
    (samples, and their ``# HELP`` / ``# TYPE`` lines): filtered as text, so an agent's
    hundreds of other series cost no parsing."""
    kept = []
    for line in text.splitlines():
        name = line.split(" ", 3)[2] if line.startswith(("# HELP ", "# TYPE ")) else line
        if name.startswith(prefix):
            kept.append(line)
    return "\n".join(kept) + "\n" if kept else ""


def merge_families(texts: list[str]) -> list[Any]:
    """The metric families of several agents' expositions, one family per name (a family
    from two nodes gets both nodes' samples; their labels tell them apart)."""
    from prometheus_client.parser import text_string_to_metric_families

    merged: dict[tuple[str, str], Any] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            key = (family.name, family.type)
            if key in merged:
                merged[key].samples.extend(family.samples)
            else:
                merged[key] = family
    return list(merged.values())


def endpoint_metric_families(
    settings: Settings, prefix: str = ENDPOINT_PREFIX, timeout: float = FETCH_TIMEOUT_S
) -> tuple[list[Any], int, int]:
    """Our endpoint metrics from every alive node of the cluster, as prometheus_client metric
    families; with how many nodes answered and how many did not. Raises ClusterError when no
    cluster is reachable."""
    info = resolve_cluster(settings)
    if not reachable(info.gcs_address):  # a configured but dead address: fail in 0.5 s
        raise ClusterError(f"the Ray cluster at {info.gcs_address} does not answer")
    targets = metrics_targets(info)
    texts, failed = [], 0
    with ThreadPoolExecutor(max_workers=min(16, len(targets) or 1)) as pool:
        futures = [pool.submit(fetch_metrics_text, target, timeout) for target in targets]
        for future in futures:
            try:
                texts.append(keep_prefixed(future.result(), prefix))
            except OSError:
                failed += 1
    return merge_families(texts), len(targets) - failed, failed
