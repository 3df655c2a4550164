"""matthews_correlation: a local `evaluate` metric (no Hub access), by scikit-learn.

Loaded with ``evaluate.load("<this folder>")``. Keep one import per line: evaluate's
import scanner reads this file naively.
"""

import datasets
import evaluate
from sklearn.metrics import matthews_corrcoef

_DESCRIPTION = "Matthews correlation coefficient, from -1 to 1."
_CITATION = "Pedregosa et al., Scikit-learn: Machine Learning in Python, JMLR 12, 2011."
_KWARGS_DESCRIPTION = "predictions: predicted labels; references: true labels."


class MatthewsCorrelation(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}
            ),
        )

    def _compute(self, predictions, references, sample_weight=None):
        value = matthews_corrcoef(references, predictions, sample_weight=sample_weight)
        return {"matthews_correlation": float(value)}
