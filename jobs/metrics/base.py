"""What the local `evaluate` metric scripts in this folder share.

A script is loaded with ``evaluate.load("<its folder>")`` and never reaches the Hub. It
imports this module as a module (``import jobs.metrics.base as base``), not its classes:
`evaluate` takes the first Metric class it finds in a script's namespace as the metric, and
its import scanner reads one import per line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import datasets
import evaluate

SKLEARN_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011."


class OfflineMetric(evaluate.Metric):
    """A metric described by class attributes: DESCRIPTION, CITATION, INPUTS, FEATURES."""

    DESCRIPTION: ClassVar[str] = ""
    CITATION: ClassVar[str] = ""
    INPUTS: ClassVar[str] = ""
    FEATURES: ClassVar[dict[str, Any]] = {}

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=self.DESCRIPTION,
            citation=self.CITATION,
            inputs_description=self.INPUTS,
            features=datasets.Features(self.FEATURES),
        )


class LabelMetric(OfflineMetric):
    """One score of integer labels: ``SCORE(references, predictions, **DEFAULTS, **kwargs)``
    (a scikit-learn function), answered as ``{KEY: score}``."""

    KEY: ClassVar[str]
    SCORE: ClassVar[Callable[..., Any]]
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    CITATION = SKLEARN_CITATION
    INPUTS = "predictions: predicted labels; references: true labels."
    FEATURES = {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}

    def _compute(self, predictions: list[int], references: list[int], **kwargs: Any) -> dict:
        score = type(self).SCORE(references, predictions, **{**self.DEFAULTS, **kwargs})
        return {self.KEY: float(score)}


class AveragedLabelMetric(LabelMetric):
    """Precision, recall or f1: of class 1 for two classes (``average="binary"``), or averaged
    over classes (``average="macro"``, ...); 0 where a class is never predicted."""

    DEFAULTS = {"pos_label": 1, "average": "binary", "zero_division": 0}
