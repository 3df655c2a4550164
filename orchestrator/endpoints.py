"""Endpoints: registered model versions served on Ray Serve, following their aliases.

The registry is the record (a ``deployments`` row per endpoint: version, alias, route, URL,
replicas, options, status); Ray Serve runs it (one application per model, route
``/models/NAME``). Moving an alias that an endpoint follows rolls the endpoint to the new
version in place. ``predict`` is a plain HTTP client of the endpoint.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import ClusterError, EndpointError, OrchestratorError, UsageError
from orchestrator.model_import import check_safetensors
from orchestrator.ray_client.cluster_info import ClusterInfo
from orchestrator.ray_client.connection import resolve_cluster
from orchestrator.ray_client.serve import run_app, serve_applications, serve_delete
from orchestrator.registry import Registry, store
from orchestrator.registry.models import DeploymentStatus, ModelVersion
from orchestrator.specs.names import parse_versioned
from orchestrator.specs.serving import (
    INDEX_APP,
    INDEX_APP_BUILDER,
    MODEL_APP_BUILDER,
    ServeOptions,
    entailment_id,
    servable_tasks,
)
from orchestrator.specs.vocabulary import ENDPOINT_TASKS

ROUTE_PREFIX = "/models"


def model_config(version: ModelVersion) -> dict[str, Any]:
    """What a replica needs to load one version (the deployment's ``user_config``)."""
    return {
        "path": version.artifact_uri,
        "ref": f"{version.model.name}:{version.version}",
        "model_version_id": version.id,
    }


def check_servable(version: ModelVersion, task: str) -> None:
    """Refuse before deploying what a replica could not load or answer."""
    folder = Path(version.artifact_uri)
    ref = f"{version.model.name}:{version.version}"
    if not folder.is_dir():
        raise UsageError(f"the files of {ref} are missing: {folder} does not exist")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        raise UsageError(f"{ref}: {folder} holds no .safetensors weights (only those are loaded)")
    for path in weights:
        try:
            check_safetensors(path)
        except UsageError as exc:
            raise UsageError(f"{ref}: {exc}") from None
    allowed = servable_tasks(version.task)
    if task not in allowed:
        raise UsageError(
            f"{ref} is a {version.task} model; it can be served as {', '.join(allowed)}, not {task}"
        )
    if task == "zero-shot-classification":
        label2id = _config(folder).get("label2id") or {}
        if entailment_id(label2id) is None:
            raise UsageError(
                f"{ref} cannot serve zero-shot-classification: its labels "
                f"({', '.join(label2id) or 'none'}) have no entailment class; zero-shot "
                "classification needs a model trained on natural language inference (labels "
                "such as entailment, neutral, contradiction)"
            )


def _config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{folder / 'config.json'} cannot be read: {exc}") from None
    return config if isinstance(config, dict) else {}


def deploy(
    settings: Settings, registry: Registry, ref: str, by: str | None = None, **flags: Any
) -> str:
    """Serve NAME[:VERSION|@ALIAS] at /models/NAME (a new endpoint, or an update of it);
    returns its URL. Updating a live endpoint keeps every option not given here, its API key
    included (``no_api_key=True`` drops the key)."""
    name, number, alias = parse_versioned(ref, "model name")
    if name == INDEX_APP:
        raise UsageError(f"model name: {INDEX_APP} is reserved for the /models index")
    flags = {k: v for k, v in flags.items() if v is not None}  # None: not given
    api_key = flags.pop("api_key", None) or settings.serve_api_key
    no_api_key = flags.pop("no_api_key", False)
    if api_key and no_api_key:
        raise UsageError("give an API key or --no-api-key, not both")
    with registry.session() as session:
        version = store.get_model_version(session, name, number, alias)
        running = store.live_deployment(session, name)
        current = dict(running.options or {}) if running else {}
        fresh = running is None or not running.url  # nothing of it was ever up
        task = flags.pop("task", None) or current.get("task") or version.task
        if task not in ENDPOINT_TASKS:
            raise UsageError(f"task must be one of {', '.join(ENDPOINT_TASKS)}, not {task}")
        check_servable(version, task)
        if "replicas" in flags:
            current.pop("autoscale", None)
        if "autoscale" in flags:
            current.pop("replicas", None)
        if api_key or no_api_key:
            current.pop("api_key_sha256", None)
        options = serve_options(task, api_key, {**current, **flags})
        config = model_config(version)
        store.save_deployment(
            session,
            name,
            # an update keeps naming the version it serves until the new one is up
            **({"model_version_id": version.id} if fresh else {}),
            alias=alias,
            route=f"{ROUTE_PREFIX}/{name}",
            replicas=options.replicas,
            autoscaling=_autoscaling(options),
            status=DeploymentStatus.DEPLOYING,
            task=task,
            options=options.model_dump(),
            message=f"deploying {config['ref']}",
            **({"created_by": by} if by else {}),
        )
    return _run(settings, registry, name, options, config, new=fresh)


def serve_options(task: str, api_key: str | None, flags: dict[str, Any]) -> ServeOptions:
    from pydantic import ValidationError

    try:
        fields = {k: v for k, v in flags.items() if v is not None and k != "task"}
        if api_key:
            fields["api_key_sha256"] = hashlib.sha256(api_key.encode()).hexdigest()
        return ServeOptions(task=task, **fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors()
        )
        raise UsageError(f"bad serving options: {problems}") from None


def _autoscaling(options: ServeOptions) -> dict[str, int] | None:
    if not options.autoscale:
        return None
    return {"min_replicas": options.autoscale[0], "max_replicas": options.autoscale[1]}


def _run(
    settings: Settings,
    registry: Registry,
    name: str,
    options: ServeOptions,
    config: dict[str, Any],
    new: bool = False,
) -> str:
    """Deploy on Serve and record the outcome (RUNNING with its URL, or FAILED and why).
    A ``new`` endpoint that fails is removed from Serve (nothing keeps retrying it); an
    update that fails leaves the application as Serve keeps it (its earlier replicas)."""
    info = None
    try:
        info = resolve_cluster(settings, start=True)
        # The applications are built on the cluster from their builders' import paths (this
        # process imports no Serve deployment); each call connects before importing Ray Serve.
        if INDEX_APP not in serve_applications(info):
            run_app(settings, info, INDEX_APP, ROUTE_PREFIX, INDEX_APP_BUILDER)
        route = f"{ROUTE_PREFIX}/{name}"
        args = {"name": name, "options": options.model_dump(), "model": config}
        url = run_app(settings, info, name, route, MODEL_APP_BUILDER, args)
    except BaseException as exc:  # Ctrl-C too: the row must not stay DEPLOYING
        why = str(exc) or type(exc).__name__
        if new and info is not None:
            _remove_quietly(info, name)
        with registry.session() as session:
            store.save_deployment(
                session, name, status=DeploymentStatus.FAILED, message=f"{config['ref']}: {why}"
            )
        if isinstance(exc, OrchestratorError) or not isinstance(exc, Exception):
            raise
        raise ClusterError(f"serving {config['ref']} failed: {exc}") from exc
    with registry.session() as session:
        store.save_deployment(
            session,
            name,
            model_version_id=config["model_version_id"],
            status=DeploymentStatus.RUNNING,
            url=url,
            cluster=info.gcs_address,
            message=f"serving {config['ref']}",
        )
    return url


def _remove_quietly(info: ClusterInfo, name: str) -> None:
    try:
        if name in serve_applications(info):
            serve_delete(info, name)
    except Exception:  # noqa: BLE001 - the deploy's own error is the one to report
        pass


def forget_cluster(registry: Registry, gcs_address: str) -> int:
    """Mark the endpoints of a cluster that was stopped as DELETED; returns how many."""
    with registry.session() as session:
        rows = [r for r in store.list_deployments(session) if r.cluster == gcs_address]
        for row in rows:
            store.save_deployment(
                session,
                row.name,
                status=DeploymentStatus.DELETED,
                message="its cluster was stopped",
            )
        return len(rows)


def follow_alias(settings: Settings, registry: Registry, name: str, alias: str) -> list[str]:
    """Roll every live endpoint that follows NAME@ALIAS to the alias's version now.

    Only the model changes (the deployment's user_config), so Serve swaps it inside the
    running replicas and requests keep being answered. Returns what was done."""
    with registry.session() as session:
        row = store.live_deployment(session, name)
        if row is None or row.alias != alias:
            return []
        version = store.get_model_version(session, name, alias=alias)
        if row.model_version_id == version.id and row.status == DeploymentStatus.RUNNING:
            return []
        options, config = ServeOptions.model_validate(row.options), model_config(version)
        before = f"{name}:{row.model_version.version}"
        try:
            check_servable(version, options.task)
        except UsageError as exc:
            return [f"endpoint {name} stays on {before}: {exc}"]
    try:
        _run(settings, registry, name, options, config)
    except ClusterError as exc:
        return [f"endpoint {name} could not follow {name}@{alias}: {exc}"]
    return [f"endpoint {name} rolled from {before} to {config['ref']}"]


def delete(settings: Settings, registry: Registry, name: str) -> str:
    """Stop serving ``name``; its row stays, marked DELETED."""
    with registry.session() as session:
        store.get_deployment(session, name)
    try:
        info = resolve_cluster(settings)
    except ClusterError:  # no local cluster runs: nothing is served any more
        info, message = None, "deleted (its cluster was not running)"
    if info is not None:  # an unreachable cluster raises: its row stays as it is
        if name in serve_applications(info):
            serve_delete(info, name)
        message = "deleted"
    with registry.session() as session:
        store.save_deployment(session, name, status=DeploymentStatus.DELETED, message=message)
    return message


def live_status(settings: Settings, name: str) -> dict[str, Any] | None:
    """What Serve says of the application now (None when no cluster is reachable)."""
    try:
        info = resolve_cluster(settings)
        return serve_applications(info).get(name, {"status": "NOT_SERVED"})
    except ClusterError:
        return None


def predict(
    settings: Settings,
    registry: Registry,
    name: str,
    body_for: Callable[[str], dict[str, Any]],
    api_key: str | None = None,
    timeout: float = 120,
) -> tuple[Any, str | None, str]:
    """POST to endpoint ``name`` the body ``body_for(task)`` builds for the endpoint's task;
    returns (result, the version that answered, the task)."""
    with registry.session() as session:
        row = store.get_deployment(session, name)
        url, status, task = row.url, row.status, row.task
    if not url:  # never came up (a FAILED update still has its earlier replicas' URL)
        raise EndpointError(
            f"endpoint {name} is {status}", hint=f"`orch endpoints show {name}` says why"
        )
    return (*post(url, body_for(task), api_key or settings.serve_api_key, timeout), task)


def post(url: str, body: Any, api_key: str | None, timeout: float) -> tuple[Any, str | None]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {api_key}"} if api_key else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read()), response.headers.get("X-Model-Version")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw).get("error", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace")[:500]
        raise EndpointError(f"{url} answered {exc.code}: {message}", status=exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        raise EndpointError(
            f"{url} does not answer: {getattr(exc, 'reason', exc)}",
            hint="`orch endpoints show NAME` shows what Serve says of it",
        ) from None
