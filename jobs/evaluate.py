"""The ``evaluate`` job: a registered model version on a dataset; metrics rows in the
registry (accuracy, f1, ... for classifiers; seqeval's f1, precision, recall and accuracy for
token classifiers; loss and perplexity for masked LMs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jobs.data.collate import PadCollate
from jobs.data.rows import LABEL, check_columns
from jobs.data.streaming import read_files
from jobs.data.tabular import resolve_labels, tokenize
from jobs.data.tagged import check_tagged_files, sentence_dataset, tokenize_tagged
from jobs.errors import JobInputError
from jobs.metrics import (
    classification_scores,
    perplexity,
    seqeval_report,
    tag_sequences,
    token_classification_scores,
)
from jobs.runtime.context import JobContext
from orchestrator.specs.common import DEFAULT_METRICS, metrics_not_of_task
from orchestrator.specs.models import EvaluateJobSpec
from orchestrator.specs.training import DataSpec

MLM_PROBABILITY = 0.15
# what the evaluate job can score: a question-answering head or a bare encoder has no labels
# nor a masked-LM head to score (loading one as a masked LM would score a random head)
EVALUATED_TASKS = ("text-classification", "token-classification", "fill-mask")


def run(spec: EvaluateJobSpec, ctx: JobContext) -> dict[str, Any]:
    import transformers

    row = ctx.model_version(spec.model)
    folder, task, ref = row.artifact_uri, row.task, row.ref
    if task not in EVALUATED_TASKS:
        raise JobInputError(
            f"model: {ref} is a {task} model; the evaluate job scores "
            f"{', '.join(EVALUATED_TASKS)} models"
        )
    config = transformers.AutoConfig.from_pretrained(folder)
    metrics = _metrics_for(spec, task or "", ref)
    if task == "token-classification":
        return _evaluate_tagged(spec, ctx, folder, ref, config, metrics)
    ds, _, names = read_files(spec.data, "files")
    kind = "classification" if task == "text-classification" else "mlm"
    columns = check_columns(
        names, DataSpec.model_construct(columns=spec.data.columns), kind, ", ".join(spec.data.files)
    )
    ds = ds.limit(spec.data.max_rows) if spec.data.max_rows else ds
    label2id = None
    if kind == "classification":
        names = [config.id2label[i] for i in range(config.num_labels)]
        resolve_labels(ds.unique(columns[LABEL]), names)  # every label must be the model's
        label2id = {n: i for i, n in enumerate(names)}
    ctx.progress(f"scoring {ref} on {', '.join(spec.data.files)}")
    tokenized = tokenize(ds, folder, spec.data.max_length, columns, label2id, 0.5)
    scores = (
        _classify(folder, tokenized, spec, config.num_labels, metrics)
        if kind == "classification"
        else _masked_lm(folder, tokenized, spec)
    )
    return _finish(ctx, ref, scores)


def _finish(ctx: JobContext, ref: str, scores: dict[str, float], **details: Any) -> dict[str, Any]:
    rows = [{"name": k, "value": float(v), "split": "eval"} for k, v in scores.items()]
    ctx.finish(
        f"evaluated {ref}",
        {"model": ref, **{k: round(v, 4) for k, v in scores.items()}, **details},
        metrics=rows,
    )
    return {"model": ref, "metrics": scores, **details}


def _metrics_for(spec: EvaluateJobSpec, task: str, ref: str) -> list[str]:
    """The metrics asked for (default: the task's), checked against the model's task now
    that it is known (a spec cannot know it)."""
    metrics = spec.metrics or list(DEFAULT_METRICS.get(task, ()))
    problem = metrics_not_of_task(task, metrics) if spec.metrics else None
    if problem:
        raise JobInputError(f"metrics: {problem} (the task of {ref})")
    return metrics


def _batches(
    tokenized: Any, folder: str, batch_size: int, mlm: float | None, token_labels: bool = False
) -> Any:
    collate = PadCollate(folder, mlm, token_labels=token_labels)
    return tokenized.iter_torch_batches(batch_size=batch_size, collate_fn=collate)


@torch.inference_mode()
def _classify(
    folder: str, tokenized: Any, spec: EvaluateJobSpec, num_labels: int, metrics: list[str]
) -> dict[str, float]:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    model.eval()
    preds, refs = [], []
    for batch in _batches(tokenized, folder, spec.batch_size, None):
        labels = batch.pop("labels")
        preds.append(model(**batch).logits.argmax(-1).numpy())
        refs.append(labels.numpy())
    if not preds:
        raise JobInputError("the evaluation data has no rows")
    scores = classification_scores(metrics, np.concatenate(preds), np.concatenate(refs), num_labels)
    return {**scores, "rows": float(sum(len(p) for p in preds))}


def _evaluate_tagged(
    spec: EvaluateJobSpec,
    ctx: JobContext,
    folder: str,
    ref: str,
    config: Any,
    metrics: list[str],
) -> dict[str, Any]:
    """A token classifier on conll / jsonl files: every tag must be one of the model's
    labels (errors name the file and line); seqeval scores the words' first sub-tokens."""
    names = [config.id2label[i] for i in range(config.num_labels)]
    data = spec.data
    tagged = check_tagged_files(data, "data", data.columns, names, data.max_rows)
    ctx.progress(f"scoring {ref} on {tagged.scan.sentences:,} sentences of {', '.join(data.files)}")
    label2id = {n: i for i, n in enumerate(names)}
    tokenized = tokenize_tagged(
        sentence_dataset(tagged, data.columns, label2id), folder, data.max_length, 0.5
    )
    predicted, true = _tag(folder, tokenized, spec.batch_size, names)
    report = seqeval_report(predicted, true)
    scores = {**token_classification_scores(metrics, report), "rows": float(len(true))}
    per_type = {k: v for k, v in report.items() if isinstance(v, dict)}
    return _finish(ctx, ref, scores, per_type=per_type)


@torch.inference_mode()
def _tag(
    folder: str, tokenized: Any, batch_size: int, names: list[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Predicted and true tag names of every sentence (at each word's first sub-token)."""
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(folder, use_safetensors=True)
    model.eval()
    predicted: list[list[str]] = []
    true: list[list[str]] = []
    for batch in _batches(tokenized, folder, batch_size, None, token_labels=True):
        labels = batch.pop("labels")
        pred, ref = tag_sequences(model(**batch).logits.argmax(-1).numpy(), labels.numpy(), names)
        predicted += pred
        true += ref
    if not true:
        raise JobInputError("the evaluation data has no sentences")
    return predicted, true


@torch.inference_mode()
def _masked_lm(folder: str, tokenized: Any, spec: EvaluateJobSpec) -> dict[str, float]:
    from transformers import AutoModelForMaskedLM

    torch.manual_seed(0)  # the same masks on every run: comparable numbers
    model = AutoModelForMaskedLM.from_pretrained(folder, use_safetensors=True)
    model.eval()
    total, count = 0.0, 0
    for batch in _batches(tokenized, folder, spec.batch_size, MLM_PROBABILITY):
        masked = int((batch["labels"] != -100).sum())
        total += float(model(**batch).loss) * masked
        count += masked
    if not count:
        raise JobInputError("the evaluation data has no rows")
    loss = total / count
    return {"loss": loss, "perplexity": perplexity(loss)}
