"""Ray Serve on the cluster: start it, deploy an application, delete one, read their status.

Applications are built on the cluster, not here: a small task imports the builder by its
import path (``"module:function"``, see ``orchestrator.specs.serving``) and hands the app to Serve,
so the control plane imports neither Ray Serve's deployments nor torch.

Every function connects before it imports Ray Serve: Ray reads the auth token once per
process, and an import that came first would fix it to "none" (then every call is refused).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ClusterError
from orchestrator.ray_client import PROJECT_ROOT
from orchestrator.ray_client.cluster_info import ClusterInfo
from orchestrator.ray_client.connection import connect


def serve_start(settings: Settings, info: ClusterInfo) -> str:
    """Start Serve on the cluster unless it runs (HTTP on ``serve_host``, the head node
    only); returns the proxy's base URL as Serve actually has it."""
    connect(info)
    from ray import serve
    from ray.serve.context import _get_global_client

    from orchestrator.specs.serving import SERVE_LOGGING

    port = settings.serve_port or info.serve_port or 8000
    logging.getLogger("ray.serve").setLevel(logging.WARNING)
    serve.start(
        proxy_location="HeadOnly",
        http_options={"host": settings.serve_host, "port": port},
        logging_config=SERVE_LOGGING,
    )
    client = _get_global_client()
    assert client is not None  # serve.start() has just made sure it runs
    http = client.http_config
    if http.host != settings.serve_host:  # Serve keeps the host it was started with
        raise ClusterError(
            f"Ray Serve on this cluster listens on {http.host}, not on serve_host "
            f"{settings.serve_host}",
            hint="set serve_host to match, or restart the cluster (`orch cluster down`, "
            "`orch cluster up`) to change it",
        )
    if http.host not in ("0.0.0.0", "::", ""):
        host = http.host
    else:  # listening everywhere: reach it where the cluster's head is
        host = "127.0.0.1" if info.local else info.gcs_address.rpartition(":")[0]
    return f"http://{host}:{http.port}"


def run_app(
    settings: Settings,
    info: ClusterInfo,
    name: str,
    route: str,
    builder: str,
    args: dict[str, Any] | None = None,
    timeout: float = 300,
) -> str:
    """Deploy (or update) application ``name`` at ``route``, built on the cluster by
    ``builder`` (``"module:function"``) from ``args`` (plain JSON-able keyword arguments),
    and wait until it runs; a deployment that fails or cannot be placed in ``timeout``
    raises ClusterError with Serve's own explanation (missing resources, the replica's
    traceback)."""
    base = serve_start(settings, info)
    import ray
    from ray import serve

    deploy = ray.remote(num_cpus=0, runtime_env={"env_vars": {"PYTHONPATH": PROJECT_ROOT}})(
        _build_and_deploy
    )
    build = deploy.remote(builder, name, route, args or {})
    try:
        ray.get(build, timeout=timeout)
    except ray.exceptions.RayTaskError as exc:  # the builder's or Serve's own error
        raise exc.cause from None
    except BaseException:  # timed out or interrupted: it must not deploy behind our back
        ray.cancel(build, force=True)
        raise
    deadline = time.monotonic() + timeout
    time.sleep(0.5)  # let the controller take the new target before reading its status
    while True:
        app_status = serve.status().applications.get(name)
        status = _value(app_status.status) if app_status else "NOT_STARTED"
        if status == "RUNNING":
            return base + route
        if status == "DEPLOY_FAILED" or time.monotonic() > deadline:
            raise ClusterError(f"Serve could not deploy {name} ({status}): {_why(app_status)}")
        time.sleep(0.5)


def _build_and_deploy(builder: str, name: str, route: str, args: dict[str, Any]) -> None:
    """On the cluster (a Ray task): build the application and hand it to Serve, without
    waiting for it to run."""
    import importlib

    from ray import serve

    module, _, function = builder.partition(":")
    app = getattr(importlib.import_module(module), function)(**args)
    target = serve.RunTarget(target=app, name=name, route_prefix=route)
    serve.run_many([target], wait_for_applications_running=False)


def _why(app_status: Any) -> str:
    """Serve's message for an application, with each failing deployment's own reason (the
    last line of its replica's traceback: the exception itself)."""
    if app_status is None:
        return "Serve never saw the application"
    reasons = [app_status.message]
    for deployment in app_status.deployments.values():
        lines = [line.strip() for line in (deployment.message or "").splitlines() if line.strip()]
        if lines and _value(deployment.status) != "HEALTHY":
            reasons.append(lines[-1][:500])
    return " ".join(r for r in reasons if r)


def serve_delete(info: ClusterInfo, name: str) -> None:
    """Delete application ``name`` from Serve."""
    connect(info)
    from ray import serve

    serve.delete(name)


def serve_applications(info: ClusterInfo) -> dict[str, dict[str, Any]]:
    """Application name -> status, message and replica states, as Serve reports them."""
    connect(info)
    from ray import serve
    from ray.serve.context import _get_global_client

    if _get_global_client(raise_if_no_controller_running=False) is None:
        return {}
    out = {}
    for name, app in serve.status().applications.items():
        replicas: dict[str, int] = {}
        for deployment in app.deployments.values():
            for state, count in deployment.replica_states.items():
                replicas[_value(state)] = replicas.get(_value(state), 0) + count
        out[name] = {"status": _value(app.status), "message": app.message, "replicas": replicas}
    return out


def _value(state: Any) -> str:
    """An enum's value (Serve's statuses are str enums whose str() is 'Class.NAME')."""
    return str(getattr(state, "value", state))
