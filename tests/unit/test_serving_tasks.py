"""Serving of token classification, question answering, zero-shot classification and feature
extraction without Ray: each endpoint's answers against transformers' own pipeline (for
question answering, which transformers 5 dropped, against our pipeline run unbatched by
transformers' machinery and a brute-force span search), and the requests they refuse."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from jobs.serving.requests import Request, RequestError, parse_request
from tests.conftest import make_tiny_model

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


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tasks")
    return {
        "ner": make_tiny_model(root / "ner", "token-classification", labels=NER_LABELS, **WIDE),
        "qa": make_tiny_model(root / "qa", "question-answering", **WIDE),
        "nli": make_tiny_model(root / "nli", "text-classification", labels=NLI_LABELS, **WIDE),
    }


@pytest.fixture(scope="module")
def ner(models: dict[str, Path]) -> Any:
    from jobs.serving.inference import Predictor

    return Predictor(str(models["ner"]), "token-classification", max_batch_tokens=64)


@pytest.fixture(scope="module")
def qa(models: dict[str, Path]) -> Any:
    from jobs.serving.inference import Predictor

    return Predictor(str(models["qa"]), "question-answering", max_batch_tokens=128)


@pytest.fixture(scope="module")
def nli(models: dict[str, Path]) -> Any:
    from jobs.serving.inference import Predictor

    return Predictor(str(models["nli"]), "zero-shot-classification", max_batch_tokens=64)


@pytest.fixture(scope="module")
def reference(models: dict[str, Path]) -> dict[str, Any]:
    """transformers' own pipelines, loaded from the folders (batch size 1)."""
    import transformers

    return {
        "token-classification": transformers.pipeline(
            "token-classification", model=str(models["ner"])
        ),
        "zero-shot-classification": transformers.pipeline(
            "zero-shot-classification", model=str(models["nli"])
        ),
        "feature-extraction": transformers.pipeline("feature-extraction", model=str(models["ner"])),
    }


def request(task: str, body: dict[str, Any]) -> Request:
    return parse_request(json.dumps(body).encode(), task, max_items=256, max_chars=20_000)


def run(predictor: Any, *requests: Request) -> list[Any]:
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


# --- question answering ---------------------------------------------------------------------


def brute_force_best_span(predictor: Any, question: str, context: str) -> tuple[float, str]:
    """The best answer of one window, searched over every (start, end) pair of context tokens:
    softmax over the context tokens and CLS, span score = p(start) * p(end), at most 15
    tokens, widened to whole words."""
    import torch

    tokenizer, model = predictor.tokenizer, predictor.model
    encoded = tokenizer(question, context, return_tensors="pt")
    with torch.inference_mode():
        out = model(**encoded)
    ids = encoded.sequence_ids(0)
    allowed = torch.tensor([s == 1 or i == 0 for i, s in enumerate(ids)])
    start = out.start_logits[0].masked_fill(~allowed, -10000.0).softmax(-1)
    end = out.end_logits[0].masked_fill(~allowed, -10000.0).softmax(-1)
    context_tokens = [i for i, s in enumerate(ids) if s == 1]
    best = max(
        (float(start[s] * end[e]), s, e)
        for s in context_tokens
        for e in context_tokens
        if s <= e < s + 15
    )
    words = encoded.encodings[0]
    first = words.word_to_chars(words.token_to_word(best[1]), 1)[0]
    last = words.word_to_chars(words.token_to_word(best[2]), 1)[1]
    return best[0], context[first:last]


def test_question_answering_finds_the_best_span(qa: Any) -> None:
    question = "Who designed the tower?"
    body = {"inputs": {"question": question, "context": CONTEXT}}
    answer = run(qa, request("question-answering", body))[0]
    assert set(answer) == {"answer", "score", "start", "end"}
    assert answer["answer"] == CONTEXT[answer["start"] : answer["end"]] != ""
    score, text = brute_force_best_span(qa, question, CONTEXT)
    assert answer["answer"] == text and answer["score"] == pytest.approx(score, abs=1e-5)


