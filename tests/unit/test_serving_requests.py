"""Request parsing and validation for every task (the Hugging Face inference JSON), without
torch: the input shapes, each task's parameters and defaults, and the 4xx that names the
field of a bad request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs.serving.requests import Request, RequestError, parse_request
from tests.unit.serving_helpers import request


def parse(body: object, task: str = "text-classification") -> Request:
    return request(task, body)


def refused(body: object, task: str = "text-classification") -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(body, task)
    return caught.value


# --- the input shapes -----------------------------------------------------------------------


def test_the_three_input_shapes() -> None:
    one = parse({"inputs": "a fine film"})
    assert one.texts == ["a fine film"] and one.single and one.pairs is None
    assert one.params == {"top_k": 1}
    many = parse({"inputs": ["good", "bad"], "parameters": {"top_k": 2}})
    assert many.texts == ["good", "bad"] and not many.single and many.params["top_k"] == 2
    pair = parse({"inputs": [{"text": "He left.", "text_pair": "He went away."}]})
    assert pair.texts == ["He left."] and pair.pairs == ["He went away."]
    assert parse({"inputs": "a [MASK] day"}, "fill-mask").params == {"top_k": 5}
    assert parse({"inputs": "x"}, "embeddings").params == {"normalize": True}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"\xff\xfe", 400, "not valid JSON"),
        (["a list"], 422, "JSON object"),
        ({"text": "hi"}, 422, "unknown field(s) text"),
        ({"parameters": {}}, 422, '"inputs" is missing'),
        ({"inputs": 42}, 422, "inputs must be a string"),
        ({"inputs": ["ok", 7]}, 422, "inputs[1] must be a string"),
        ({"inputs": ""}, 422, "inputs is empty"),
        ({"inputs": ["ok", "   "]}, 422, "inputs[1] is empty"),
        ({"inputs": []}, 422, "empty list"),
        ({"inputs": "x" * 100_000}, 413, "100,000 characters"),
        ({"inputs": ["x"] * 1000}, 413, "1000 inputs"),
        ({"inputs": "x", "parameters": {"top_k": "3"}}, 422, "top_k must be int"),
        ({"inputs": "x", "parameters": {"top_k": True}}, 422, "top_k must be int"),
        ({"inputs": "x", "parameters": {"top_k": 0}}, 422, "at least 1"),
        ({"inputs": "x", "parameters": {"temperature": 1}}, 422, "unknown parameter"),
        ({"inputs": "x", "parameters": [1]}, 422, "must be an object"),
        ({"inputs": [{"text": "a", "text_pair": "b"}, "c"]}, 422, "every input"),
        ({"inputs": {"text_pair": "b"}}, 422, "inputs.text is missing"),
        ({"inputs": {"text": "a", "label": 1}}, 422, "unknown field(s) label"),
        (b"[" * 100_000, 400, "nested too deeply"),
    ],
)
def test_bad_requests_get_a_4xx_that_names_the_field(body: object, status: int, words: str) -> None:
    exc = refused(body)
    assert exc.status == status and words in exc.message, exc.message
    assert exc.body()["error"] == exc.message
    if status != 400 and words != "JSON object":  # those concern the whole body
        assert exc.field and exc.body()["field"] == exc.field, exc.message


def test_pairs_only_for_classification() -> None:
    exc = refused({"inputs": {"text": "a [MASK]", "text_pair": "b"}}, "fill-mask")
    assert exc.status == 422 and "only for text-classification" in exc.message


# --- the parameters of the pipeline tasks ---------------------------------------------------


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


def test_ignore_labels_are_bounded() -> None:
    body = {"inputs": "x", "parameters": {"ignore_labels": ["O"] * 65}}
    with pytest.raises(RequestError) as caught:
        request("token-classification", body)
    assert caught.value.status == 413 and caught.value.field == "parameters.ignore_labels"
