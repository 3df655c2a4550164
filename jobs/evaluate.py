"""The ``evaluate`` job: a registered model version on a dataset; metrics rows in the
registry (accuracy, f1, ... for classifiers; loss and perplexity for masked LMs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from jobs.context import JobContext
from jobs.data.collate import PadCollate
from jobs.data.pipeline import LABEL, check_columns, read_files, resolve_labels, tokenize
from jobs.errors import JobInputError
from jobs.metrics import classification_scores, perplexity
from jobs.specs.models import EvaluateJobSpec
from jobs.specs.training import DataSpec

MLM_PROBABILITY = 0.15


def run(spec: EvaluateJobSpec, ctx: JobContext) -> dict[str, Any]:
    import transformers

    row = ctx.model_version(spec.model)
    folder, task, ref = row.artifact_uri, row.task, row.ref
    config = transformers.AutoConfig.from_pretrained(folder)
    ds, _ = read_files(spec.data, "files")
    kind = "classification" if task == "text-classification" else "mlm"
    columns = check_columns(
        ds, DataSpec.model_construct(columns=spec.data.columns), kind, ", ".join(spec.data.files)
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
        _classify(folder, tokenized, spec, config.num_labels)
        if kind == "classification"
        else _masked_lm(folder, tokenized, spec)
    )
    rows = [{"name": k, "value": float(v), "split": "eval"} for k, v in scores.items()]
    ctx.finish(
        f"evaluated {ref}",
        {"model": ref, **{k: round(v, 4) for k, v in scores.items()}},
        metrics=rows,
    )
    return {"model": ref, "metrics": scores}


def _batches(tokenized: Any, folder: str, batch_size: int, mlm: float | None) -> Any:
    return tokenized.iter_torch_batches(batch_size=batch_size, collate_fn=PadCollate(folder, mlm))


@torch.inference_mode()
def _classify(
    folder: str, tokenized: Any, spec: EvaluateJobSpec, num_labels: int
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
    scores = classification_scores(
        spec.metrics, np.concatenate(preds), np.concatenate(refs), num_labels
    )
    return {**scores, "rows": float(sum(len(p) for p in preds))}


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
