"""precision: a local `evaluate` metric (the Hub is never contacted), computed by scikit-learn.

Loaded with ``evaluate.load("<this folder>")``. Keep one import per line: evaluate's
import scanner reads this file naively.
"""

import datasets
import evaluate
from sklearn.metrics import precision_score

_DESCRIPTION = "Fraction of positive predictions that are correct."
_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011."
_KWARGS_DESCRIPTION = "predictions: predicted labels; references: true labels."


class Precision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        pos_label=1,
        average="binary",
        sample_weight=None,
    ):
        value = precision_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=0,
        )
        return {"precision": float(value)}
