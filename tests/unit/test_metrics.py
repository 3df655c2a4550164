"""The local `evaluate` metric scripts (jobs/metrics/) load offline and answer what
scikit-learn answers, binary and averaged over classes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from jobs.metrics import classification_scores, load_metric

PREDICTIONS = np.array([0, 1, 1, 0, 1, 2, 2, 0, 1, 2])
REFERENCES = np.array([0, 1, 0, 0, 1, 2, 1, 1, 1, 0])


@pytest.mark.parametrize("classes", [2, 3])
def test_label_metrics_are_scikit_learn_s(classes: int) -> None:
    p, r = PREDICTIONS % classes, REFERENCES % classes
    average = "binary" if classes == 2 else "macro"
    names = ["accuracy", "f1", "precision", "recall", "matthews_correlation"]
    assert classification_scores(names, p, r, classes) == pytest.approx(
        {
            "accuracy": sk.accuracy_score(r, p),
            "f1": sk.f1_score(r, p, average=average),
            "precision": sk.precision_score(r, p, average=average),
            "recall": sk.recall_score(r, p, average=average),
            "matthews_correlation": sk.matthews_corrcoef(r, p),
        }
    )


def test_a_class_never_predicted_scores_zero_not_a_warning() -> None:
    score = load_metric("precision").compute(predictions=[0, 0], references=[1, 0])
    assert score == {"precision": 0.0}


def test_an_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown metric 'bleu'; known: accuracy"):
        load_metric("bleu")
