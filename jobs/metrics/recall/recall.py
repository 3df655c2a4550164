"""recall, offline: scikit-learn's ``recall_score`` (one import per line: see ../base.py)."""

from sklearn.metrics import recall_score

import jobs.metrics.base as base


class Recall(base.AveragedLabelMetric):
    KEY, SCORE = "recall", recall_score
    DESCRIPTION = "Fraction of positive references that are found."
