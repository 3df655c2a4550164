"""The tokenizer job's driver against a real registry (no Ray): it trains, saves a folder
AutoTokenizer loads, registers it with lineage; bad input fails the job and leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.runtime import driver
from orchestrator.config import load_settings
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec
from tests.conftest import MARS


@pytest.fixture
def env(orch_home: Path, registry_url: str, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("ORCH_REGISTRY_URL", registry_url)
    return Registry(registry_url)


def run(reg: Registry, data: dict, **tok: object) -> tuple[int, object]:
    spec = parse_spec(
        {"kind": "tokenizer", "name": "tok", "data": data, "tokenizer": {"vocab_size": 1000, **tok}}
    )
    with reg.session() as s:
        job_id = store.create_job(
            s, kind="tokenizer", name=spec.name, spec=spec.model_dump(mode="json"), resources={}
        ).id
        store.transition(s, job_id, JobStatus.STARTING, "test")
    rc = driver.run_job(job_id)
    with reg.session() as s:
        job = store.get_job(s, job_id)
        assert (rc == 0) == (job.status == JobStatus.SUCCEEDED)
        return job_id, job


def artifacts() -> list[Path]:
    root = load_settings().resolved_artifact_root
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.mark.parametrize(
    "algorithm,mask", [("wordpiece", "[MASK]"), ("bpe", "<mask>"), ("unigram", "[MASK]")]
)
def test_trains_registers_and_loads_with_autotokenizer(
    env: Registry, algorithm: str, mask: str
) -> None:
    from transformers import AutoTokenizer

    job_id, job = run(env, {"files": [str(MARS)], "max_lines": 1500}, algorithm=algorithm)
    assert job.status == JobStatus.SUCCEEDED, job.error
    with env.session() as s:
        row = store.get_tokenizer(s, "tok")
        assert (row.version, row.algorithm, row.vocab_size, row.job_id) == (
            1,
            algorithm,
            1000,
            job_id,
        )
        assert row.dataset.num_rows == {"train": 1500} and len(row.dataset.fingerprint) == 64
        assert row.dataset.files[0]["path"] == str(MARS)
    tok = AutoTokenizer.from_pretrained(row.artifact_uri)
    assert len(tok) == 1000 and tok.mask_token == mask and tok.model_max_length == 512
    ids = tok("John Carter of Virginia", "a princess of Mars")["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    assert tokens[0] == tok.cls_token and tokens[-1] == tok.sep_token
    assert tok.unk_token not in tokens[1:-1]  # a real vocabulary, not a 5-token one
    assert job.result["tokenizer"] == "tok:1"


def test_versions_count_up_and_folders_are_per_version(env: Registry) -> None:
    _, first = run(env, {"files": [str(MARS)], "max_lines": 300})
    _, second = run(env, {"files": [str(MARS)], "max_lines": 300})
    assert (first.result["tokenizer"], second.result["tokenizer"]) == ("tok:1", "tok:2")
    assert Path(first.result["artifact_uri"]).name == "v1"
    assert Path(second.result["artifact_uri"]).name == "v2"
    with env.session() as s:
        assert len(store.list_datasets(s)) == 1  # same content, one dataset row


def test_reads_a_named_column_of_jsonl_and_csv(env: Registry, tmp_path: Path) -> None:
    lines = MARS.read_text().splitlines()[:400]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("\n".join(json.dumps({"id": i, "body": t}) for i, t in enumerate(lines)))
    csv_file = tmp_path / "c.csv"
    csv_file.write_text(
        "id,body\n" + "\n".join(f'{i},"{t.replace(chr(34), "")}"' for i, t in enumerate(lines))
    )
    for path in (jsonl, csv_file):
        _, job = run(env, {"files": [str(path)], "column": "body"})
        assert job.status == JobStatus.SUCCEEDED, job.error


@pytest.mark.parametrize(
    "content,column,message",
    [
        (b"", "text", "the corpus is empty"),
        (b"\n   \n\n", "text", "the corpus is empty"),
        (b"good line\n\xff\xfe bad bytes\n", "text", "not valid UTF-8"),
        (b'{"body": "x"}\n', "text", "c.jsonl:1: no column 'text' (found: body)"),
        (b'{"text": "x"}\nnot json\n', "text", "c.jsonl:2: not valid JSON"),
    ],
)
def test_bad_input_fails_the_job_and_registers_nothing(
    env: Registry, tmp_path: Path, content: bytes, column: str, message: str
) -> None:
    suffix = ".jsonl" if content.startswith(b"{") else ".txt"
    path = tmp_path / f"c{suffix}"
    path.write_bytes(content)
    _, job = run(env, {"files": [str(path)], "column": column})
    assert job.status == JobStatus.FAILED
    assert message in job.error
    assert str(path.name) in job.error or "corpus is empty" in job.error
    with env.session() as s:
        assert store.list_tokenizers(s) == [] and store.list_datasets(s) == []
    assert artifacts() == []


def test_a_cancelled_job_does_not_publish(env: Registry) -> None:
    spec = parse_spec(
        {
            "kind": "tokenizer",
            "name": "tok",
            "data": {"files": [str(MARS)], "max_lines": 200},
            "tokenizer": {"vocab_size": 500},
        }
    )
    with env.session() as s:
        job_id = store.create_job(
            s, kind="tokenizer", name="tok", spec=spec.model_dump(mode="json"), resources={}
        ).id
        store.transition(s, job_id, JobStatus.STARTING, "test")
        store.transition(s, job_id, JobStatus.CANCELLED, "cancelled before the driver ran")
    assert driver.run_job(job_id) == 1
    with env.session() as s:
        assert store.list_tokenizers(s) == []
    assert artifacts() == []


def test_publish_for_a_job_cancelled_mid_run_leaves_no_rows_or_folders(env: Registry) -> None:
    from jobs.data.readers import fingerprint_files
    from jobs.runtime.context import DatasetFacts, JobContext

    job_id = new_running_job(env)
    ctx = JobContext(job_id, env, load_settings().resolved_artifact_root)
    staging = ctx.staging_dir()
    (staging / "tokenizer.json").write_text("{}")
    with env.session() as s:  # the user cancels while the job trains
        store.transition(s, job_id, JobStatus.CANCELLED, "cancelled by user")

    facts = DatasetFacts(fingerprint_files([str(MARS)]), "text", {"train": 1})
    with pytest.raises(RuntimeError, match="no longer running"):
        ctx.publish_tokenizer(
            staging, "tok", facts, algorithm="bpe", vocab_size=1, vocab_hash="h", params={}
        )
    with env.session() as s:
        assert store.list_tokenizers(s) == []
        assert store.list_datasets(s) == []
        assert store.get_job(s, job_id).status == JobStatus.CANCELLED
    assert artifacts() == [] and not staging.exists()


def test_finish_for_a_job_cancelled_mid_run_records_nothing(env: Registry) -> None:
    """The evaluate kind finishes through the same checked path: no metrics, no SUCCEEDED."""
    from jobs.runtime.context import JobContext

    job_id = new_running_job(env)
    ctx = JobContext(job_id, env, load_settings().resolved_artifact_root)
    with env.session() as s:
        store.transition(s, job_id, JobStatus.CANCELLED, "cancelled by user")
    rows = [{"name": "accuracy", "value": 0.9, "split": "eval"}]
    with pytest.raises(RuntimeError, match="no longer running"):
        ctx.finish("evaluated m:1", {"accuracy": 0.9}, metrics=rows)
    with env.session() as s:
        assert store.job_metrics(s, job_id) == []
        assert store.get_job(s, job_id).status == JobStatus.CANCELLED


def test_finish_records_metrics_and_the_result_together(env: Registry) -> None:
    from jobs.runtime.context import JobContext

    job_id = new_running_job(env)
    ctx = JobContext(job_id, env, load_settings().resolved_artifact_root)
    ctx.finish("evaluated m:1", {"accuracy": 0.9}, [{"name": "accuracy", "value": 0.9}])
    with env.session() as s:
        job = store.get_job(s, job_id)
        assert job.status == JobStatus.SUCCEEDED and job.result == {"accuracy": 0.9}
        assert [(m.name, m.value) for m in store.job_metrics(s, job_id)] == [("accuracy", 0.9)]


def new_running_job(reg: Registry) -> int:
    with reg.session() as s:
        job_id = store.create_job(s, kind="tokenizer", name="tok", spec={}, resources={}).id
        store.transition(s, job_id, JobStatus.STARTING, "test")
        store.transition(s, job_id, JobStatus.RUNNING, "test")
    return job_id
