"""matthews_correlation, offline: scikit-learn's ``matthews_corrcoef`` (see ../base.py)."""

from sklearn.metrics import matthews_corrcoef

import jobs.metrics.base as base


class MatthewsCorrelation(base.LabelMetric):
    KEY, SCORE = "matthews_correlation", matthews_corrcoef
    DESCRIPTION = "Matthews correlation coefficient, from -1 to 1."
