"""f1, offline: scikit-learn's ``f1_score`` (one import per line: see ../base.py)."""

from sklearn.metrics import f1_score

import jobs.metrics.base as base


class F1(base.AveragedLabelMetric):
    KEY, SCORE = "f1", f1_score
    DESCRIPTION = "Harmonic mean of precision and recall."
