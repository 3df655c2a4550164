"""Classification metrics through the `evaluate` library, offline.

`evaluate.load("accuracy")` downloads its script from the Hub; these local scripts give the
same metrics (computed by scikit-learn, or seqeval for token classification) with no network.
``compute_metrics_fn`` and ``token_metrics_fn`` return functions usable as the HF Trainer's
``compute_metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from orchestrator.specs.common import KNOWN_METRICS

METRICS_DIR = Path(__file__).parent


def perplexity(mean_loss: float) -> float:
    """exp(mean masked-LM loss), capped so an untrained model does not overflow."""
    return math.exp(min(mean_loss, 50.0))


def load_metric(name: str) -> Any:
    import evaluate

    folder = METRICS_DIR / name
    if not (folder / f"{name}.py").is_file():
        known = ", ".join(KNOWN_METRICS)
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


# --- token classification: seqeval over tag sequences -------------------------------------

IGNORED = -100  # labels of sub-tokens after a word's first, special tokens and padding


def tag_sequences(
    predictions: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
) -> tuple[list[list[str]], list[list[str]]]:
    """Predicted and true tag names per sentence, at the positions whose label is not -100
    (one per word: its first sub-token)."""
    predicted, true = [], []
    for pred_row, label_row in zip(predictions, labels, strict=True):
        keep = label_row != IGNORED
        predicted.append([label_names[int(i)] for i in pred_row[keep]])
        true.append([label_names[int(i)] for i in label_row[keep]])
    return predicted, true


def seqeval_report(predicted: list[list[str]], true: list[list[str]]) -> dict[str, Any]:
    """The local seqeval metric: {TYPE: {precision, recall, f1, number}, overall_*}; a
    metric with no predicted (or no true) entity is 0, without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy: the mean of no entity type
        return dict(
            load_metric("seqeval").compute(predictions=predicted, references=true, zero_division=0)
        )


def token_classification_scores(names: Sequence[str], report: dict[str, Any]) -> dict[str, float]:
    """The overall scores ``names`` (f1, precision, recall, accuracy) of a seqeval report."""
    return {name: float(report[f"overall_{name}"]) for name in names}


def argmax_logits(logits: Any, labels: Any) -> Any:
    """For ``Trainer(preprocess_logits_for_metrics=...)``: keep the predicted ids only, not
    every token's logits over all tags, while evaluation accumulates them."""
    logits = logits[0] if isinstance(logits, tuple) else logits
    return logits.argmax(dim=-1)


def token_metrics_fn(
    names: Sequence[str], label_names: Sequence[str]
) -> Callable[[Any], dict[str, float]]:
    """For ``Trainer(compute_metrics=...)`` with ``argmax_logits``: predicted ids and labels
    (-100 where no word starts) in, seqeval's overall scores out."""
    load_metric("seqeval")  # fail early, in the driver

    def compute(eval_pred: Any) -> dict[str, float]:
        predictions, labels = eval_pred
        predicted, true = tag_sequences(np.asarray(predictions), np.asarray(labels), label_names)
        return token_classification_scores(names, seqeval_report(predicted, true))

    return compute
