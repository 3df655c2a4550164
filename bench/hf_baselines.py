"""The plain Hugging Face recipes the benchmarks compare against, as the tutorials write them.

Run as a subprocess (so its peak memory is its own):
    python -m bench.hf_baselines finetune --padding tutorial|dynamic --train F --dev F ...
    python -m bench.hf_baselines pretrain --tokenizer DIR --train F ...
Prints one JSON line with throughput, peak RSS and the output folder.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np
from transformers import TrainerCallback


class Clock(TrainerCallback):
    """Steady-state throughput: time from step ``warmup`` to the end, and the wall-time stop."""

    def __init__(self, warmup: int, max_seconds: float | None) -> None:
        self.warmup, self.max_seconds = warmup, max_seconds
        self.t_warm: float | None = None
        self.t_end: float | None = None
        self.t_start = 0.0
        self.steps = 0

    def on_train_begin(self, args, state, control, **kw):  # noqa: ANN001
        self.t_start = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
        now = time.perf_counter()
        if state.global_step == self.warmup:
            self.t_warm = now
        self.t_end, self.steps = now, state.global_step
        if self.max_seconds and now - self.t_start > self.max_seconds:
            control.should_training_stop = True


def training_args(a: argparse.Namespace, **extra: Any) -> Any:
    """The tutorials' TrainingArguments, the same for every plain recipe here."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=a.out,
        per_device_train_batch_size=a.batch,
        learning_rate=a.lr,
        weight_decay=0.01,
        max_steps=a.steps,
        warmup_steps=int(0.06 * a.steps),
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=50,
        disable_tqdm=True,
        seed=42,
        **extra,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def finetune(a: argparse.Namespace) -> dict:
    import evaluate  # noqa: F401 - the tutorial's metric library (loaded offline below)
    from datasets import load_dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
    )

    from jobs.metrics import load_metric

    started = time.perf_counter()
    raw = load_dataset(
        "csv", data_files={"train": a.train, "dev": a.dev}, delimiter="\t", quoting=3
    )
    raw["train"] = raw["train"].select(range(min(a.rows, len(raw["train"]))))
    tok = AutoTokenizer.from_pretrained(a.model)
    if a.padding == "tutorial":  # the tutorial: pad in map, truncation, max_length=512
        fn = lambda b: tok(b["sentence"], padding=True, truncation=True, max_length=512)  # noqa: E731
        collator = None
    else:  # the strongest plain baseline: pad per batch
        fn = lambda b: tok(b["sentence"], truncation=True)  # noqa: E731
        collator = DataCollatorWithPadding(tok)
    data = raw.map(fn, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2)
    accuracy = load_metric("accuracy")

    def metrics(p):  # noqa: ANN001
        return accuracy.compute(predictions=np.argmax(p.predictions, -1), references=p.label_ids)

    clock = Clock(a.warmup, None)
    args = training_args(a, per_device_eval_batch_size=64)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["dev"],
        processing_class=tok,
        data_collator=collator,
        compute_metrics=metrics,
        callbacks=[clock],
    )
    trainer.train()
    train_end = time.perf_counter()
    acc = trainer.evaluate()["eval_accuracy"]
    steady = (clock.steps - a.warmup) * a.batch / (clock.t_end - clock.t_warm)
    return {
        "recipe": f"hf-{a.padding}",
        "samples_per_s_steady": steady,
        "samples_per_s_end_to_end": a.steps * a.batch / (train_end - started),
        "dev_accuracy": acc,
        "peak_rss_mb": peak_rss_mb(),
        "wall_s": time.perf_counter() - started,
    }


def pretrain(a: argparse.Namespace) -> dict:
    from datasets import load_dataset
    from transformers import (
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        DistilBertConfig,
        DistilBertForMaskedLM,
        Trainer,
    )

    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    raw = load_dataset("text", data_files={"train": a.train})["train"]
    raw = raw.filter(lambda r: bool(r["text"].strip()))
    raw = raw.select(range(min(a.rows, len(raw))))
    # the tutorial: pad in map (padding=True pads each map batch to its longest row)
    data = raw.map(
        lambda b: tok(b["text"], padding=True, truncation=True, max_length=a.max_length),
        batched=True,
        remove_columns=["text"],
    )
    real_tokens = int(sum(sum(m) for m in data["attention_mask"]))
    config = DistilBertConfig(
        vocab_size=len(tok),
        dim=a.hidden,
        n_layers=a.layers,
        n_heads=a.heads,
        hidden_dim=a.hidden * 4,
        max_position_embeddings=a.max_length,
        pad_token_id=tok.pad_token_id,
    )
    model = DistilBertForMaskedLM(config)
    clock = Clock(a.warmup, a.max_seconds)
    args = training_args(a)
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tok,
        data_collator=DataCollatorForLanguageModeling(tok, mlm_probability=0.15),
        callbacks=[clock],
    )
    trainer.train()
    trainer.save_model(a.out + "/model")
    tok.save_pretrained(a.out + "/model")
    rows_seen = clock.steps * a.batch
    tokens_per_row = real_tokens / max(len(data), 1)
    steady = (clock.steps - a.warmup) * a.batch * tokens_per_row / (clock.t_end - clock.t_warm)
    return {
        "recipe": "hf-tutorial",
        "real_tokens_per_s_steady": steady,
        "steps": clock.steps,
        "rows_seen": rows_seen,
        "peak_rss_mb": peak_rss_mb(),
        "model_dir": a.out + "/model",
        "wall_s": time.perf_counter() - started,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["finetune", "pretrain"])
    p.add_argument("--padding", choices=["tutorial", "dynamic"], default="tutorial")
    p.add_argument("--model"), p.add_argument("--tokenizer"), p.add_argument("--train")
    p.add_argument("--dev"), p.add_argument("--out", required=True)
    p.add_argument("--rows", type=int, default=10**9), p.add_argument("--steps", type=int)
    p.add_argument("--batch", type=int, default=16), p.add_argument("--lr", type=float)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--max-seconds", dest="max_seconds", type=float, default=None)
    p.add_argument("--max-length", dest="max_length", type=int, default=128)
    (
        p.add_argument("--layers", type=int, default=2),
        p.add_argument("--hidden", type=int, default=128),
    )
    p.add_argument("--heads", type=int, default=2)
    a = p.parse_args()
    out = finetune(a) if a.what == "finetune" else pretrain(a)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
