"""Every encoder task over real HTTP on the session's Ray cluster, answering what
`transformers.pipeline` answers for the same model and input: the NER model our own job
trained (token classification), and models imported with `orch models import` (tiny ones
built from configs for question answering and zero-shot classification, the real MiniLM for
feature extraction)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import endpoints
from orchestrator.registry import store
from tests.conftest import make_tiny_model, minilm_path, run_orch
from tests.integration.test_serving import SMALL, http

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCES = [
    "Ada Lovelace worked with Charles Babbage in London .",
    "I am going to see Star Wars at the Empire State Building tomorrow with Microsoft people",
    "nothing to see here",
]
CONTEXT = (
    "The Analytical Engine was a proposed mechanical general-purpose computer designed by "
    "the English mathematician Charles Babbage. It was first described in 1837. Ada Lovelace "
    "wrote the first algorithm intended to be carried out by such a machine. "
) * 6  # longer than the tiny model's 128 positions: answered over several windows


def same(ours: Any, theirs: Any, where: str = "answer") -> None:
    """Equal structures, floats within 1e-4."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and set(ours) == set(theirs), f"{where}: {ours} {theirs}"
        for key in theirs:
            same(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list | tuple):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{where}: {ours} {theirs}"
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float) or type(theirs).__name__.startswith("float"):
        assert math.isclose(ours, float(theirs), abs_tol=1e-4), f"{where}: {ours} != {theirs}"
    else:
        assert ours == (theirs.item() if hasattr(theirs, "item") else theirs), where


def pipeline(task: str, folder: str) -> Any:
    """transformers' pipeline for ``task``; for question answering, for which transformers 5
    ships no pipeline, our own pipeline class run one input at a time by transformers'
    pipeline machinery (the unit tests check it against a brute-force span search)."""
    import transformers

    if task == "question-answering":
        from jobs.serving.question_answering import QuestionAnsweringPipeline

        return QuestionAnsweringPipeline(
            model=transformers.AutoModelForQuestionAnswering.from_pretrained(folder),
            tokenizer=transformers.AutoTokenizer.from_pretrained(folder),
            device="cpu",
        )
    return transformers.pipeline(task, model=folder, device="cpu")


