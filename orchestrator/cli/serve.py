"""`orch serve`, `orch predict` and `orch endpoints list|show|delete`."""

from __future__ import annotations

import json
from typing import Any

import click

from orchestrator.cli.common import api, emit, emit_one, format_option, info, settings
from orchestrator.specs.vocabulary import ENDPOINT_TASKS

TASK_CHOICE = click.Choice(ENDPOINT_TASKS)
api_key_option = click.option(
    "--api-key",
    default=None,
    help="API key (default: the serve_api_key setting, ORCH_SERVE_API_KEY; prefer that: "
    "a flag shows in the process list and shell history).",
)


def _autoscale(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    from orchestrator.specs.serving import parse_autoscale

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
    help="int8: dynamic int8 linear layers on CPU replicas (faster forward passes; some "
    "labels change: see docs/benchmarks.md).",
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
def serve(ref: str, **flags: Any) -> None:
    """Serve a registered model version at /models/NAME on the cluster's Ray Serve.

    With NAME@ALIAS the endpoint follows the alias: `orch models promote` and
    `orch models rollback` roll it to the alias's new version without failing requests.
    Serving NAME again updates its endpoint: options not given keep their current values
    (the API key too, unless --no-api-key).
    """
    if flags["replicas"] and flags["autoscale"]:
        raise click.UsageError("give --replicas or --autoscale, not both")
    body = {"ref": ref, **flags}
    body["api_key"] = flags["api_key"] or settings().serve_api_key
    if flags["autoscale"] is not None:
        low, high = flags["autoscale"]
        body["autoscale"] = {"min_replicas": low, "max_replicas": high}
    info(f"deploying {ref} ...")
    answer = api().post("/api/endpoints", body)
    info(f"serving {ref} at {answer['url']}")
    click.echo(answer["url"])


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
    from urllib.parse import quote

    server = api()
    path = f"/api/endpoints/{quote(name, safe='')}"
    task = server.get(path, live="false")["task"]
    answer = server.post(
        f"{path}/predict",
        {"body": request_body(task, given), "api_key": api_key or settings().serve_api_key},
    )
    result, version = answer["result"], answer["version"]
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


@click.group()
def endpoints() -> None:
    """Served models: list, show, delete."""


@endpoints.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deleted endpoints.")
@format_option
def list_endpoints(show_all: bool, fmt: str) -> None:
    """Endpoints as the registry records them."""
    emit(api().get("/api/endpoints", all=show_all or None), ENDPOINT_COLUMNS, fmt)


@endpoints.command("show")
@click.argument("name")
@format_option
def show(name: str, fmt: str) -> None:
    """One endpoint: the registry's record and what Serve says of it now."""
    from urllib.parse import quote

    emit_one(api().get(f"/api/endpoints/{quote(name, safe='')}"), fmt)


@endpoints.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Stop serving NAME (the registry keeps its row, marked DELETED)."""
    from urllib.parse import quote

    answer = api().delete(f"/api/endpoints/{quote(name, safe='')}")
    info(f"endpoint {name}: {answer['outcome']}")
