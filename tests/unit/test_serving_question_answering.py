"""Question answering without Ray (transformers 5 has no such pipeline): our pipeline,
batched across requests, against the same pipeline run unbatched by transformers' own
machinery and against a brute-force span search; and the windows a request must fit."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.serving.requests import RequestError
from tests.unit.serving_helpers import CONTEXT, LONG_CONTEXT, assert_same, request, run

pytest_plugins = ["tests.unit.serving_fixtures"]


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
