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

# jobs.specs.serving.TASKS, spelt out: `orch --help` imports nothing beyond click
TASK_CHOICE = click.Choice(
    [
        "text-classification",
        "token-classification",
        "question-answering",
        "zero-shot-classification",
        "fill-mask",
        "feature-extraction",
        "embeddings",
    ]
)
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
@click.argument("texts", nargs=-1)
@click.option("--pair", "pairs", multiple=True, help="Second sentence (one per text).")
@click.option(
    "--question", "questions", multiple=True, help="question-answering: a question (repeat)."
)
@click.option(
    "--context",
    "contexts",
    multiple=True,
    help="question-answering: the text to answer from (one per question, or one for all).",
)
@click.option(
    "--labels",
    default=None,
    metavar="A,B,...",
    help="zero-shot-classification: the candidate labels, comma-separated.",
)
@click.option(
    "--template",
    default=None,
    help='zero-shot-classification: the hypothesis, with {} for a label ("This example is {}.").',
)
@click.option(
    "--multi-label", is_flag=True, help="zero-shot-classification: score each label on its own."
)
@click.option(
    "--aggregation",
    type=click.Choice(["none", "simple", "first", "average", "max"]),
    default=None,
    help="token-classification: how word pieces become entities (default simple).",
)
@click.option("--top-k", type=int, default=None, help="Labels, tokens or answers per input.")
@api_key_option
@format_option
def predict(name: str, api_key: str | None, fmt: str, **given: Any) -> None:
    """Call endpoint NAME and print its answer, whatever its task:

    \b
      orch predict sst2 "a gorgeous movie" "a dull plot"
      orch predict mrpc "He left." --pair "He went away."
      orch predict ner "Ada Lovelace lived in London" --aggregation simple
      orch predict qa --question "Where did she live?" --context "Ada lived in London."
      orch predict nli "The match went to extra time" --labels sport,politics,cooking
      orch predict mlm "paris is the [MASK] of france" --top-k 3
    """
    from orchestrator import endpoints

    s = settings()
    result, version, task = endpoints.predict(
        s, registry(s), name, lambda task: request_body(task, given), api_key
    )
    if fmt == "json":
        click.echo(json.dumps(result))
        return
    shown = given["texts"] or given["questions"]
    rows = prediction_rows(task, result)
    for row in rows:  # what each answer is for, beside it
        row["text"] = shown[row["input"]] if row["input"] < len(shown) else None
    emit(rows, PREDICTION_COLUMNS[task], fmt)
    info(f"answered by {version}")


def request_body(task: str, given: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's request for the command-line options, checked against its task."""
    texts, pairs = list(given["texts"]), list(given["pairs"])
    questions, contexts = list(given["questions"]), list(given["contexts"])
    used = {k for k, v in given.items() if v not in (None, (), False)}
    allowed = {"texts", *TASK_OPTIONS.get(task, ())}
    extra = sorted(used - allowed)
    if extra:
        flags = ", ".join("--" + OPTION_FLAGS.get(k, k).replace("_", "-") for k in extra)
        raise click.UsageError(f"{flags}: not for a {task} endpoint")
    params: dict[str, Any] = {}
    if given["top_k"] is not None:
        params["top_k"] = given["top_k"]
    if task == "question-answering":
        if texts or not questions or not contexts:
            raise click.UsageError(
                "a question-answering endpoint takes --question Q --context C (no TEXTS)"
            )
        if len(contexts) == 1:
            contexts = contexts * len(questions)
        if len(contexts) != len(questions):
            raise click.UsageError(
                f"{len(questions)} --question but {len(contexts)} --context: give one each, "
                "or one context for all"
            )
        inputs: list[Any] = [
            {"question": q, "context": c} for q, c in zip(questions, contexts, strict=True)
        ]
        return {"inputs": inputs, **({"parameters": params} if params else {})}
    if not texts:
        raise click.UsageError(f"give the text(s) for the {task} endpoint")
    if pairs and len(pairs) != len(texts):
        raise click.UsageError(f"{len(texts)} text(s) but {len(pairs)} --pair: give one each")
    inputs = (
        [{"text": t, "text_pair": p} for t, p in zip(texts, pairs, strict=True)] if pairs else texts
    )
    if task == "zero-shot-classification":
        labels = [x.strip() for x in (given["labels"] or "").split(",") if x.strip()]
        if not labels:
            raise click.UsageError("a zero-shot-classification endpoint needs --labels A,B,...")
        params["candidate_labels"] = labels
        if given["template"]:
            params["hypothesis_template"] = given["template"]
        if given["multi_label"]:
            params["multi_label"] = True
    if task == "token-classification" and given["aggregation"]:
        params["aggregation_strategy"] = given["aggregation"]
    return {"inputs": inputs, **({"parameters": params} if params else {})}


# the options (besides TEXTS) each task takes
TASK_OPTIONS = {
    "text-classification": ("pairs", "top_k"),
    "fill-mask": ("top_k",),
    "token-classification": ("aggregation",),
    "question-answering": ("questions", "contexts", "top_k"),
    "zero-shot-classification": ("labels", "template", "multi_label"),
}
OPTION_FLAGS = {"pairs": "pair", "questions": "question", "contexts": "context"}

PREDICTION_COLUMNS = {
    "text-classification": ["input", "label", "score", "text"],
    "fill-mask": ["input", "token", "score", "sequence"],
    "embeddings": ["input", "dims", "vector", "text"],
    "feature-extraction": ["input", "tokens", "dims", "first_token", "text"],
    "token-classification": ["input", "entity", "word", "score", "start", "end"],
    "question-answering": ["input", "answer", "score", "start", "end", "text"],
    "zero-shot-classification": ["input", "label", "score", "sequence"],
}


def _head(vector: list[float]) -> str:
    return "[" + ", ".join(f"{x:.3f}" for x in vector[:4]) + ", ...]"


def prediction_rows(task: str, result: list[Any]) -> list[dict[str, Any]]:
    """One table row per label, token, entity or answer of each input."""
    rows: list[dict[str, Any]] = []
    for i, answer in enumerate(result):
        if task == "embeddings":
            rows.append({"input": i, "dims": len(answer), "vector": _head(answer)})
            continue
        if task == "feature-extraction":
            tokens = answer[0] if answer and isinstance(answer[0][0], list) else answer
            rows.append(
                {
                    "input": i,
                    "tokens": len(tokens),
                    "dims": len(tokens[0]),
                    "first_token": _head(tokens[0]),
                }
            )
            continue
        if task == "zero-shot-classification":
            for label, score in zip(answer["labels"], answer["scores"], strict=True):
                rows.append(
                    {
                        "input": i,
                        "label": label,
                        "score": f"{score:.4f}",
                        "sequence": answer["sequence"],
                    }
                )
            continue
        if isinstance(answer, dict):  # one question-answering answer
            answer = [answer]
        if task == "fill-mask" and answer and isinstance(answer[0], list):
            answer = answer[0]  # several masks: show the first one's candidates
        for item in answer:
            rows.append(
                {
                    "input": i,
                    "label": item.get("label"),
                    "token": item.get("token_str"),
                    "entity": item.get("entity_group") or item.get("entity"),
                    "word": item.get("word"),
                    "answer": item.get("answer"),
                    "start": item.get("start"),
                    "end": item.get("end"),
                    "score": f"{item['score']:.4f}",
                    "sequence": item.get("sequence"),
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