def test_question_answering_long_contexts_and_top_k_equal_the_unbatched_pipeline(qa: Any) -> None:
    pipe = qa.pipe  # our pipeline, run item by item by transformers' ChunkPipeline machinery
    inputs = [
        {"question": "Where is the Eiffel Tower?", "context": LONG_CONTEXT},
        {"question": "Who designed it?", "context": CONTEXT},
        {"question": "What is it made of?", "context": LONG_CONTEXT[:700]},
    ]
    windows = list(pipe.preprocess(inputs[0], max_seq_len=128))
    assert len(windows) >= 3  # the long context is read in several windows
    for params in ({"top_k": 3}, {"top_k": 4, "handle_impossible_answer": True}, {}):
        ours = run(qa, request("question-answering", {"inputs": inputs, "parameters": params}))
        theirs = [pipe(item, **params) for item in inputs]
        assert_same(ours[0], theirs)
        for item, answers in zip(inputs, ours[0], strict=True):
            for answer in answers if isinstance(answers, list) else [answers]:
                assert answer["answer"] == item["context"][answer["start"] : answer["end"]]
        if params.get("top_k", 1) > 1:
            assert all(len(answers) == params["top_k"] for answers in ours[0])
    assert qa.describe()["max_seq_len"] == 128


def test_question_answering_windows_must_fit(qa: Any) -> None:
    def refusal(body: dict[str, Any]) -> RequestError:
        with pytest.raises(RequestError) as caught:
            qa.check(request("question-answering", body))
        return caught.value

    item = {"question": "Who designed it?", "context": LONG_CONTEXT}
    exc = refusal({"inputs": item, "parameters": {"max_seq_len": 512}})
    assert exc.status == 422 and exc.field == "parameters.max_seq_len"
    exc = refusal({"inputs": [item], "parameters": {"doc_stride": 125}})
    assert exc.status == 422 and exc.field == "parameters.doc_stride"
    long_question = {"question": "why " * 200, "context": CONTEXT}
    exc = refusal({"inputs": [item, long_question], "parameters": {"max_question_len": 130}})
    assert exc.field == "inputs[1].question"
    # a long question is cut to max_question_len (64) tokens and still answered
    answer = run(qa, request("question-answering", {"inputs": long_question}))[0]
    assert answer["answer"] == CONTEXT[answer["start"] : answer["end"]]


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
    from jobs.serving.inference import Predictor

    folder = make_tiny_model(tmp_path / "sentiment", "text-classification")
    with pytest.raises(ValueError, match="entailment label"):
        Predictor(str(folder), "zero-shot-classification")


# --- feature extraction ---------------------------------------------------------------------


def test_feature_extraction_is_the_pipelines_and_embeddings_stay(
    models: dict[str, Path], reference: dict[str, Any]
) -> None:
    import numpy as np

    from jobs.serving.inference import Predictor

    features = Predictor(str(models["ner"]), "feature-extraction", max_batch_tokens=64)
    ours = run(features, request("feature-extraction", {"inputs": TEXTS}))[0]
    theirs = reference["feature-extraction"](TEXTS, truncation=True)
    for a, b in zip(ours, theirs, strict=True):
        assert np.array(a).shape == np.array(b).shape
        assert np.allclose(np.array(a), np.array(b), atol=1e-4)
    assert np.array(ours[3]).shape == (1, 128, 32)  # truncated to the model's length
    single = run(features, request("feature-extraction", {"inputs": TEXTS[2]}))[0]
    assert np.array(single).shape == np.array(theirs[2]).shape
    assert features.describe()["hidden_size"] == 32
    pooled = Predictor(str(models["ner"]), "embeddings", 4096)
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


# --- requests -------------------------------------------------------------------------------


