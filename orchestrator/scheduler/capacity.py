"""What a cluster may grow to: its autoscaler's node types, as node shapes the scheduler can
plan with. Pure Python (the YAML is read by the caller or by ``launcher_node_groups``).

Two sources, the first that has something wins: the Ray cluster launcher YAML of the cluster
(the file given to ``ray up``; setting ``autoscaling_config``), and the cluster config that
autoscaler v2 and KubeRay publish in the GCS (``RayBackend.node_groups``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.scheduler.admission import TRACKED, Resources

UNLIMITED = 100  # planning count for a node type without a maximum (max_count -1)
NodeGroup = dict[str, Any]  # {"name": str, "resources": {CPU, GPU, memory}, "max": int}


def shape(resources: Mapping[str, Any]) -> dict[str, float]:
    """The resources the scheduler plans with (CPU, GPU, memory), as floats."""
    return {k: float(resources[k]) for k in TRACKED if k in resources}


def launcher_node_groups(
    config: Mapping[str, Any], source: str = "the cluster config"
) -> list[NodeGroup]:
    """The worker node types of a cluster launcher config (``available_node_types``), each with
    the most nodes of it the autoscaler may start (its ``max_workers``, capped by the
    cluster's)."""
    types = config.get("available_node_types")
    if not isinstance(types, Mapping):
        raise ValueError(f"{source}: no available_node_types mapping")
    cap = int(config.get("max_workers", 2**31))
    head = config.get("head_node_type")
    groups = []
    for name, node_type in types.items():
        if name == head or not isinstance(node_type, Mapping):
            continue
        resources = node_type.get("resources")
        if not isinstance(resources, Mapping):
            raise ValueError(f"{source}: available_node_types.{name}.resources is missing")
        most = min(int(node_type.get("max_workers", cap)), cap)
        if most > 0:
            groups.append({"name": str(name), "resources": shape(resources), "max": most})
    return groups


def read_launcher_config(path: Path) -> list[NodeGroup]:
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"autoscaling_config {path}: {exc}") from None
    if not isinstance(config, Mapping):
        raise ValueError(f"autoscaling_config {path}: not a YAML mapping")
    return launcher_node_groups(config, f"autoscaling_config {path}")


def scalable_nodes(
    groups: Sequence[NodeGroup], live: Sequence[Resources]
) -> list[dict[str, float]]:
    """The nodes the autoscaler may still add: for each node type, its maximum less the live
    nodes of that shape."""
    out: list[dict[str, float]] = []
    for group in groups:
        resources = shape(group["resources"])
        running = sum(1 for node in live if _of_group(node, resources))
        most = int(group["max"]) if int(group["max"]) >= 0 else UNLIMITED
        out += [dict(resources)] * max(0, most - running)
    return out


def _of_group(node: Resources, resources: Mapping[str, float]) -> bool:
    """Whether a live node looks like one of a node type: the same CPUs and GPUs, and the
    same memory where the type states it (Ray measures a node's memory itself)."""
    keys = {"CPU", "GPU", *resources}
    return all(abs(float(node.get(k, 0)) - float(resources.get(k, 0))) < 1e-6 for k in keys)
