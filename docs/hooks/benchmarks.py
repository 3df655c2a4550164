"""MkDocs hook: the benchmark tables are generated from ``bench/results/*.json``, the files the
benchmarks write, so a table always shows the figures of its last run, with the command,
date, commit and machine that measured them.

A page holds ``<!-- bench:NAME -->``, replaced by the provenance of
``bench/results/NAME.json`` and a table of its rows (the columns below). A missing file or
field fails the build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
MARKER = re.compile(r"^<!-- bench:(\w+) -->$", re.MULTILINE)

Column = tuple[str, Callable[[dict[str, Any]], str]]


def on_page_markdown(markdown: str, **_: Any) -> str:
    return MARKER.sub(lambda m: render(m.group(1)), markdown)


def render(name: str) -> str:
    data = json.loads((RESULTS / f"{name}.json").read_text())
    rows_of, columns = BENCHES[name]
    rows = rows_of(data)
    head = "| " + " | ".join(title for title, _ in columns) + " |"
    lines = [head, "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row) for _, cell in columns) + " |" for row in rows]
    return provenance(data, name) + "\n\n" + "\n".join(lines) + "\n"


def provenance(data: dict[str, Any], name: str) -> str:
    return (
        f"Measured with `{data['command']}` on {data['date']}, commit `{data['commit']}`, "
        f"on {data['machine']}. Raw figures: `bench/results/{name}.json`."
    )


# --- formatting --------------------------------------------------------------------------------


def num(key: str, digits: int = 1, suffix: str = "") -> Callable[[dict[str, Any]], str]:
    def cell(row: dict[str, Any]) -> str:
        value = row.get(key)
        return "-" if value is None else f"{value:,.{digits}f}{suffix}"

    return cell


def ratio(key: str) -> Callable[[dict[str, Any]], str]:
    return num(key, 2, "x")


def text(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: str(row.get(key, "-"))


def whole(rows: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda data: data[rows]


def one(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [data]


def startup_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"job": i + 1, **run} for i, run in enumerate(data["runs"])]


def quality_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    row = {"model": data["model"], "steps": data["steps"], "minutes": data["wall_minutes"]}
    for split in ("dev", "test"):
        for key, value in (data.get(split) or {}).items():
            if isinstance(value, int | float):
                row[f"{split} {key}"] = value
    return [row]


RECIPES = {
    "hf-tutorial": "HF tutorial (`padding=True` in `map`)",
    "hf-dynamic": "HF `Trainer` + `DataCollatorWithPadding`",
    "ours": "**ours** (defaults)",
    "ours-no-grouping": "ours, `group_by_length: false`",
}


def recipe(row: dict[str, Any]) -> str:
    return RECIPES.get(row["recipe"], row["recipe"])


BENCHES: dict[str, tuple[Callable[[dict[str, Any]], list[dict[str, Any]]], list[Column]]] = {
    "finetune": (
        whole("results"),
        [
            ("recipe", recipe),
            ("steady samples/s", num("samples_per_s_steady")),
            ("x tutorial", ratio("steady_x_tutorial")),
            ("x dynamic", ratio("steady_x_dynamic")),
            ("end-to-end samples/s", num("samples_per_s_end_to_end")),
            ("e2e x dynamic", ratio("e2e_x_dynamic")),
            ("submit to first step (s)", num("first_step_s")),
            ("peak RSS (MB)", num("peak_rss_mb", 0)),
            ("RSS x dynamic", ratio("rss_x_dynamic")),
            ("dev accuracy", num("dev_accuracy", 3)),
        ],
    ),
    "startup": (
        startup_rows,
        [
            ("job", text("job")),
            ("admitted (s)", num("STARTING", 2)),
            ("driver running (s)", num("RUNNING", 2)),
            ("first step (s)", num("first step", 2)),
        ],
    ),
    "pretrain": (
        whole("results"),
        [
            ("budget", text("budget")),
            ("recipe", recipe),
            ("steps", text("steps")),
            ("real tokens/s", num("real_tokens_per_s_steady", 0)),
            ("val. perplexity", num("val_perplexity", 0)),
            ("peak RSS (MB)", num("peak_rss_mb", 0)),
        ],
    ),
    "tokenization": (
        whole("results"),
        [
            ("size", text("size")),
            ("pipeline", text("pipeline")),
            ("tokens/s", num("tokens_per_s", 0)),
            ("x datasets.map", ratio("x_datasets_map")),
            ("peak RSS (MB)", num("peak_rss_mb", 0)),
            ("on-disk cache (MB)", num("cache_mb", 0)),
        ],
    ),
    "serve": (
        whole("rows"),
        [
            ("server", text("server")),
            ("concurrency", text("concurrency")),
            ("requests/s", num("req_per_s")),
            ("p50 ms", num("p50_ms", 0)),
            ("p99 ms", num("p99_ms", 0)),
            ("errors", text("errors")),
            ("dev accuracy", num("dev_accuracy", 3)),
            ("same label", num("same_label", 3)),
        ],
    ),
    "sst2_full": (
        one,
        [
            ("dev accuracy", num("dev_accuracy", 4)),
            ("dev f1", num("dev_f1", 4)),
            ("steps", text("steps")),
            ("minutes, submit to registered", num("wall_minutes")),
            ("peak RSS (MB)", num("peak_rss_mb", 0)),
        ],
    ),
    "quality_mrpc": (
        quality_rows,
        [
            ("model", text("model")),
            ("dev f1", num("dev f1", 3)),
            ("dev accuracy", num("dev accuracy", 3)),
            ("steps", text("steps")),
            ("minutes", num("minutes")),
        ],
    ),
    "quality_wnut17": (
        quality_rows,
        [
            ("model", text("model")),
            ("test entity f1", num("test f1", 3)),
            ("test precision", num("test precision", 3)),
            ("test recall", num("test recall", 3)),
            ("dev entity f1", num("dev f1", 3)),
            ("steps", text("steps")),
            ("minutes", num("minutes")),
        ],
    ),
    "storm": (
        one,
        [
            ("submits", text("submits")),
            ("exit 0", text("exit_0")),
            ("tracebacks", text("tracebacks")),
            ("distinct ids", text("distinct_ids")),
            ("succeeded", text("succeeded")),
            ("all submits answered (s)", num("submit_wall_s")),
            ("last job done (s)", num("all_done_wall_s")),
            ("peak DB connections", text("peak_db_connections")),
        ],
    ),
}
