"""The pipeline tasks without Ray: token classification, zero-shot classification and
feature extraction answer what transformers' own pipeline answers, many requests share the
forward passes and keep every answer, and requests read in too many windows are refused.
Question answering has test_serving_question_answering.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from jobs.serving.requests import RequestError
from tests.conftest import make_tiny_model
from tests.unit.serving_helpers import (
    CONTEXT,
    LONG_CONTEXT,
    NER_LABELS,
    NLI_LABELS,
    TEXTS,
    assert_same,
    request,
    run,
)

pytest_plugins = ["tests.unit.serving_fixtures"]


# --- token classification -------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
def test_token_classification_is_the_pipelines(
    ner: Any, reference: dict[str, Any], strategy: str
) -> None:
    body = {"inputs": TEXTS, "parameters": {"aggregation_strategy": strategy}}
    ours = run(ner, request("token-classification", body))[0]
    theirs = reference["token-classification"](TEXTS, aggregation_strategy=strategy)
    assert_same(ours, theirs)
    found = [entity for answer in ours for entity in answer]
    assert found, "the tiny model finds no entity: the comparison would be empty"
    for text, answer in zip(TEXTS, ours, strict=True):
        for entity in answer:
            if strategy != "none":  # "none" answers wordpieces ("##ian"); the others, words
                assert entity["word"].replace(" ", "") in text.lower().replace(" ", "")
            assert 0 <= entity["start"] < entity["end"] <= len(text)


def test_token_classification_defaults_to_simple_and_takes_stride_and_ignore_labels(
    ner: Any, reference: dict[str, Any]
) -> None:
    pipe = reference["token-classification"]
    ours = run(ner, request("token-classification", {"inputs": TEXTS[0]}))[0]
    assert_same(ours, pipe(TEXTS[0], aggregation_strategy="simple"))
    assert ner.describe()["labels"] == NER_LABELS
    params = {"aggregation_strategy": "max", "stride": 16, "ignore_labels": []}
    ours = run(ner, request("token-classification", {"inputs": TEXTS[3], "parameters": params}))
    theirs = pipe(TEXTS[3], aggregation_strategy="max", stride=16, ignore_labels=[])
    assert_same(ours[0], theirs)
    assert max(entity["end"] for entity in ours[0]) > len(TEXTS[3]) // 2  # past 128 tokens
    with pytest.raises(RequestError, match="stride must be below 126") as caught:
        ner.check(request("token-classification", {"inputs": "x", "parameters": {"stride": 126}}))
    assert caught.value.field == "parameters.stride"


# --- zero-shot classification ---------------------------------------------------------------


@pytest.mark.parametrize("multi_label", [False, True])
def test_zero_shot_is_the_pipelines(nli: Any, reference: dict[str, Any], multi_label: bool) -> None:
    labels = ["politics", "travel", "sport", "science fiction"]
    params = {"candidate_labels": labels, "multi_label": multi_label}
    ours = run(nli, request("zero-shot-classification", {"inputs": TEXTS, "parameters": params}))
    theirs = reference["zero-shot-classification"](TEXTS, **params)
    assert_same(ours[0], theirs)
    for text, answer in zip(TEXTS, ours[0], strict=True):
        assert answer["sequence"] == text and sorted(answer["labels"]) == sorted(labels)
        assert answer["scores"] == sorted(answer["scores"], reverse=True)
        if multi_label:
            assert all(0 < score < 1 for score in answer["scores"])
            assert not math.isclose(sum(answer["scores"]), 1.0, abs_tol=1e-3)
        else:
            assert sum(answer["scores"]) == pytest.approx(1.0, abs=1e-5)


def test_zero_shot_template_comma_labels_and_one_label(nli: Any, reference: dict[str, Any]) -> None:
    pipe = reference["zero-shot-classification"]
    params = {"candidate_labels": "urgent, not urgent", "hypothesis_template": "It is {}!"}
    ours = run(nli, request("zero-shot-classification", {"inputs": TEXTS[1], "parameters": params}))
    assert_same(ours[0], pipe(TEXTS[1], **params))
    assert ours[0]["labels"] != [] and set(ours[0]["labels"]) == {"urgent", "not urgent"}
    one = {"candidate_labels": ["travel"]}  # one label: entailment against contradiction
    ours = run(nli, request("zero-shot-classification", {"inputs": TEXTS[0], "parameters": one}))
    assert_same(ours[0], pipe(TEXTS[0], **one))
    described = nli.describe()
    assert described["entailment_label"] == "entailment" and described["nli_labels"] == NLI_LABELS
    with pytest.raises(RequestError, match="leaves no room") as caught:
        nli.check(
            request(
                "zero-shot-classification",
                {"inputs": "x", "parameters": {"candidate_labels": ["ok", "word " * 200]}},
            )
        )
    assert caught.value.field == "parameters.candidate_labels[1]"


def test_zero_shot_refuses_a_model_without_entailment(tmp_path: Path) -> None:
    from jobs.serving.predictors import load_predictor

    folder = make_tiny_model(tmp_path / "sentiment", "text-classification")
    with pytest.raises(ValueError, match="entailment label"):
        load_predictor(str(folder), "zero-shot-classification")


# --- feature extraction ---------------------------------------------------------------------


def test_feature_extraction_is_the_pipelines_and_embeddings_stay(
    task_models: dict[str, Path], reference: dict[str, Any]
) -> None:
    import numpy as np

    from jobs.serving.predictors import load_predictor

    folder = str(task_models["ner"])
    features = load_predictor(folder, "feature-extraction", max_batch_tokens=64)
    ours = run(features, request("feature-extraction", {"inputs": TEXTS}))[0]
    theirs = reference["feature-extraction"](TEXTS, truncation=True)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array(a).shape == np.array(b).shape
        assert np.allclose(np.array(a), np.array(b), atol=1e-4)
    assert np.array(ours[3]).shape == (1, 128, 32)  # truncated to the model's length
    single = run(features, request("feature-extraction", {"inputs": TEXTS[2]}))[0]
    assert np.array(single).shape == np.array(theirs[2]).shape
    assert features.describe()["hidden_size"] == 32
    pooled = load_predictor(folder, "embeddings", 4096)
    vectors = run(pooled, request("embeddings", {"inputs": TEXTS[:2]}))[0]
    assert len(vectors) == 2 and len(vectors[0]) == 32
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0, abs=1e-4)


# --- many requests across several forward passes --------------------------------------------


def test_a_batch_of_many_requests_crosses_passes_and_keeps_every_answer(
    ner: Any, qa: Any, nli: Any, reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sentence = "Maria Garcia flew from Madrid to Lisbon and met Peter in Porto"
    words = sentence.split(" ")
    texts = [" ".join(words[: 1 + i % len(words)]) * (1 + i % 3) for i in range(14)]
    passes = {"count": 0}

    def counting(predictor: Any) -> None:
        forward = predictor.pipe.forward

        def counted(batch: Any, **params: Any) -> Any:
            passes["count"] += 1
            return forward(batch, **params)

        monkeypatch.setattr(predictor.pipe, "forward", counted)

    for predictor in (ner, qa, nli):
        counting(predictor)

    # token classification: requests of one text and of several, with different strategies
    strategies = ["simple", "first", "none", "max", "average"]
    requests = [
        request(
            "token-classification",
            {
                "inputs": texts[i] if i % 2 else texts[i : i + 3],
                "parameters": {"aggregation_strategy": strategies[i % 5]},
            },
        )
        for i in range(len(texts))
    ]
    ours = run(ner, *requests)
    pipe = reference["token-classification"]
    for i, answer in enumerate(ours):
        expected = pipe(
            texts[i] if i % 2 else texts[i : i + 3], aggregation_strategy=strategies[i % 5]
        )
        assert_same(answer, expected, f"request {i}")
    assert passes["count"] > 3

    # zero-shot: every (text, label) pair of the batch shares the passes
    passes["count"] = 0
    labels = [["travel", "sport"], ["politics", "travel", "cooking"]]
    requests = [
        request(
            "zero-shot-classification",
            {"inputs": texts[i], "parameters": {"candidate_labels": labels[i % 2]}},
        )
        for i in range(8)
    ]
    ours = run(nli, *requests)
    for i, answer in enumerate(ours):
        expected = reference["zero-shot-classification"](texts[i], candidate_labels=labels[i % 2])
        assert_same(answer, expected, f"request {i}")
    assert passes["count"] > 3

    # question answering: windows of long and short contexts in the same passes
    passes["count"] = 0
    contexts = [LONG_CONTEXT, CONTEXT, CONTEXT[:60], LONG_CONTEXT[:900]]
    questions = ["Where?", "Who built the Eiffel Tower in Paris?", "What?", "Named after whom?"]
    requests = [
        request(
            "question-answering",
            {
                "inputs": {"question": questions[i % 4], "context": contexts[i % 4]},
                "parameters": {"top_k": 1 + i % 3},
            },
        )
        for i in range(8)
    ]
    ours = run(qa, *requests)
    for i, answer in enumerate(ours):
        item = {"question": questions[i % 4], "context": contexts[i % 4]}
        assert_same(answer, qa.pipe.__class__.__call__(qa.pipe, item, top_k=1 + i % 3))
    assert passes["count"] > 3


# --- requests read in windows --------------------------------------------------------------


def test_a_request_read_in_too_many_windows_is_refused(qa: Any, ner: Any) -> None:
    """A stride one token short of the window (or a tiny max_seq_len) reads a long text one
    token per window: refused (413) before any window is built."""
    context = "word " * 3_999
    tiny_windows = {
        "inputs": {"question": "q?", "context": context},
        "parameters": {"max_seq_len": 8},
    }
    with pytest.raises(RequestError) as caught:
        qa.check(request("question-answering", tiny_windows))
    assert caught.value.status == 413 and caught.value.field == "inputs"
    assert "3,997 windows" in caught.value.message
    qa.check(request("question-answering", {"inputs": {"question": "q?", "context": context}}))
    many = {"inputs": [{"question": "q?", "context": context}] * 40}
    with pytest.raises(RequestError, match="windows"):
        qa.check(request("question-answering", many))
    ner.check(request("token-classification", {"inputs": context, "parameters": {"stride": 8}}))
    step_of_one = {"inputs": [context] * 2, "parameters": {"stride": ner.max_length - 3}}
    with pytest.raises(RequestError, match="windows"):
        ner.check(request("token-classification", step_of_one))
