"""Tokenisation benchmark: Ray Data streaming (our pipeline) against `datasets.map(batched=True)`,
in one run, with the same tokenizer, truncation (128) and no padding, at 1x and 4x the
Gutenberg training text (21 MB, 82k paragraphs per copy), on this machine.

    python -m bench.tokenization [--sizes 1 4]                  # or: make bench

Ours is the shipped pipeline (`jobs.data.pipeline`: `read_files`, then `tokenize`) with the
bench's settings: two tokenizer actors of 0.75 CPU, batches of 1024 rows; its time includes
the checks the jobs make before reading (UTF-8, fingerprint). Reports tokens/s and peak
memory of each. `datasets.map` writes an Arrow cache the size of
the tokenised corpus; Ray Data streams blocks through a bounded object store and keeps
nothing (each side's peak RSS covers every process it uses).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHARED, PeakMemory, machine, private_cluster, save, table

CORPUS = SHARED / "gutenberg_en" / "train.txt"
MAX_LENGTH = 128
ACTORS, BATCH_ROWS = 2, 1024  # the tokenizer pool: 2 actors of 0.75 CPU, 1024 rows a batch


def corpus_copies(n: int, folder: Path) -> list[str]:
    """n copies as n files (Ray Data reads files in parallel; datasets gets the same files)."""
    paths = []
    for i in range(n):
        path = folder / f"part{i}.txt"
        if not path.exists():
            path.symlink_to(CORPUS)
        paths.append(str(path))
    return paths


DATASETS_MAP = (
    """
import json, resource, sys, time
from datasets import load_dataset
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1])
files = sys.argv[3:]
t = time.perf_counter()
ds = load_dataset("text", data_files=files, split="train", cache_dir=sys.argv[2])
ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=%d), batched=True,
            remove_columns=["text"])
tokens = sum(len(x) for x in ds["input_ids"])
print("RESULT " + json.dumps({"tokens": tokens, "seconds": time.perf_counter() - t,
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
    % MAX_LENGTH
)


def with_datasets(tokenizer_dir: str, files: list[str]) -> dict:
    cache = tempfile.mkdtemp(prefix="hf-cache-")
    proc = subprocess.run(
        [sys.executable, "-c", DATASETS_MAP, tokenizer_dir, cache, *files],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    out["cache_mb"] = sum(f.stat().st_size for f in Path(cache).rglob("*") if f.is_file()) / 2**20
    return out


def with_ray_data(tokenizer_dir: str, files: list[str]) -> dict:
    """Our pipeline, as the jobs run it: read_files (read_text) -> tokenize (an actor pool),
    consumed as a stream."""
    import ray

    from jobs.data.streaming import READ_CPUS, read_files
    from jobs.data.tabular import tokenize
    from orchestrator.specs.training import Files

    ray.data.DataContext.get_current().enable_progress_bars = False
    with PeakMemory(
        interval=0.2, markers=("MapWorker", "ReadText", "MapBatches"), include_self=True
    ) as memory:
        t = time.perf_counter()
        text, _fingerprint, _names = read_files(Files(files=files, format="text"), "train")
        ds = tokenize(
            text,
            tokenizer_dir,
            MAX_LENGTH,
            columns={"text": "text"},
            label2id=None,
            data_cpus=READ_CPUS + ACTORS * 0.75,
            batch_size=BATCH_ROWS,
            actors=ACTORS,
        )
        tokens = sum(
            len(ids)
            for batch in ds.iter_batches(batch_size=4096, batch_format="numpy")
            for ids in batch["input_ids"]
        )
        seconds = time.perf_counter() - t
    return {
        "tokens": tokens,
        "seconds": seconds,
        "peak_rss_mb": memory.peak / 2**20,
        "cache_mb": 0.0,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 4])
    args = p.parse_args()
    from bench.common import run_job
    from orchestrator.registry import store

    folder = Path(tempfile.mkdtemp(prefix="tok-bench-"))
    results = []
    with private_cluster(num_cpus=2) as (_settings, registry):
        run_job(
            registry,
            {
                "kind": "tokenizer",
                "name": "bench-tok",
                "tokenizer": {"vocab_size": 8000},
                "data": {"files": [str(CORPUS)], "max_lines": 20000},
            },
        )
        with registry.session() as s:
            tokenizer_dir = store.get_tokenizer(s, "bench-tok").artifact_uri
        for n in args.sizes:
            files = corpus_copies(n, folder)
            for name, fn in (("datasets.map", with_datasets), ("ray-data-stream", with_ray_data)):
                print(f"{n}x {name} ...", file=sys.stderr)
                r = fn(tokenizer_dir, files)
                r.update(size=f"{n}x", pipeline=name, tokens_per_s=r["tokens"] / r["seconds"])
                results.append(r)
    for r in results:
        ref = next(x for x in results if x["size"] == r["size"] and x["pipeline"] == "datasets.map")
        r["x_datasets_map"] = r["tokens_per_s"] / ref["tokens_per_s"]
    print(
        f"\ntokenising Gutenberg (WordPiece 8k, truncation {MAX_LENGTH}, no padding); {machine()}"
    )
    print(
        table(
            results,
            [
                "size",
                "pipeline",
                "tokens",
                "seconds",
                "tokens_per_s",
                "x_datasets_map",
                "peak_rss_mb",
                "cache_mb",
            ],
        )
    )
    print(
        f"saved {save('tokenization', {'args': vars(args), 'machine': machine(), 'results': results})}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
