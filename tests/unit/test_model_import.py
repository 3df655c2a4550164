"""`orch models import` on real folders and a real SQLite registry; which endpoint tasks a
model version can serve; and the requests `orch predict` builds for each task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from orchestrator import endpoints
from orchestrator.cli import cli
from orchestrator.cli.serve import prediction_rows, request_body
from orchestrator.errors import UsageError
from orchestrator.registry import Registry, store
from orchestrator.specs.serving import servable_tasks, task_of_architectures
from tests.conftest import make_tiny_model, minilm_path


@pytest.fixture(autouse=True)
def _api(cli_api: object) -> None:
    """Every `orch` command here talks to a real API server on the test's own registry."""


def orch(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def registry(home: Path) -> Registry:
    return Registry(f"sqlite:///{home / 'registry.db'}")


def test_a_model_folder_imports_with_its_task_fingerprint_and_lineage(orch_home: Path) -> None:
    folder = minilm_path()
    code, out, err = orch("models", "import", str(folder), "--name", "minilm", "--alias", "base")
    assert code == 0, err
    shown = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert shown["model"] == "minilm:1" and shown["task"] == "feature-extraction"
    assert "minilm@base now points at v1" in err
    copied = Path(shown["artifact_uri"])
    assert (copied / "model.safetensors").is_file() and (copied / "tokenizer.json").is_file()
    assert (copied / "1_Pooling" / "config.json").is_file()  # sub-folders come along
    assert not list(copied.rglob("*.bin"))

    code, out, _ = orch("models", "show", "minilm@base", "--format", "json")
    version = json.loads(out)
    assert version["task"] == "feature-extraction" and version["aliases"] == "base"
    assert version["lineage"]["imported_from"] == str(folder.resolve())
    assert version["lineage"]["fingerprint"] == shown["fingerprint"]

    # the same files import as the next version with the same fingerprint
    code, out, _ = orch("models", "import", str(folder), "--name", "minilm", "--format", "json")
    again = json.loads(out)
    assert again["model"] == "minilm:2" and again["fingerprint"] == shown["fingerprint"]


def test_pickled_weights_are_refused_and_never_copied(orch_home: Path, tmp_path: Path) -> None:
    only_pickle = tmp_path / "pickled"
    only_pickle.mkdir()
    shutil.copy(minilm_path() / "config.json", only_pickle)
    shutil.copy(minilm_path() / "tokenizer.json", only_pickle)
    (only_pickle / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    code, _, err = orch("models", "import", str(only_pickle), "--name", "pickled")
    assert code == 2
    assert "holds only pickled weights (pytorch_model.bin)" in err and "safetensors" in err
    code, out, _ = orch("models", "list", "--format", "json")
    assert json.loads(out) == []
    assert not list((orch_home / "artifacts").rglob("pytorch_model.bin"))

    both = tmp_path / "both"
    shutil.copytree(minilm_path(), both)
    (both / "pytorch_model.bin").write_bytes(b"pickle")
    code, out, err = orch("models", "import", str(both), "--name", "both", "--format", "json")
    assert code == 0 and "not copied (pickled weights): pytorch_model.bin" in err
    assert not (Path(json.loads(out)["artifact_uri"]) / "pytorch_model.bin").exists()


def test_bad_folders_and_tasks_are_refused_saying_why(orch_home: Path, tmp_path: Path) -> None:
    code, _, err = orch("models", "import", str(tmp_path), "--name", "x")
    assert code == 2 and "has no config.json" in err
    code, _, err = orch(
        "models", "import", str(minilm_path()), "--name", "x", "--task", "fill-mask"
    )
    assert code == 2 and "--task fill-mask disagrees" in err and "BertModel" in err
    code, _, err = orch("models", "import", str(minilm_path()), "--name", "../etc")
    assert code == 2 and "model name" in err

    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(minilm_path() / name, no_tokenizer)
    code, _, err = orch("models", "import", str(no_tokenizer), "--name", "x")
    assert code == 2 and "has no tokenizer" in err

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    code, _, err = orch("models", "import", str(broken), "--name", "x")
    assert code == 2 and "config.json is not valid JSON" in err

    truncated = tmp_path / "truncated"
    shutil.copytree(minilm_path(), truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])  # a download cut short
    code, _, err = orch("models", "import", str(truncated), "--name", "x")
    assert code == 2 and f"{weights} is not a valid safetensors file" in err, err

    classifier = make_tiny_model(tmp_path / "classifier", "text-classification")
    assert orch("models", "import", str(minilm_path()), "--name", "enc")[0] == 0
    code, _, err = orch("models", "import", str(classifier), "--name", "enc")
    assert code == 2 and "holds feature-extraction versions" in err
    assert not list((orch_home / "artifacts" / ".staging").iterdir())


def test_what_each_model_task_can_serve(orch_home: Path, tmp_path: Path) -> None:
    assert task_of_architectures(["BertForTokenClassification"]) == "token-classification"
    assert task_of_architectures(["DistilBertForQuestionAnswering"]) == "question-answering"
    assert task_of_architectures(["MPNetModel"]) == "feature-extraction"
    assert task_of_architectures(["T5ForConditionalGeneration"]) is None
    assert servable_tasks("text-classification") == (
        "text-classification",
        "zero-shot-classification",
        "feature-extraction",
        "embeddings",
    )
    assert servable_tasks("feature-extraction") == ("feature-extraction", "embeddings")

    classifier = make_tiny_model(tmp_path / "sentiment", "text-classification")
    assert orch("models", "import", str(classifier), "--name", "sentiment")[0] == 0
    with registry(orch_home).session() as session:
        version = store.get_model_version(session, "sentiment")
        endpoints.check_servable(version, "feature-extraction")
        with pytest.raises(UsageError, match="no entailment class"):
            endpoints.check_servable(version, "zero-shot-classification")
        with pytest.raises(UsageError, match="not token-classification"):
            endpoints.check_servable(version, "token-classification")


def given(**options: object) -> dict[str, object]:
    base: dict[str, object] = {
        "texts": (),
        "pairs": (),
        "questions": (),
        "contexts": (),
        "labels": None,
        "template": None,
        "multi_label": False,
        "aggregation": None,
        "top_k": None,
    }
    return {**base, **options}


def test_predict_builds_each_tasks_request() -> None:
    assert request_body("text-classification", given(texts=("a",), top_k=2)) == {
        "inputs": ["a"],
        "parameters": {"top_k": 2},
    }
    assert request_body("text-classification", given(texts=("a",), pairs=("b",))) == {
        "inputs": [{"text": "a", "text_pair": "b"}]
    }
    assert request_body("question-answering", given(questions=("q1", "q2"), contexts=("c",))) == {
        "inputs": [{"question": "q1", "context": "c"}, {"question": "q2", "context": "c"}]
    }
    assert request_body(
        "zero-shot-classification",
        given(texts=("t",), labels="sport, politics,", template="About {}.", multi_label=True),
    ) == {
        "inputs": ["t"],
        "parameters": {
            "candidate_labels": ["sport", "politics"],
            "hypothesis_template": "About {}.",
            "multi_label": True,
        },
    }
    assert request_body("token-classification", given(texts=("t",), aggregation="max")) == {
        "inputs": ["t"],
        "parameters": {"aggregation_strategy": "max"},
    }
    assert request_body("feature-extraction", given(texts=("t",))) == {"inputs": ["t"]}


@pytest.mark.parametrize(
    ("task", "options", "words"),
    [
        ("question-answering", {"questions": ("q",)}, "--question Q --context C"),
        ("question-answering", {"questions": ("a", "b", "c"), "contexts": ("x", "y")}, "one each"),
        ("zero-shot-classification", {"texts": ("t",)}, "needs --labels"),
        ("text-classification", {"texts": ("t",), "labels": "a,b"}, "--labels: not for"),
        ("embeddings", {"texts": ("t",), "top_k": 3}, "--top-k: not for"),
        ("fill-mask", {}, "give the text(s)"),
        ("text-classification", {"texts": ("a", "b"), "pairs": ("c",)}, "one each"),
    ],
)
def test_predict_refuses_options_its_task_cannot_use(
    task: str, options: dict[str, object], words: str
) -> None:
    with pytest.raises(click.UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        request_body(task, given(**options))


def test_predict_tables_for_each_task() -> None:
    entities = [[{"entity_group": "person", "score": 0.9, "word": "ada", "start": 0, "end": 3}]]
    assert prediction_rows("token-classification", entities)[0]["entity"] == "person"
    answer = [{"answer": "london", "score": 0.5, "start": 12, "end": 18}]
    assert prediction_rows("question-answering", answer)[0]["answer"] == "london"
    zero = [{"sequence": "s", "labels": ["a", "b"], "scores": [0.7, 0.3]}]
    assert [r["label"] for r in prediction_rows("zero-shot-classification", zero)] == ["a", "b"]
    states = [[[[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]]]
    row = prediction_rows("feature-extraction", states)[0]
    assert (row["tokens"], row["dims"]) == (3, 2)