def test_request_defaults() -> None:
    assert request("token-classification", {"inputs": "x"}).params == {
        "aggregation_strategy": "simple",
        "ignore_labels": None,
        "stride": None,
    }
    qa = request("question-answering", {"inputs": [{"question": "q?", "context": "c"}]})
    assert qa.texts == ["q?"] and qa.pairs == ["c"] and not qa.single
    assert qa.params == {
        "top_k": 1,
        "handle_impossible_answer": False,
        "max_answer_len": 15,
        "doc_stride": None,
        "max_seq_len": None,
        "max_question_len": 64,
    }
    zero = request(
        "zero-shot-classification", {"inputs": "x", "parameters": {"candidate_labels": "a, b,,"}}
    )
    assert zero.params == {
        "candidate_labels": ["a", "b"],
        "hypothesis_template": "This example is {}.",
        "multi_label": False,
    }
    agg = request(
        "token-classification", {"inputs": "x", "parameters": {"aggregation_strategy": "MAX"}}
    )
    assert agg.params["aggregation_strategy"] == "max"
    assert request("feature-extraction", {"inputs": ["a", "b"]}).params == {}


QA_ITEM = {"question": "q?", "context": "some context"}


@pytest.mark.parametrize(
    ("task", "body", "status", "field", "words"),
    [
        ("question-answering", {"inputs": {"context": "c"}}, 422, "inputs.question", "missing"),
        (
            "question-answering",
            {"inputs": [QA_ITEM, QA_ITEM, {"question": "q", "context": ""}]},
            422,
            "inputs[2].context",
            "empty",
        ),
        ("question-answering", {"inputs": "just text"}, 422, "inputs", "question and context"),
        (
            "question-answering",
            {"inputs": {**QA_ITEM, "answer": "x"}},
            422,
            "inputs",
            "unknown field(s) answer",
        ),
        (
            "question-answering",
            {"inputs": {"question": "q", "context": "x" * 20_001}},
            413,
            "inputs.context",
            "20,001 characters",
        ),
        (
            "question-answering",
            {"inputs": QA_ITEM, "parameters": {"top_k": 51}},
            422,
            "parameters.top_k",
            "at most 50",
        ),
        (
            "question-answering",
            {"inputs": QA_ITEM, "parameters": {"max_answer_len": 0}},
            422,
            "parameters.max_answer_len",
            "at least 1",
        ),
        (
            "question-answering",
            {"inputs": QA_ITEM, "parameters": {"handle_impossible_answer": "yes"}},
            422,
            "parameters.handle_impossible_answer",
            "must be bool",
        ),
        (
            "token-classification",
            {"inputs": "x", "parameters": {"aggregation_strategy": "longest"}},
            422,
            "parameters.aggregation_strategy",
            "one of none, simple",
        ),
        (
            "token-classification",
            {"inputs": "x", "parameters": {"aggregation_strategy": "none", "stride": 8}},
            422,
            "parameters.stride",
            "other than none",
        ),
        (
            "token-classification",
            {"inputs": "x", "parameters": {"ignore_labels": "O"}},
            422,
            "parameters.ignore_labels",
            "must be an array",
        ),
        (
            "token-classification",
            {"inputs": "x", "parameters": {"ignore_labels": ["O", 3]}},
            422,
            "parameters.ignore_labels[1]",
            "must be a string",
        ),
        (
            "zero-shot-classification",
            {"inputs": "x"},
            422,
            "parameters.candidate_labels",
            "required",
        ),
        (
            "zero-shot-classification",
            {"inputs": "x", "parameters": {"candidate_labels": [f"l{i}" for i in range(33)]}},
            413,
            "parameters.candidate_labels",
            "33 labels; the limit is 32",
        ),
        (
            "zero-shot-classification",
            {"inputs": "x", "parameters": {"candidate_labels": ["a", " "]}},
            422,
            "parameters.candidate_labels[1]",
            "empty",
        ),
        (
            "zero-shot-classification",
            {"inputs": "x", "parameters": {"candidate_labels": " , "}},
            422,
            "parameters.candidate_labels",
            "no label",
        ),
        (
            "zero-shot-classification",
            {
                "inputs": "x",
                "parameters": {"candidate_labels": "a", "hypothesis_template": "It is"},
            },
            422,
            "parameters.hypothesis_template",
            '"{}"',
        ),
        (
            "zero-shot-classification",
            {
                "inputs": "x",
                "parameters": {"candidate_labels": "a", "hypothesis_template": "{} {x}"},
            },
            422,
            "parameters.hypothesis_template",
            '"{}"',
        ),
        (
            "feature-extraction",
            {"inputs": "x", "parameters": {"normalize": True}},
            422,
            "parameters.normalize",
            "known: none",
        ),
    ],
)
def test_bad_requests_of_the_new_tasks(
    task: str, body: dict[str, Any], status: int, field: str, words: str
) -> None:
    with pytest.raises(RequestError) as caught:
        request(task, body)
    exc = caught.value
    assert (exc.status, exc.field) == (status, field) and words in exc.message, exc.message


