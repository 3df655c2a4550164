"""`orch cluster up|status|down`: the local Ray cluster, its scheduler and API server."""

from __future__ import annotations

import click

from orchestrator.cli.common import address_option, api, emit, format_option, info, settings

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
    """Start the local Ray head (or attach to --address), this registry's scheduler and the
    API server with its web console; the local user gets an admin token."""
    from orchestrator.api import local as api_server
    from orchestrator.ray_client import connection, local, scheduler_host
    from orchestrator.registry import Registry

    s = settings(cluster_address=address)
    if s.cluster_address:
        cluster_info, started = connection.resolve_cluster(s), False
    else:
        info("starting the local Ray cluster ...")
        cluster_info, started = local.start_local_cluster(s, num_cpus, num_gpus)
    Registry(s.resolved_registry_url)  # create and migrate the registry first
    pid = scheduler_host.ensure_scheduler(s, cluster_info)
    server = api_server.ensure_server(s, replace=True)
    info(("started" if started else "already running") + f": Ray at {cluster_info.gcs_address}")
    info(
        f"  dashboard and Jobs API: {cluster_info.dashboard_url} (token: {cluster_info.token_path})"
    )
    info(f"  scheduler for registry {s.resolved_registry_url} (pid {pid})")
    info(f"  API server and web console: {server['url']}/console/ (pid {server['pid']})")
    info(f"  sign in with the admin token in {s.local_token_path} (readable by you only)")
    click.echo(cluster_info.gcs_address)


@cluster.command("status")
@format_option
def status(fmt: str) -> None:
    """Nodes with their total and free CPUs, GPUs and memory."""
    s = settings()
    # the local API server is started for a cluster that runs, never to report on none
    out = api(start=bool(s.cluster_address) or (s.cluster_dir / "state.json").is_file()).get(
        "/api/cluster"
    )
    emit(out["nodes"], NODE_COLUMNS, fmt)
    beat = out["scheduler"]
    info(
        f"cluster {out['gcs_address']}; dashboard {out['dashboard_url']}; "
        + (f"scheduler seen {beat['seen_s_ago']:.0f}s ago" if beat else "no scheduler has run")
    )


@cluster.command("down")
def down() -> None:
    """Stop the local cluster started by `orch cluster up` (only its own processes), and
    this home's API server."""
    from orchestrator import endpoints
    from orchestrator.api import local as api_server
    from orchestrator.ray_client import local
    from orchestrator.registry import Registry

    s = settings()
    if servers := api_server.stop_servers(s):
        info(f"stopped {servers} API server(s)")
    running = local.local_cluster(s)
    count = local.stop_local_cluster(s)
    info(f"stopped {count} Ray process(es)" if count else "no local cluster was running")
    if running and (
        gone := endpoints.forget_cluster(Registry(s.resolved_registry_url), running.gcs_address)
    ):
        info(f"{gone} endpoint(s) served there are marked DELETED")