@pytest.fixture(scope="module")
def served(
    ray_cluster: dict, ner_model: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """Imported: a tiny QA model, a tiny NLI model (contradiction/neutral/entailment) and
    MiniLM; served with the NER model trained by the `ner_model` job."""
    settings, registry = ray_cluster["settings"], ray_cluster["registry"]
    root = tmp_path_factory.mktemp("tasks")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(ORCH_HOME=str(settings.home), ORCH_CONFIG=str(root / "none.yaml"))
    folders = {
        "tasks-qa": make_tiny_model(root / "qa", "question-answering", seed=3),
        "tasks-nli": make_tiny_model(
            root / "nli",
            "text-classification",
            seed=4,
            labels=["contradiction", "neutral", "entailment"],
        ),
        "tasks-encoder": minilm_path(),
    }
    for name, folder in folders.items():
        out = run_orch(["models", "import", str(folder), "--name", name, "--format", "json"], env)
        assert out.returncode == 0, out.stderr
    with registry.session() as s:
        store.set_alias(s, "tasks-nli", 1, "production")
    deployed = {
        "tasks-ner": ("token-classification", ner_model["model"]),
        "tasks-qa": ("question-answering", "tasks-qa"),
        "tasks-nli": ("zero-shot-classification", "tasks-nli@production"),
        "tasks-encoder": ("feature-extraction", "tasks-encoder"),
    }
    urls = {}
    for name, (task, ref) in deployed.items():
        if name == "tasks-ner":  # the trained model, under an endpoint name of this module
            with registry.session() as s:
                trained = store.get_model_version(s, ref.split(":")[0])
                store.add_model_version(
                    s,
                    name=name,
                    task=task,
                    artifact_uri=trained.artifact_uri,
                    job_id=trained.job_id,
                )
            ref = name
        urls[name] = endpoints.deploy(settings, registry, ref, task=task, **SMALL)
    paths = {"tasks-ner": ner_model["path"], **{k: str(v) for k, v in folders.items()}}
    yield {"urls": urls, "paths": paths, "env": env, **ray_cluster}
    for name in urls:
        endpoints.delete(settings, registry, name)


def test_token_classification_answers_as_the_pipeline_does(served: dict) -> None:
    url, folder = served["urls"]["tasks-ner"], served["paths"]["tasks-ner"]
    ner = pipeline("token-classification", folder)
    status, described, _ = http(url)
    assert status == 200 and described["task"] == "token-classification"
    for strategy in ("none", "simple", "first", "average", "max"):
        status, body, _ = http(
            url, {"inputs": SENTENCES, "parameters": {"aggregation_strategy": strategy}}
        )
        assert status == 200, body
        same(body, ner(SENTENCES, aggregation_strategy=strategy), strategy)
        for sentence, entities in zip(SENTENCES, body, strict=True):
            for entity in entities:
                assert sentence[entity["start"] : entity["end"]].strip()
    status, body, _ = http(url, {"inputs": SENTENCES[0]})  # default: simple, as the HF API
    assert status == 200
    same(body, ner(SENTENCES[0], aggregation_strategy="simple"))


def test_question_answering_answers_from_the_context(served: dict) -> None:
    url, folder = served["urls"]["tasks-qa"], served["paths"]["tasks-qa"]
    qa = pipeline("question-answering", folder)
    question = "Who designed the Analytical Engine?"
    status, body, _ = http(url, {"inputs": {"question": question, "context": CONTEXT}})
    assert status == 200, body
    same(body, qa({"question": question, "context": CONTEXT}))
    assert body["answer"] == CONTEXT[body["start"] : body["end"]]
    status, body, _ = http(
        url,
        {
            "inputs": [
                {"question": question, "context": CONTEXT},
                {"question": "When?", "context": "In 1837."},
            ],
            "parameters": {"top_k": 3, "max_answer_len": 10},
        },
    )
    assert status == 200, body
    same(body[0], qa({"question": question, "context": CONTEXT}, top_k=3, max_answer_len=10))
    assert all(a["answer"] == CONTEXT[a["start"] : a["end"]] for a in body[0])
    status, body, _ = http(url, {"inputs": {"question": question}})
    assert status == 422 and "context" in body["field"]


def test_zero_shot_classification_answers_as_the_pipeline_does(served: dict) -> None:
    url, folder = served["urls"]["tasks-nli"], served["paths"]["tasks-nli"]
    zero_shot = pipeline("zero-shot-classification", folder)
    labels = ["history", "sport", "computers"]
    status, body, _ = http(
        url, {"inputs": SENTENCES[0], "parameters": {"candidate_labels": labels}}
    )
    assert status == 200, body
    same(body, zero_shot(SENTENCES[0], candidate_labels=labels))
    assert sum(body["scores"]) == pytest.approx(1.0, abs=1e-4)
    params = {"candidate_labels": labels, "multi_label": True, "hypothesis_template": "About {}."}
    status, body, _ = http(url, {"inputs": SENTENCES, "parameters": params})
    assert status == 200
    same(body, zero_shot(SENTENCES, **params))
    status, body, _ = http(url, {"inputs": "x", "parameters": {"candidate_labels": ["a"] * 100}})
    assert status == 413 and body["field"] == "parameters.candidate_labels"

    out = run_orch(
        ["predict", "tasks-nli", SENTENCES[0], "--labels", ",".join(labels)], served["env"]
    )
    assert out.returncode == 0, out.stderr
    assert all(label in out.stdout for label in labels) and "answered by tasks-nli:1" in out.stderr


def test_feature_extraction_gives_every_tokens_hidden_state(served: dict) -> None:
    url, folder = served["urls"]["tasks-encoder"], served["paths"]["tasks-encoder"]
    features = pipeline("feature-extraction", folder)
    status, body, _ = http(url, {"inputs": SENTENCES[2]})
    assert status == 200
    same(body, features(SENTENCES[2]))
    assert len(body[0][0]) == 384  # MiniLM's hidden size, per token

    out = run_orch(["predict", "tasks-encoder", "hello world", "--format", "json"], served["env"])
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)[0][0]) == 4  # [CLS] hello world [SEP]


def test_every_task_refuses_text_utf8_cannot_encode(served: dict) -> None:
    lone_surrogate = b'{"inputs": "caf\\ud800"}'
    for name in ("tasks-ner", "tasks-encoder"):
        status, body, _ = http(served["urls"][name], lone_surrogate)
        assert 400 <= status < 500 and body["field"] == "inputs", body
    status, body, _ = http(
        served["urls"]["tasks-qa"], b'{"inputs": {"question": "q\\udfff", "context": "c"}}'
    )
    assert 400 <= status < 500 and "question" in body["field"], body


def test_an_imported_model_serves_and_a_cli_prediction_reads_well(served: dict) -> None:
    out = run_orch(
        ["predict", "tasks-qa", "--question", "When was it described?", "--context", CONTEXT[:300]],
        served["env"],
    )
    assert out.returncode == 0, out.stderr
    assert "ANSWER" in out.stdout and "answered by tasks-qa:1" in out.stderr
    out = run_orch(["serve", "tasks-qa", "--task", "zero-shot-classification"], served["env"])
    assert out.returncode == 2 and "it can be served as question-answering" in out.stderr
    assert Path(served["paths"]["tasks-qa"]).is_dir()
