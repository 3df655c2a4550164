"""precision, offline: scikit-learn's ``precision_score`` (one import per line: see ../base.py)."""

from sklearn.metrics import precision_score

import jobs.metrics.base as base


class Precision(base.AveragedLabelMetric):
    KEY, SCORE = "precision", precision_score
    DESCRIPTION = "Fraction of positive predictions that are correct."
