"""Token classification (NER) on the session's real Ray cluster: MiniLM fine-tuned on a
WNUT-17 excerpt, scored by an evaluate job, and bad tagged data that fails naming the file
and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.registry import JobStatus, Registry, store
from tests.conftest import SHARED_DATA, WNUT_TAGS, make_tiny_model, shared_data
from tests.integration.conftest import SAMPLE_SST2, run_in_process
from tests.integration.conftest import run_spec as run

pytestmark = pytest.mark.integration

SEQEVAL = {"f1", "precision", "recall", "accuracy"}


@pytest.mark.slow
def test_finetune_minilm_for_ner_on_wnut17(ray_cluster: dict, minilm: str, ner_model: dict) -> None:
    from transformers import AutoConfig, AutoTokenizer

    with ray_cluster["registry"].session() as s:
        version = store.get_model_version(s, ner_model["name"])
        base = store.get_model_version(s, "minilm-imported", alias="base")
        base_ref, imported_from = f"minilm-imported:{base.version}", base.imported_from
        job = store.get_job(s, ner_model["job_id"])
        job_seconds = (job.events[-1].at - job.events[0].at).total_seconds()
        rows = store.job_metrics(s, ner_model["job_id"])
    assert version.task == "token-classification"
    # fine-tuned from the imported MiniLM: the lineage names that version and its folder
    assert version.base_model == base_ref and version.base_version_id == base.id
    assert imported_from == str(Path(minilm).resolve())
    assert f"{ner_model['name']}:{version.version}" == ner_model["model"]
    assert version.artifact_uri == ner_model["path"]
    assert set(version.metrics) >= SEQEVAL and version.metrics["global_step"] == 120
    assert job.result["f1"] == round(version.metrics["f1"], 4)  # the result's headline
    assert job.result["pipeline"] == "streaming"  # the fixture's data.pipeline
    eval_loss = [m.value for m in rows if m.split == "eval" and m.name == "loss"]
    assert len(eval_loss) == 3 and eval_loss[-1] < eval_loss[0]  # evaluated at 40, 80, 120
    evals = {(m.name, m.step) for m in rows if m.split == "eval"}
    assert {(name, 120) for name in SEQEVAL} <= evals
    f1s = [m.value for m in rows if m.split == "eval" and m.name == "f1"]
    # the best checkpoint by f1 is registered (re-evaluated: batches may pad differently)
    assert version.metrics["f1"] == pytest.approx(max(f1s), abs=0.01)
    assert 0.8 < version.metrics["accuracy"] <= 1  # most words are O
    folder = Path(ner_model["path"])
    config = AutoConfig.from_pretrained(folder)
    assert [config.id2label[i] for i in range(config.num_labels)] == WNUT_TAGS
    assert config.label2id["B-person"] == 5
    assert list(folder.glob("*.safetensors")) and not list(folder.glob("*.bin"))
    assert AutoTokenizer.from_pretrained(folder).is_fast
    registered = {k: round(v, 3) for k, v in version.metrics.items()}
    trained = (max(m.at for m in rows) - min(m.at for m in rows)).total_seconds()
    print(  # the measured numbers, for the record (pytest -s or -rP)
        f"\nNER: eval loss {[round(v, 3) for v in eval_loss]}, f1 {[round(v, 3) for v in f1s]}, "
        f"registered {registered}; first to last metric {trained:.0f} s, job {job_seconds:.0f} s"
    )


@pytest.mark.slow
def test_evaluate_scores_the_ner_model_on_the_dev_file(ray_cluster: dict, ner_model: dict) -> None:
    wnut = shared_data(SHARED_DATA / "wnut17")
    job_id, outcome = run(
        ray_cluster,
        {
            "kind": "evaluate",
            "name": "wnut17-dev",
            "model": ner_model["model"],
            "data": {"files": [str(wnut / "dev.conll")], "max_rows": 200, "max_length": 64},
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with ray_cluster["registry"].session() as s:
        scores = {m.name: m.value for m in store.job_metrics(s, job_id) if m.split == "eval"}
    assert set(scores) == SEQEVAL | {"rows"} and scores["rows"] == 200
    assert all(0 <= scores[name] <= 1 for name in SEQEVAL) and scores["accuracy"] > 0.8
    assert outcome.result["model"] == ner_model["model"]
    assert set(outcome.result["per_type"]) <= {t[2:] for t in WNUT_TAGS if t != "O"}
    print(f"\nNER evaluate on 200 dev sentences: {scores}")


# --- failures: in the driver, before anything reaches Ray --------------------------------------


def ner_spec(base: str, train: Path, eval_file: Path, **extra: object) -> dict:
    return {
        "kind": "finetune",
        "name": "bad-ner",
        "task": "token-classification",
        "base": {"path": base},
        "data": {"train": {"files": [str(train)]}, "eval": {"files": [str(eval_file)]}},
        **extra,
    }


def test_bad_tagged_data_fails_naming_the_file_and_line(
    in_process: Registry, minilm: str, tmp_path: Path
) -> None:
    good = tmp_path / "good.conll"
    good.write_text("Bob\tB-person\nran\tO\n\nin\tO\nParis\tB-location\n")
    unknown_tag = tmp_path / "unknown.conll"
    unknown_tag.write_text("Bob\tB-person\nran\tO\n\t\nin\tO\nParis\tB-foo\n")
    mismatch = tmp_path / "mismatch.jsonl"
    mismatch.write_text(
        json.dumps({"tokens": ["Bob", "ran"], "tags": ["B-person", "O"]})
        + "\n"
        + json.dumps({"tokens": ["in", "Paris"], "tags": ["O"]})
        + "\n"
    )
    empty = tmp_path / "empty.conll"
    empty.write_text("")
    labels = ["O", "B-person", "B-location"]

    error = run_in_process(in_process, ner_spec(minilm, unknown_tag, good, labels=labels))
    assert f"data.train: {unknown_tag} line 5: tag 'B-foo' is not one of labels" in error
    error = run_in_process(in_process, ner_spec(minilm, good, mismatch))
    assert f"data.eval: {mismatch} line 2: 2 tokens but 1 tags" in error
    error = run_in_process(in_process, ner_spec(minilm, empty, good))
    assert f"data.train: {empty} line 1: the file is empty" in error


@pytest.mark.slow  # it needs the trained NER model
def test_evaluate_checks_tags_and_metrics_against_the_model(
    in_process: Registry, ner_model: dict, tmp_path: Path
) -> None:
    unknown_tag = tmp_path / "dev.conll"
    unknown_tag.write_text("Bob\tB-person\nran\tO\n\nin\tO\nParis\tB-city\n")
    evaluate = {"kind": "evaluate", "name": "bad-eval", "model": ner_model["model"]}
    error = run_in_process(in_process, {**evaluate, "data": {"files": [str(unknown_tag)]}})
    assert f"data: {unknown_tag} line 5: tag 'B-city' is not one of labels ['O'" in error
    error = run_in_process(
        in_process,
        {**evaluate, "data": {"files": [str(unknown_tag)]}, "metrics": ["matthews_correlation"]},
    )
    assert "metrics: ['matthews_correlation'] is not computed for token-classification" in error


@pytest.mark.slow
def test_an_imported_classifier_is_evaluated_like_a_trained_one(
    ray_cluster: dict, tmp_path: Path
) -> None:
    from orchestrator.model_import import import_model

    folder = make_tiny_model(tmp_path / "sentiment", "text-classification")
    settings = ray_cluster["settings"]
    imported = import_model(
        ray_cluster["registry"],
        settings.resolved_artifact_root,
        folder,
        "imported-sentiment",
        alias="candidate",
    )
    assert imported.task == "text-classification"
    job_id, outcome = run(
        ray_cluster,
        {
            "kind": "evaluate",
            "name": "imported-sentiment-dev",
            "model": "imported-sentiment@candidate",
            "data": {
                "files": [str(SAMPLE_SST2 / "dev.tsv")],
                "columns": {"text": "sentence"},
                "max_rows": 64,
            },
            "metrics": ["accuracy", "f1"],
        },
        timeout=300,
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    assert outcome.result["model"] == f"imported-sentiment:{imported.version}"
    with ray_cluster["registry"].session() as s:
        scores = {m.name: m.value for m in store.job_metrics(s, job_id) if m.split == "eval"}
    assert scores["rows"] == 64 and 0 <= scores["accuracy"] <= 1
