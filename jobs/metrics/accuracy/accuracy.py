"""accuracy, offline: scikit-learn's ``accuracy_score`` (one import per line: see ../base.py)."""

from sklearn.metrics import accuracy_score

import jobs.metrics.base as base


class Accuracy(base.LabelMetric):
    KEY, SCORE = "accuracy", accuracy_score
    DESCRIPTION = "Fraction of predictions equal to the reference label."
