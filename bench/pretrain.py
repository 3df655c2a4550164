"""Masked-LM pretraining benchmark: our `pretrain` job against the tutorials' recipe, in one
run, with the same WordPiece tokenizer, DistilBERT size, Gutenberg rows, batch and learning
rate, on this machine.

    python -m bench.pretrain [--steps 300] [--seconds 120]     # or: make bench

The tutorial recipe pads in `datasets.map(padding=True)` (each map batch to its longest row);
ours streams tokenisation through Ray Data and pads each training batch. Both models are
scored by the same code on the same held-out books (validation.txt, fixed masking seed):
real (non-padding) tokens/s, and validation perplexity at equal steps and at equal wall time.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile

from bench.common import SHARED, machine, private_cluster, run_baseline, run_job, save, table

ARCH = {"layers": 2, "hidden": 128, "heads": 2}
BATCH, LR, MAX_LENGTH, ROWS = 16, 5e-4, 128, 40_000
CORPUS = SHARED / "gutenberg_en"


def perplexity(model_dir: str, lines: int = 600) -> float:
    """Masked-LM perplexity on held-out books; the same masks for every model."""
    import torch
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
    )

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForMaskedLM.from_pretrained(model_dir, use_safetensors=True).eval()
    texts = [t for t in (CORPUS / "validation.txt").read_text().splitlines() if t.strip()][:lines]
    rows = [
        {"input_ids": ids}
        for ids in tok(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    ]
    collate = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    torch.manual_seed(1234)
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(rows), 32):
            batch = collate(rows[i : i + 32])
            masked = int((batch["labels"] != -100).sum())
            total += float(model(**batch).loss) * masked
            count += masked
    return math.exp(total / count)


def ours(registry, tokenizer: str, steps: int, seconds: float | None, name: str) -> dict:  # noqa: ANN001
    from bench.common import PeakMemory
    from orchestrator.registry import store

    train = {
        "max_steps": steps,
        "batch_size": BATCH,
        "lr": LR,
        "logging_steps": 10,
        "eval_steps": steps,
        "keep_checkpoints": 1,
        "eval_batch_size": 64,
    }
    if seconds:
        train["max_seconds"] = seconds
    spec = {
        "kind": "pretrain",
        "name": name,
        "tokenizer": tokenizer,
        "model": {**ARCH, "intermediate": ARCH["hidden"] * 4, "max_positions": MAX_LENGTH},
        "data": {
            "train": {"files": [str(CORPUS / "train.txt")]},
            "eval": {"files": [str(CORPUS / "validation.txt")]},
            "max_rows": ROWS,
            "max_length": MAX_LENGTH,
        },
        "train": train,
        "scaling": {"num_workers": 1, "cpus_per_worker": 2, "data_cpus": 1},
    }
    with PeakMemory() as memory:
        job_id, _, wall = run_job(registry, spec)
    with registry.session() as s:
        version = store.get_model_version(s, name)
        rates = [
            m.value for m in store.job_metrics(s, job_id, "tokens_per_s") if m.split == "train"
        ]
    return {
        "recipe": "ours",
        "real_tokens_per_s_steady": statistics.mean(rates[1:] or rates),
        "steps": version.metrics["global_step"],
        "peak_rss_mb": memory.peak / 2**20,
        "model_dir": version.artifact_uri,
        "wall_s": wall,
    }


def tutorial(tokenizer_dir: str, steps: int, seconds: float | None) -> dict:
    args = [
        "pretrain",
        "--tokenizer",
        tokenizer_dir,
        "--train",
        str(CORPUS / "train.txt"),
        "--out",
        tempfile.mkdtemp(),
        "--rows",
        str(ROWS),
        "--steps",
        str(steps),
        "--batch",
        str(BATCH),
        "--lr",
        str(LR),
        "--max-length",
        str(MAX_LENGTH),
        "--layers",
        str(ARCH["layers"]),
        "--hidden",
        str(ARCH["hidden"]),
        "--heads",
        str(ARCH["heads"]),
    ]
    return run_baseline(args + (["--max-seconds", str(seconds)] if seconds else []))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=300, help="steps of the equal-steps runs")
    p.add_argument(
        "--seconds", type=float, default=120, help="training time of the equal-wall-time runs"
    )
    args = p.parse_args()
    from orchestrator.registry import store

    results = []
    with private_cluster(num_cpus=3) as (_settings, registry):
        print("training the shared WordPiece tokenizer ...", file=sys.stderr)
        run_job(
            registry,
            {
                "kind": "tokenizer",
                "name": "bench-wp",
                "tokenizer": {"vocab_size": 8000},
                "data": {"files": [str(CORPUS / "train.txt")]},
            },
        )
        with registry.session() as s:
            tokenizer_dir = store.get_tokenizer(s, "bench-wp").artifact_uri
        for budget, steps, seconds in (
            ("equal steps", args.steps, None),
            ("equal wall time", 100_000, args.seconds),
        ):
            print(f"[{budget}] hf-tutorial ...", file=sys.stderr)
            hf = tutorial(tokenizer_dir, steps, seconds)
            print(f"[{budget}] ours ...", file=sys.stderr)
            mine = ours(
                registry,
                "bench-wp",
                steps,
                seconds,
                f"bench-mlm-{'steps' if seconds is None else 'time'}",
            )
            for r in (hf, mine):
                r["budget"] = budget
                r["val_perplexity"] = perplexity(r["model_dir"])
                results.append(r)
    columns = [
        "budget",
        "recipe",
        "steps",
        "real_tokens_per_s_steady",
        "val_perplexity",
        "peak_rss_mb",
    ]
    print(
        f"\nmasked-LM pretraining, DistilBERT {ARCH} from scratch, batch {BATCH}, lr {LR}, "
        f"first {ROWS:,} Gutenberg paragraphs, max_length {MAX_LENGTH}; {machine()}"
    )
    print(table(results, columns))
    pairs = [(results[i], results[i + 1]) for i in (0, 2)]
    for hf, mine in pairs:
        print(
            f"{mine['budget']}: ours {mine['real_tokens_per_s_steady'] / hf['real_tokens_per_s_steady']:.2f}x "
            f"real tokens/s; perplexity {mine['val_perplexity']:.1f} vs {hf['val_perplexity']:.1f}"
        )
    print(
        f"saved {save('pretrain', {'args': vars(args), 'machine': machine(), 'results': results})}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
