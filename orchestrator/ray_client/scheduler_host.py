"""The scheduler's home on the cluster: a detached, named actor on the head node that runs
``Scheduler.run_forever``. Ray finds the actor's class by its import path
(``orchestrator.ray_client.scheduler_host.SchedulerActor``), importable there through the
PYTHONPATH given in its runtime_env."""

from __future__ import annotations

import os

from orchestrator.config import Settings
from orchestrator.errors import UsageError
from orchestrator.ray_client import PROJECT_ROOT
from orchestrator.ray_client.cluster_info import ClusterInfo
from orchestrator.ray_client.connection import NAMESPACE, connect
from orchestrator.ray_client.jobs_api import RayBackend
from orchestrator.scheduler.capacity import read_launcher_config


def scheduler_name(settings: Settings) -> str:
    """The actor's name: one scheduler per registry."""
    return f"scheduler-{settings.registry_key}"


class SchedulerActor:
    """Runs ``Scheduler.run_forever`` in a thread of a detached actor on the head node."""

    def __init__(
        self, settings_json: str, dashboard_url: str, node_groups: list[dict] | None = None
    ) -> None:
        import logging
        import threading

        import ray

        from orchestrator.config import Settings
        from orchestrator.registry import Registry
        from orchestrator.scheduler.service import Scheduler

        logging.basicConfig(level=logging.INFO)
        settings = Settings.model_validate_json(settings_json)
        registry = Registry(settings.resolved_registry_url)
        backend = RayBackend(dashboard_url)
        self.scheduler = Scheduler(
            registry,
            backend,
            settings.registry_key,
            {
                **settings.driver_env(),
                "PYTHONPATH": PROJECT_ROOT,
                # Ray code that looks its cluster up without an address (Ray Train's
                # placement-group cleaner) would otherwise fail when another cluster runs on
                # the machine ("Found multiple active Ray instances").
                "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
            },
            node_groups,
        )
        self.scheduler.tick()  # publishes the heartbeat before the creator is told we exist
        threading.Thread(target=self.scheduler.prestart_driver_host, daemon=True).start()
        threading.Thread(target=self.scheduler.run_forever, daemon=True).start()

    def ping(self) -> int:
        return os.getpid()


def ensure_scheduler(settings: Settings, info: ClusterInfo, timeout: float = 120) -> int:
    """Start this registry's scheduler on the cluster unless it runs; returns its pid."""
    node_groups = None
    if settings.autoscaling_config is not None:  # read here: the path is this machine's
        try:
            node_groups = read_launcher_config(settings.autoscaling_config.expanduser())
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    ray = connect(info)
    actor = (
        ray.remote(SchedulerActor)
        .options(
            name=scheduler_name(settings),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            num_cpus=0,
            resources={"node:__internal_head__": 0.001},
            runtime_env={"env_vars": {"PYTHONPATH": PROJECT_ROOT}},
        )
        .remote(settings.model_dump_json(), info.dashboard_url, node_groups)
    )
    return int(ray.get(actor.ping.remote(), timeout=timeout))
