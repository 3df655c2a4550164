"""The direct tasks without Ray, on tiny real models: text classification batched by the
token budget, in bfloat16 and on a GPU, fill-mask and embeddings, and the weights a
version may load (safetensors only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.serving.requests import Request, RequestError
from tests.conftest import make_tiny_model


@pytest.fixture(scope="module")
def classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("cls"), "text-classification")


def scores(result: object) -> list[float]:
    """Every score in a (possibly nested) answer, in order."""
    if isinstance(result, dict):
        return [result["score"]]
    return [x for item in result for x in scores(item)]  # type: ignore[attr-defined]


def test_token_budget_batches_give_the_same_answers_in_order(classifier: Path) -> None:
    from jobs.serving.predictors import load_predictor

    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    whole = load_predictor(str(classifier), "text-classification", max_batch_tokens=100_000)
    small = load_predictor(str(classifier), "text-classification", max_batch_tokens=64)
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

    from jobs.serving.model import resolve_dtype
    from jobs.serving.predictors import load_predictor

    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("float16", "cpu") == torch.float16
    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    request = [Request(texts, params={"top_k": 2})]
    full = load_predictor(str(classifier), "text-classification", 4096)
    half = load_predictor(str(classifier), "text-classification", 4096, dtype="bfloat16")
    assert next(half.model.parameters()).dtype == torch.bfloat16
    assert (full.describe()["dtype"], half.describe()["dtype"]) == ("float32", "bfloat16")
    a, b = full.run(request)[0], half.run(request)[0]
    assert [x[0]["label"] for x in a] == [x[0]["label"] for x in b]
    assert scores(a) == pytest.approx(scores(b), abs=0.02)  # bfloat16 keeps ~3 digits


def test_a_texts_answer_does_not_depend_on_a_pair_in_its_batch(classifier: Path) -> None:
    from jobs.serving.predictors import load_predictor

    predictor = load_predictor(str(classifier), "text-classification", 4096)
    alone = Request(["a plain sentence"], single=True, params={"top_k": 2})
    paired = Request(["first part"], pairs=["second part"], single=True, params={"top_k": 2})
    together = predictor.run([alone, paired])
    assert scores(together[0]) == pytest.approx(scores(predictor.run([alone])[0]), abs=1e-6)
    assert scores(together[1]) == pytest.approx(scores(predictor.run([paired])[0]), abs=1e-6)


@pytest.mark.gpu
def test_on_a_gpu_auto_is_half_precision_with_the_same_labels(classifier: Path) -> None:
    import torch

    from jobs.serving.predictors import load_predictor

    texts = ["short", "a much longer sentence " * 10, "mid length text here", "ok"]
    request = [Request(texts, params={"top_k": 2})]
    cpu = load_predictor(str(classifier), "text-classification", 4096)
    gpu = load_predictor(str(classifier), "text-classification", device="cuda")
    assert next(gpu.model.parameters()).dtype in (torch.bfloat16, torch.float16)
    a, b = cpu.run(request)[0], gpu.run(request)[0]
    assert [x[0]["label"] for x in a] == [x[0]["label"] for x in b]
    assert scores(a) == pytest.approx(scores(b), abs=0.02)


def test_fill_mask_and_embeddings(tmp_path: Path, classifier: Path) -> None:
    from jobs.serving.predictors import load_predictor

    mlm = load_predictor(str(make_tiny_model(tmp_path / "mlm", "fill-mask")), "fill-mask", 4096)
    request = Request(["the [MASK] was good", "two [MASK] and [MASK]"], params={"top_k": 3})
    one, two = mlm.run([request])[0]
    assert len(one) == 3 and {"score", "token", "token_str", "sequence"} <= set(one[0])
    assert "[MASK]" not in one[0]["sequence"] and one[0]["score"] >= one[1]["score"]
    assert len(two) == 2 and len(two[0]) == 3  # two masks: candidates for each
    with pytest.raises(RequestError, match="no \\[MASK\\] token"):
        mlm.check(Request(["nothing to fill"], single=True))
    with pytest.raises(RequestError, match="inputs\\[1\\]: its \\[MASK\\] token lies beyond"):
        mlm.check(Request(["a [MASK] here", "word " * 200 + "[MASK]"]))  # 128 tokens at most
    emb = load_predictor(str(classifier), "embeddings", 4096)
    vectors = emb.run([Request(["a", "b c"], params={"normalize": True})])[0]
    assert len(vectors) == 2 and len(vectors[0]) == 32
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0, abs=1e-4)


def test_only_safetensors_weights_load(tmp_path: Path, classifier: Path) -> None:
    import shutil

    from jobs.serving.predictors import load_predictor

    folder = tmp_path / "pickled"
    shutil.copytree(classifier, folder)
    for weights in folder.glob("*.safetensors"):
        weights.rename(folder / "pytorch_model.bin")
    with pytest.raises(FileNotFoundError, match="no .safetensors"):
        load_predictor(str(folder), "text-classification", 4096)
