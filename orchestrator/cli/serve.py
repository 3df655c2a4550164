"""`orch serve`, `orch predict` and `orch endpoints list|show|delete`."""

from __future__ import annotations

import json
from typing import Any

import click

from orchestrator.cli.common import (
    address_option,
    emit,
    emit_one,
    format_option,
    info,
    iso,
    registry,
    settings,
)

TASK_CHOICE = click.Choice(["text-classification", "fill-mask", "embeddings"])
api_key_option = click.option(
    "--api-key",
    default=None,
    help="API key (default: the serve_api_key setting, ORCH_SERVE_API_KEY; prefer that: "
    "a flag shows in the process list and shell history).",
)


def _autoscale(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from jobs.specs.serving import parse_autoscale

    if value is None:
        return None
    try:
        return parse_autoscale(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("serve")
@click.argument("ref", metavar="NAME[:VERSION|@ALIAS]")
@click.option("--replicas", type=click.IntRange(min=1), default=None, help="Fixed replicas.")
@click.option(
    "--autoscale",
    callback=_autoscale,
    metavar="MIN:MAX",
    default=None,
    help="Scale between MIN and MAX replicas by ongoing requests.",
)
@click.option("--cpus-per-replica", type=float, default=None, help="Default 1.")
@click.option("--gpus-per-replica", type=float, default=None, help="Default 0.")
@click.option("--task", type=TASK_CHOICE, default=None, help="Default: the model's task.")
@click.option("--max-batch-size", type=int, default=None, help="Requests per batch (32).")
@click.option(
    "--batch-wait-ms",
    type=float,
    default=None,
    help="Longest wait for a batch to fill, under load only (40 on CPU, 5 on GPU).",
)
@click.option(
    "--quantize",
    type=click.Choice(["none", "int8"]),
    default=None,
    help="int8: dynamic int8 linear layers on CPU replicas (2.3x faster MiniLM forward "
    "passes; 3% of SST-2 labels changed).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default=None,
    help="Inference precision; auto: bfloat16 on GPU, float32 on CPU (bfloat16 is faster "
    "on CPUs with AVX512-BF16 or AMX).",
)
@api_key_option
@click.option("--no-api-key", is_flag=True, help="Drop the API key of the running endpoint.")
@address_option
def serve(ref: str, address: str | None, **flags: Any) -> None:
    """Serve a registered model version at /models/NAME on the cluster's Ray Serve.

    With NAME@ALIAS the endpoint follows the alias: `orch models promote` and
    `orch models rollback` roll it to the alias's new version without failing requests.
    Serving NAME again updates its endpoint: options not given keep their current values
    (the API key too, unless --no-api-key).
    """
    from orchestrator import endpoints

    if flags["replicas"] and flags["autoscale"]:
        raise click.UsageError("give --replicas or --autoscale, not both")
    s = settings(cluster_address=address)
    info(f"deploying {ref} ...")
    url = endpoints.deploy(s, registry(s), ref, **flags)
    info(f"serving {ref} at {url}")
    click.echo(url)


@click.command("predict")
@click.argument("name")
@click.argument("texts", nargs=-1, required=True)
@click.option("--pair", "pairs", multiple=True, help="Second sentence (one per text).")
@click.option("--top-k", type=int, default=None, help="Labels or tokens per input.")
@api_key_option
@format_option
def predict(
    name: str,
    texts: tuple[str, ...],
    pairs: tuple[str, ...],
    top_k: int | None,
    api_key: str | None,
    fmt: str,
) -> None:
    """Call endpoint NAME with one or more texts and print its answer."""
    from orchestrator import endpoints

    if pairs and len(pairs) != len(texts):
        raise click.UsageError(f"{len(texts)} text(s) but {len(pairs)} --pair: give one each")
    inputs: list[Any] = (
        [{"text": t, "text_pair": p} for t, p in zip(texts, pairs, strict=True)]
        if pairs
        else list(texts)
    )
    s = settings()
    result, version, task = endpoints.predict(
        s, registry(s), name, inputs, {"top_k": top_k} if top_k is not None else None, api_key
    )
    if fmt == "json":
        click.echo(json.dumps(result))
        return
    emit(prediction_rows(task, texts, result), PREDICTION_COLUMNS[task], fmt)
    info(f"answered by {version}")


PREDICTION_COLUMNS = {
    "text-classification": ["input", "label", "score", "text"],
    "fill-mask": ["input", "token", "score", "sequence"],
    "embeddings": ["input", "dims", "vector", "text"],
}


def prediction_rows(task: str, texts: tuple[str, ...], result: list[Any]) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for i, (text, answer) in enumerate(zip(texts, result, strict=True)):
        if task == "embeddings":
            head = ", ".join(f"{x:.3f}" for x in answer[:4])
            rows.append({"input": i, "dims": len(answer), "vector": f"[{head}, ...]", "text": text})
            continue
        if task == "fill-mask" and answer and isinstance(answer[0], list):
            answer = answer[0]  # several masks: show the first one's candidates
        for item in answer:
            rows.append(
                {
                    "input": i,
                    "label": item.get("label"),
                    "token": item.get("token_str"),
                    "score": f"{item['score']:.4f}",
                    "sequence": item.get("sequence"),
                    "text": text,
                }
            )
    return rows


# --- orch endpoints ---------------------------------------------------------------------------

ENDPOINT_COLUMNS = ["name", "model", "alias", "task", "replicas", "status", "url", "updated_at"]


def endpoint_row(row: Any) -> dict[str, Any]:
    options = row.options or {}
    scale = row.autoscaling
    return {
        "name": row.name,
        "model": f"{row.model_version.model.name}:{row.model_version.version}",
        "alias": row.alias,
        "task": row.task,
        "route": row.route,
        "url": row.url,
        "replicas": f"{scale['min_replicas']}-{scale['max_replicas']}" if scale else row.replicas,
        "status": row.status,
        "message": row.message,
        "api_key": "required" if options.get("api_key_sha256") else "none",
        "options": {k: v for k, v in options.items() if k != "api_key_sha256"},
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


@click.group()
def endpoints() -> None:
    """Served models: list, show, delete."""


@endpoints.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deleted endpoints.")
@format_option
def list_endpoints(show_all: bool, fmt: str) -> None:
    """Endpoints as the registry records them."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        rows = [endpoint_row(r) for r in store.list_deployments(session, show_all)]
    emit(rows, ENDPOINT_COLUMNS, fmt)


@endpoints.command("show")
@click.argument("name")
@format_option
def show(name: str, fmt: str) -> None:
    """One endpoint: the registry's record and what Serve says of it now."""
    from orchestrator import endpoints as control
    from orchestrator.registry import store

    s = settings()
    with registry(s).session() as session:
        out = endpoint_row(store.get_deployment(session, name))
    out["serve"] = control.live_status(s, name) or "no cluster reachable"
    emit_one(out, fmt)


@endpoints.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Stop serving NAME (the registry keeps its row, marked DELETED)."""
    from orchestrator import endpoints as control

    s = settings()
    info(f"endpoint {name}: {control.delete(s, registry(s), name)}")
