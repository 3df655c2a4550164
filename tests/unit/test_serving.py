"""Serving without Ray: request validation, options, inference on a tiny real model, the
registry's endpoint rows and the CLI's error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.serving.requests import Request, RequestError, parse_request
from orchestrator.cli import cli
from orchestrator.registry import Registry, store
from orchestrator.registry.models import DeploymentStatus
from orchestrator.specs.serving import ServeOptions, parse_autoscale
from tests.conftest import make_tiny_model


def parse(body: object, task: str = "text-classification") -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_request(raw, task, max_items=256, max_chars=20_000)


def refused(body: object, task: str = "text-classification") -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(body, task)
    return caught.value


# --- requests -------------------------------------------------------------------------------


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


def test_serve_options() -> None:
    assert parse_autoscale("1:4") == (1, 4)
    with pytest.raises(ValueError, match="MIN:MAX"):
        parse_autoscale("4")
    with pytest.raises(ValueError, match="MIN <= MAX"):
        ServeOptions(task="fill-mask", autoscale=(3, 1))
    with pytest.raises(ValueError, match="dtype: int8 quantization starts from float32"):
        ServeOptions(task="text-classification", quantize="int8", dtype="bfloat16")
    options = ServeOptions(task="text-classification", max_batch_size=16)
    # the longest valid body fits under the cap (every input and pair at the limit)
    longest = json.dumps(
        {"inputs": [{"text": "\u00e9" * 20_000, "text_pair": "\u00e9" * 20_000}] * 256}
    )
    assert len(longest.encode()) < options.max_body_bytes < 100 * 2**20
    # Serve silently caps a batch at max_ongoing_requests (default 5)
    assert options.max_ongoing_requests >= options.max_batch_size


# --- inference on a tiny real model ---------------------------------------------------------


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("cls"), "text-classification")


def scores(result: object) -> list[float]:
    """Every score in a (possibly nested) answer, in order."""
    if isinstance(result, dict):
        return [result["score"]]
    return [x for item in result for x in scores(item)]  # type: ignore[attr-defined]


def test_token_budget_batches_give_the_same_answers_in_order(classifier: Path) -> None:
    from jobs.serving.inference import Predictor

    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    whole = Predictor(str(classifier), "text-classification", max_batch_tokens=100_000)
    small = Predictor(str(classifier), "text-classification", max_batch_tokens=64)
    assert len(small.chunks([3, 60, 8, 2])) == 2  # the long text goes alone
    requests = [
        Request(texts[:2], params={"top_k": 2}),
        Request(texts[2:3], single=True, params={"top_k": 1}),
        Request(texts[3:], params={"top_k": 1}),
    ]
    a, b = whole.run(requests), small.run(requests)
    assert len(a[0]) == 2 and len(a[0][0]) == 2  # two inputs, top 2 labels each
    assert len(a[1]) == 1 and isinstance(a[1][0], dict)  # a single input comes unwrapped
    assert {item["label"] for item in a[0][0]} == {"negative", "positive"}
    assert scores(a) == pytest.approx(scores(b), abs=1e-5)
    assert whole.describe()["labels"] == ["negative", "positive"]


def test_bfloat16_gives_the_same_labels(classifier: Path) -> None:
    import torch

    from jobs.serving.inference import Predictor, resolve_dtype

    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float16", "cpu") == torch.float16
    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    request = [Request(texts, params={"top_k": 2})]
    full = Predictor(str(classifier), "text-classification", 4096)
    half = Predictor(str(classifier), "text-classification", 4096, dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert (full.describe()["dtype"], half.describe()["dtype"]) == ("float32", "bfloat16")
    a, b = full.run(request)[0], half.run(request)[0]
    assert [x[0]["label"] for x in a] == [x[0]["label"] for x in b]
    assert scores(a) == pytest.approx(scores(b), abs=0.02)  # bfloat16 keeps ~3 digits


def test_a_texts_answer_does_not_depend_on_a_pair_in_its_batch(classifier: Path) -> None:
    from jobs.serving.inference import Predictor

    predictor = Predictor(str(classifier), "text-classification", 4096)
    alone = Request(["a plain sentence"], single=True, params={"top_k": 2})
    paired = Request(["first part"], pairs=["second part"], single=True, params={"top_k": 2})
    together = predictor.run([alone, paired])
    assert scores(together[0]) == pytest.approx(scores(predictor.run([alone])[0]), abs=1e-6)
    assert scores(together[1]) == pytest.approx(scores(predictor.run([paired])[0]), abs=1e-6)


@pytest.mark.gpu
def test_on_a_gpu_auto_is_half_precision_with_the_same_labels(classifier: Path) -> None:
    import torch

    from jobs.serving.inference import Predictor

    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    request = [Request(texts, params={"top_k": 2})]
    cpu = Predictor(str(classifier), "text-classification", 4096)
    gpu = Predictor(str(classifier), "text-classification", device="cuda")
    assert next(gpu.model.parameters()).dtype in (torch.bfloat16, torch.float16)
    a, b = cpu.run(request)[0], gpu.run(request)[0]
    assert [x[0]["label"] for x in a] == [x[0]["label"] for x in b]
    assert scores(a) == pytest.approx(scores(b), abs=0.02)


def test_fill_mask_and_embeddings(tmp_path: Path, classifier: Path) -> None:
    from jobs.serving.inference import Predictor

    mlm = Predictor(str(make_tiny_model(tmp_path / "mlm", "fill-mask")), "fill-mask", 4096)
    request = Request(["the [MASK] was good", "two [MASK] and [MASK]"], params={"top_k": 3})
    one, two = mlm.run([request])[0]
    assert len(one) == 3 and {"score", "token", "token_str", "sequence"} <= set(one[0])
    assert "[MASK]" not in one[0]["sequence"] and one[0]["score"] >= one[1]["score"]
    assert len(two) == 2 and len(two[0]) == 3  # two masks: candidates for each
    with pytest.raises(RequestError, match="no \\[MASK\\] token"):
        mlm.check(Request(["nothing to fill"], single=True))
    with pytest.raises(RequestError, match="inputs\\[1\\]: its \\[MASK\\] token lies beyond"):
        mlm.check(Request(["a [MASK] here", "word " * 200 + "[MASK]"]))  # 128 tokens at most
    emb = Predictor(str(classifier), "embeddings", 4096)
    vectors = emb.run([Request(["a", "b c"], params={"normalize": True})])[0]
    assert len(vectors) == 2 and len(vectors[0]) == 32
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0, abs=1e-4)


def test_only_safetensors_weights_load(tmp_path: Path, classifier: Path) -> None:
    import shutil

    from jobs.serving.inference import Predictor

    folder = tmp_path / "pickled"
    shutil.copytree(classifier, folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="no .safetensors"):
        Predictor(str(folder), "text-classification", 4096)


# --- registry rows and CLI error paths ------------------------------------------------------


def test_endpoint_rows_and_rollback_history(registry_url: str) -> None:
    reg = Registry(registry_url)
    with reg.session() as s:
        v1 = store.add_model_version(s, name="m", task="text-classification", artifact_uri="/a")
        v2 = store.add_model_version(s, name="m", task="text-classification", artifact_uri="/b")
        store.set_alias(s, "m", 1, "production")
        with pytest.raises(Exception, match="no previous version"):
            store.previous_alias_holder(s, "m", "production")
        store.set_alias(s, "m", 2, "production")
        assert store.previous_alias_holder(s, "m", "production") == 1
        store.save_deployment(
            s,
            "m",
            model_version_id=v1.id,
            alias="production",
            route="/models/m",
            status=DeploymentStatus.RUNNING,
            task="text-classification",
        )
        store.save_deployment(s, "m", model_version_id=v2.id)
    with reg.session() as s:
        rows = store.list_deployments(s)
        assert len(rows) == 1 and rows[0].model_version_id == v2.id
        store.save_deployment(s, "m", status=DeploymentStatus.DELETED)
    with reg.session() as s:
        assert store.live_deployment(s, "m") is None
        assert len(store.list_deployments(s, include_deleted=True)) == 1


def test_cli_error_paths(cli_api: object) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["predict", "nope", "hello"])
    assert result.exit_code == 2 and "no endpoint named nope" in result.stderr
    result = runner.invoke(cli, ["endpoints", "list", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []
    result = runner.invoke(cli, ["serve", "m", "--replicas", "2", "--autoscale", "1:3"])
    assert result.exit_code == 2 and "not both" in result.stderr
    result = runner.invoke(cli, ["serve", "m", "--autoscale", "3"])
    assert result.exit_code == 2 and "MIN:MAX" in result.stderr
    result = runner.invoke(cli, ["serve", "missing@production"])
    assert result.exit_code == 2 and "missing@production is not registered" in result.stderr
    result = runner.invoke(cli, ["models", "rollback", "missing"])
    assert result.exit_code == 2 and "not registered" in result.stderr
