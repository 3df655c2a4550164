"""seqeval: a local `evaluate` metric (the Hub is never contacted) for sequence labelling
(NER, chunking), computed by the seqeval package. A port of the Hub's ``seqeval`` metric:
entity-level precision, recall and f1 per entity type and overall (micro average), and
token accuracy.

Keep one import per line (see jobs/metrics/base.py).
"""

import importlib

import datasets
from seqeval.metrics import accuracy_score, classification_report

import jobs.metrics.base as base

_DESCRIPTION = (
    "Entity-level precision, recall and f1 of tag sequences (IOB, IOBES, ...), per entity "
    "type and overall (micro average), and token accuracy."
)
_CITATION = "Hiroki Nakayama, seqeval: A Python framework for sequence labeling evaluation, 2018."
_KWARGS_DESCRIPTION = (
    "predictions: list of tag sequences (one list of tag names per sentence); references: "
    "the true tag sequences, of the same lengths. suffix: tags are 'PER-B' rather than "
    "'B-PER'. scheme: None (the conlleval way) or a strict scheme: IOB1, IOB2, IOE1, IOE2, "
    "IOBES, BILOU. mode: 'strict' with a scheme. sample_weight, zero_division: as "
    "scikit-learn's. Returns {TYPE: {precision, recall, f1, number}, overall_precision, "
    "overall_recall, overall_f1, overall_accuracy}."
)
SCHEMES = ("IOB1", "IOB2", "IOE1", "IOE2", "IOBES", "BILOU")


class Seqeval(base.OfflineMetric):
    DESCRIPTION = _DESCRIPTION
    CITATION = _CITATION
    INPUTS = _KWARGS_DESCRIPTION
    FEATURES = {
        "predictions": datasets.Sequence(datasets.Value("string", id="label")),
        "references": datasets.Sequence(datasets.Value("string", id="label")),
    }

    def _compute(
        self,
        predictions,
        references,
        suffix=False,
        scheme=None,
        mode=None,
        sample_weight=None,
        zero_division="warn",
    ):
        if scheme is not None:
            if scheme not in SCHEMES:
                raise ValueError(f"scheme should be one of {list(SCHEMES)}, got {scheme!r}")
            scheme = getattr(importlib.import_module("seqeval.scheme"), scheme)
        report = classification_report(
            y_true=references,
            y_pred=predictions,
            suffix=suffix,
            output_dict=True,
            scheme=scheme,
            mode=mode,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        report.pop("macro avg")
        report.pop("weighted avg")
        overall = report.pop("micro avg")
        scores = {
            entity_type: {
                "precision": float(score["precision"]),
                "recall": float(score["recall"]),
                "f1": float(score["f1-score"]),
                "number": int(score["support"]),
            }
            for entity_type, score in report.items()
        }
        scores["overall_precision"] = float(overall["precision"])
        scores["overall_recall"] = float(overall["recall"])
        scores["overall_f1"] = float(overall["f1-score"])
        scores["overall_accuracy"] = float(accuracy_score(y_true=references, y_pred=predictions))
        return scores