SURROGATE = "\\ud800"  # JSON's escape of a lone surrogate: valid JSON, no UTF-8 encoding


@pytest.mark.parametrize(
    ("task", "raw", "field"),
    [
        ("text-classification", '{"inputs": "%s"}', "inputs"),
        (
            "text-classification",
            '{"inputs": [{"text": "a", "text_pair": "b%s"}]}',
            "inputs[0].text_pair",
        ),
        ("fill-mask", '{"inputs": ["[MASK] ok", "x %s [MASK]"]}', "inputs[1]"),
        ("embeddings", '{"inputs": {"text": "%s"}}', "inputs.text"),
        ("feature-extraction", '{"inputs": "a%sb"}', "inputs"),
        ("token-classification", '{"inputs": ["ok", "%s"]}', "inputs[1]"),
        (
            "token-classification",
            '{"inputs": "ok", "parameters": {"ignore_labels": ["%s"]}}',
            "parameters.ignore_labels[0]",
        ),
        (
            "token-classification",
            '{"inputs": "ok", "parameters": {"aggregation_strategy": "%s"}}',
            "parameters.aggregation_strategy",
        ),
        (
            "question-answering",
            '{"inputs": {"question": "%s?", "context": "c"}}',
            "inputs.question",
        ),
        (
            "question-answering",
            '{"inputs": [{"question": "q", "context": "%s"}]}',
            "inputs[0].context",
        ),
        (
            "zero-shot-classification",
            '{"inputs": "%s", "parameters": {"candidate_labels": "a"}}',
            "inputs",
        ),
        (
            "zero-shot-classification",
            '{"inputs": "x", "parameters": {"candidate_labels": ["a", "b%s"]}}',
            "parameters.candidate_labels[1]",
        ),
        (
            "zero-shot-classification",
            '{"inputs": "x", "parameters": {"candidate_labels": "a, %s"}}',
            "parameters.candidate_labels",
        ),
        (
            "zero-shot-classification",
            '{"inputs": "x", "parameters": '
            '{"candidate_labels": "a", "hypothesis_template": "%s {}"}}',
            "parameters.hypothesis_template",
        ),
    ],
)
def test_a_lone_surrogate_is_a_4xx_naming_the_field(task: str, raw: str, field: str) -> None:
    body = (raw % SURROGATE).encode()
    with pytest.raises(RequestError) as caught:
        parse_request(body, task, max_items=256, max_chars=20_000)
    exc = caught.value
    assert 400 <= exc.status < 500 and exc.field == field, (exc.status, exc.field, exc.message)
    json.dumps(exc.body()).encode("utf-8")  # the answer itself encodes
    assert "surrogate" in exc.message


def test_unknown_names_with_a_lone_surrogate_are_echoed_safely() -> None:
    for raw in (b'{"inputs": "x", "\\ud800": 1}', b'{"inputs": "x", "parameters": {"\\udfff": 1}}'):
        with pytest.raises(RequestError) as caught:
            parse_request(raw, "text-classification", max_items=256, max_chars=20_000)
        assert caught.value.status == 422
        json.dumps(caught.value.body(), ensure_ascii=False).encode("utf-8")


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


def test_ignore_labels_are_bounded() -> None:
    body = {"inputs": "x", "parameters": {"ignore_labels": ["O"] * 65}}
    with pytest.raises(RequestError) as caught:
        request("token-classification", body)
    assert caught.value.status == 413 and caught.value.field == "parameters.ignore_labels"
