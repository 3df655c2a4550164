"""What the serving tests share: the texts the pipeline tasks are asked about, a request
parsed as a replica parses it, a batch run as a replica runs it, and the comparison of an
answer with transformers' own. The fixtures built on these are in serving_fixtures.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.serving.requests import Request, parse_request

NER_LABELS = ["O", "B-person", "I-person", "B-location", "I-location"]
NLI_LABELS = ["contradiction", "neutral", "entailment"]
TEXTS = [
    "Angela Merkel visited Paris and Berlin yesterday.",
    "John Smith lives in New York City and works at Googleplex.",
    "hi",
    "The unbelievably longwinded Zanzibarian explorers sailed to Reykjavik. " * 12,  # > 128
]
CONTEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built it."
)
LONG_CONTEXT = " ".join([CONTEXT] * 5)  # ~200 tokens: several windows of 128
# tiny models with weights drawn wide enough (std 0.3) that answers differ between inputs
WIDE = {"initializer_range": 0.3}


def request(task: str, body: object) -> Request:
    """``body`` (JSON bytes, or an object to encode) parsed as a request for ``task``."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_request(raw, task, max_items=256, max_chars=20_000)


def run(predictor: Any, *requests: Request) -> list[Any]:
    """The answers to ``requests`` as one batch, each checked first as a replica does."""
    for r in requests:
        predictor.check(r)
    return predictor.run(list(requests))


def assert_same(ours: Any, theirs: Any, where: str = "answer") -> None:
    """Equal structure, keys, strings and ints; floats within 1e-4 (numpy scalars allowed on
    transformers' side; ours must be plain Python, what JSON encodes)."""
    if hasattr(theirs, "item"):
        theirs = theirs.item()
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), (where, ours, theirs)
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(ours, list) and len(ours) == len(theirs), (where, ours, theirs)
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float):
        assert type(ours) is float and ours == pytest.approx(theirs, abs=1e-4), (where, ours)
    else:
        assert type(ours) is type(theirs) and ours == theirs, (where, ours, theirs)
