"""Classification metrics through the `evaluate` library, offline.

`evaluate.load("accuracy")` downloads its script from the Hub; these local scripts give the
same metrics (computed by scikit-learn) with no network. ``load_metrics`` returns a function
usable as the HF Trainer's ``compute_metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jobs.specs.common import CLASSIFICATION_METRICS

METRICS_DIR = Path(__file__).parent


def perplexity(mean_loss: float) -> float:
    """exp(mean masked-LM loss), capped so an untrained model does not overflow."""
    return math.exp(min(mean_loss, 50.0))


def load_metric(name: str) -> Any:
    import evaluate

    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        known = ", ".join(CLASSIFICATION_METRICS)
        raise ValueError(f"unknown metric {name!r}; known: {known}")
    return evaluate.load(str(folder))


def classification_scores(
    names: Sequence[str], predictions: np.ndarray, references: np.ndarray, num_labels: int
) -> dict[str, float]:
    """Each metric over integer predictions; f1/precision/recall are macro-averaged beyond
    two classes (binary otherwise, positive class 1)."""
    out: dict[str, float] = {}
    for name in names:
        kwargs: dict[str, Any] = {}
        if name in ("f1", "precision", "recall"):
            kwargs["average"] = "binary" if num_labels == 2 else "macro"
        out.update(
            load_metric(name).compute(
                predictions=predictions.tolist(), references=references.tolist(), **kwargs
            )
        )
    return out


def compute_metrics_fn(names: Sequence[str], num_labels: int) -> Callable[[Any], dict[str, float]]:
    """For ``Trainer(compute_metrics=...)``: logits and labels in, named scores out."""
    for name in names:
        load_metric(name)  # fail early, in the driver, on a misspelt metric

    def compute(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred
        logits = logits[0] if isinstance(logits, tuple) else logits
        return classification_scores(
            names, np.argmax(logits, axis=-1), np.asarray(labels), num_labels
        )

    return compute
