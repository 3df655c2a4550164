"""Queue admission: which queued jobs start now, and why the others wait. Pure Python.

Policy: priority first, then first come first served, and a job starts only when its whole
gang of resource bundles fits what the cluster has left after the jobs already granted.
The first job that fits nowhere *now* blocks the jobs behind it (no backfilling past it,
so large jobs are never starved by a stream of small ones). A job that can *never* fit the
cluster (a bundle larger than any node, or more than the whole cluster) blocks nobody; when
the autoscaler may add nodes that it fits, the scheduler asks for them (``scale_up``),
otherwise it waits with that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

Resources = Mapping[str, float]
TRACKED = ("CPU", "GPU", "memory")
EPS = 1e-9


@dataclass(frozen=True)
class Request:
    job_id: int
    priority: int
    bundles: tuple[Resources, ...]


@dataclass
class Decision:
    admitted: list[int] = field(default_factory=list)
    waiting: dict[int, str] = field(default_factory=dict)
    # jobs that fit only once the autoscaler adds nodes: their bundles, to ask it for
    scale_up: dict[int, list[Resources]] = field(default_factory=dict)


def total(bundles: Iterable[Resources]) -> dict[str, float]:
    out: dict[str, float] = {}
    for bundle in bundles:
        for key, value in bundle.items():
            out[key] = out.get(key, 0.0) + float(value)
    return out


def fmt(resources: Resources) -> str:
    parts = []
    for key in TRACKED:
        value = float(resources.get(key, 0.0))
        if key == "memory":
            if value:
                parts.append(f"{value / 2**30:.1f} GiB memory")
        elif value or key == "CPU":
            parts.append(f"{value:g} {key}")
    return ", ".join(parts)


def shortfall(need: Resources, free: Resources) -> dict[str, float]:
    return {
        k: float(need.get(k, 0)) - float(free.get(k, 0))
        for k in TRACKED
        if float(need.get(k, 0)) > float(free.get(k, 0)) + EPS
    }


def never_fits(request: Request, nodes: Sequence[Resources]) -> str | None:
    """Why the request cannot fit this cluster even when idle, or None."""
    if not nodes:
        return "the cluster has no alive nodes"
    cluster = total(nodes)
    missing = shortfall(total(request.bundles), cluster)
    if missing:
        return f"asks for {fmt(total(request.bundles))} but the whole cluster has {fmt(cluster)}"
    for bundle in request.bundles:
        if not any(not shortfall(bundle, node) for node in nodes):
            largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)))
            return f"one worker asks for {fmt(bundle)} but the largest node has {fmt(largest)}"
    return None


def plan(
    queue: list[Request],
    nodes: Sequence[Resources],
    in_use: Resources,
    scalable: Sequence[Resources] = (),
) -> Decision:
    """Decide which of ``queue`` (in any order) start now, given per-node totals, the
    resources already granted to running jobs, and the nodes the autoscaler may still add."""
    decision = Decision()
    free = {k: float(total(nodes).get(k, 0)) - float(in_use.get(k, 0)) for k in TRACKED}
    blocker: Request | None = None
    for request in sorted(queue, key=lambda r: (-r.priority, r.job_id)):
        impossible = never_fits(request, nodes)
        if impossible and scalable and not never_fits(request, [*nodes, *scalable]):
            bundles = [b for b in request.bundles if any(float(v) for v in b.values())]
            decision.scale_up[request.job_id] = bundles
            decision.waiting[request.job_id] = (
                f"waiting for nodes: asked the autoscaler for {fmt(total(bundles))} "
                f"({len(bundles)} bundles; {impossible})"
            )
            continue
        if impossible:
            if scalable:
                impossible += f"; even at its largest it has {fmt(total([*nodes, *scalable]))}"
            decision.waiting[request.job_id] = f"can never start on this cluster: {impossible}"
            continue
        if blocker is not None:
            decision.waiting[request.job_id] = (
                f"queued behind job {blocker.job_id} (priority {blocker.priority}), "
                "which starts first when resources free up"
            )
            continue
        need = total(request.bundles)
        missing = shortfall(need, free)
        if missing:
            decision.waiting[request.job_id] = (
                f"waiting for resources: asks for {fmt(need)}, free now {fmt(free)}"
            )
            blocker = request
            continue
        decision.admitted.append(request.job_id)
        for key in TRACKED:
            free[key] -= float(need.get(key, 0))
    return decision
