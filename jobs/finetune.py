"""The ``finetune`` job: sequence classification (single texts or pairs) or token
classification (a tag per word: NER) from a registered model version or a local Hugging Face
folder; registers the best checkpoint."""

from __future__ import annotations

import os
from typing import Any

from jobs.data.pipeline import prepare
from jobs.errors import JobInputError
from jobs.runtime.context import JobContext
from jobs.train.fit import Lineage, train_and_register
from orchestrator.specs.models import BaseModelSpec, FinetuneJobSpec


def resolve_base(base: BaseModelSpec, ctx: JobContext) -> tuple[str, Lineage]:
    """The base model's folder and its lineage; the folder must hold safetensors weights."""
    if base.path is not None:
        folder, lineage = base.path, Lineage(base_model=base.path)
    else:
        assert base.model is not None
        row = ctx.model_version(base.model)
        folder = row.artifact_uri
        lineage = Lineage(base_model=row.ref, base_version_id=row.id, tokenizer_id=row.tokenizer_id)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise JobInputError(f"base model folder {folder} does not exist or has no config.json")
    if not any(f.endswith(".safetensors") for f in os.listdir(folder)):
        raise JobInputError(
            f"base model folder {folder} has no .safetensors weights (models "
            "are only loaded from safetensors, never from pickle files)"
        )
    return folder, lineage


def run(spec: FinetuneJobSpec, ctx: JobContext) -> dict[str, Any]:
    folder, lineage = resolve_base(spec.base, ctx)
    ctx.progress("reading and checking the dataset")
    tagged = spec.task == "token-classification"
    data = prepare(
        spec.data,
        "token-classification" if tagged else "classification",
        folder,
        spec.labels,
        spec.scaling,
    )
    rows = "sentences" if tagged else "rows"
    ctx.progress(
        f"{data.splits['train'].rows:,} train / {data.splits['eval'].rows:,} eval {rows}; "
        f"{'tags' if tagged else 'labels'} {data.label_names}"
    )
    return train_and_register(
        spec,
        ctx,
        {
            "task": spec.task,
            "model_dir": folder,
            "model_config": None,
            "tokenizer_dir": folder,
            "num_labels": len(data.label_names or []),
            "label_names": data.label_names,
            "metrics": spec.metrics,
            "best_metric": spec.best_metric,
        },
        data,
        lineage,
    )
