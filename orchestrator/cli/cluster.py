"""`orch cluster up|status|down`: the local Ray cluster and its scheduler."""

from __future__ import annotations

import click

from orchestrator.cli.common import address_option, emit, format_option, info, registry, settings

NODE_COLUMNS = [
    "node_id",
    "address",
    "head",
    "cpus",
    "cpus_free",
    "gpus",
    "gpus_free",
    "memory_gb",
    "memory_free_gb",
]


@click.group()
def cluster() -> None:
    """Start, inspect and stop the Ray cluster jobs run on."""


@cluster.command("up")
@click.option("--num-cpus", type=float, default=None, help="Logical CPUs (default: all cores).")
@click.option("--num-gpus", type=float, default=None, help="GPUs (default: detected).")
@address_option
def up(num_cpus: float | None, num_gpus: float | None, address: str | None) -> None:
    """Start the local Ray head (or attach to --address) and this registry's scheduler."""
    from orchestrator.ray_client import connection, local, scheduler_host

    s = settings(cluster_address=address)
    if s.cluster_address:
        cluster_info, started = connection.resolve_cluster(s), False
    else:
        info("starting the local Ray cluster ...")
        cluster_info, started = local.start_local_cluster(s, num_cpus, num_gpus)
    registry(s)  # create and migrate the registry before the scheduler uses it
    pid = scheduler_host.ensure_scheduler(s, cluster_info)
    info(("started" if started else "already running") + f": Ray at {cluster_info.gcs_address}")
    info(
        f"  dashboard and Jobs API: {cluster_info.dashboard_url} (token: {cluster_info.token_path})"
    )
    info(f"  scheduler for registry {s.resolved_registry_url} (pid {pid})")
    click.echo(cluster_info.gcs_address)


@cluster.command("status")
@format_option
@address_option
def status(fmt: str, address: str | None) -> None:
    """Nodes with their total and free CPUs, GPUs and memory."""
    from orchestrator.ray_client import connection
    from orchestrator.submission import scheduler_heartbeat

    s = settings(cluster_address=address)
    cluster_info = connection.resolve_cluster(s)
    emit(connection.cluster_nodes(cluster_info), NODE_COLUMNS, fmt)
    beat = scheduler_heartbeat(s, registry(s))
    info(
        f"cluster {cluster_info.gcs_address}; dashboard {cluster_info.dashboard_url}; "
        + (f"scheduler seen {beat[1]:.0f}s ago" if beat else "no scheduler has run")
    )


@cluster.command("down")
def down() -> None:
    """Stop the local cluster started by `orch cluster up` (only its own processes)."""
    from orchestrator import endpoints
    from orchestrator.ray_client import local

    s = settings()
    running = local.local_cluster(s)
    count = local.stop_local_cluster(s)
    info(f"stopped {count} Ray process(es)" if count else "no local cluster was running")
    if running and (gone := endpoints.forget_cluster(registry(s), running.gcs_address)):
        info(f"{gone} endpoint(s) served there are marked DELETED")
