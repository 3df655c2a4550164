"""The CLI through click's CliRunner (no Ray): exit codes, JSON shapes, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.registry import JobStatus, Registry, store
from tests.api_server import running_api_server
from tests.conftest import MARS, orch_cmd


@pytest.fixture
def reg(
    orch_home: Path, registry_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Registry]:
    """The registry behind a real API server that the CLI talks to as an admin."""
    from orchestrator.client import api

    monkeypatch.setenv("ORCH_REGISTRY_URL", registry_url)
    with running_api_server(tmp_path / "api-home", registry_url) as server:
        for key, value in server.env("admin").items():
            monkeypatch.setenv(key, value)
        api.cache_clear()
        yield server.registry
    api.cache_clear()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def seed(reg: Registry) -> dict[str, int]:
    with reg.session() as s:
        ok = store.create_job(
            s,
            kind="tokenizer",
            name="wp",
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 1}]},
        ).id
        bad = store.create_job(
            s,
            kind="tokenizer",
            name="bpe",
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 1}]},
        ).id
        waiting = store.create_job(
            s,
            kind="tokenizer",
            name="big",
            spec={"kind": "tokenizer"},
            resources={"bundles": [{"CPU": 64}]},
            priority=3,
        ).id
    with reg.session() as s:
        for job_id in (ok, bad):
            store.transition(s, job_id, JobStatus.STARTING, "admitted")
            store.transition(s, job_id, JobStatus.RUNNING, "started")
        store.transition(
            s,
            bad,
            JobStatus.FAILED,
            "the job raised an error",
            error="/data/x.txt: not valid UTF-8 at byte 3",
        )
        dataset = store.upsert_dataset(
            s,
            uri="/data/corpus.txt",
            fingerprint="f" * 64,
            format="text",
            files=[],
            num_rows={"train": 10},
            size_bytes=100,
        )
        store.add_tokenizer(
            s,
            name="wp",
            algorithm="wordpiece",
            vocab_size=8000,
            vocab_hash="h",
            artifact_uri="/a/wp/v1",
            dataset_id=dataset.id,
            job_id=ok,
        )
        store.transition(s, ok, JobStatus.SUCCEEDED, "registered", result={"tokenizer": "wp:1"})
    return {"ok": ok, "bad": bad, "waiting": waiting}


def test_help_imports_no_heavy_libraries() -> None:
    """`orch --help` stays quick because the CLI imports none of the heavy libraries (how
    quick is not asserted: tests share the machine)."""
    proc = subprocess.run([*orch_cmd(), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "submit" in proc.stdout
    probe = (
        "import sys, orchestrator.cli, orchestrator.cli.common; "
        "print(sorted(m for m in ('torch', 'transformers', 'ray', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_validate_reports_all_problems_and_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "kind: tokenizer\nname: t\ndata:\n  files: [nope.txt]\n"
        "tokenizer:\n  vocab_size: 0\n  algorithm: sentencepiece\n"
    )
    code, out, err = invoke("validate", str(spec))
    assert code == 2 and out == ""
    assert "3 problems" in err and "data.files" in err and "tokenizer.vocab_size" in err
    assert "tokenizer.algorithm" in err


def test_validate_ok(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(f"kind: tokenizer\nname: t\ndata:\n  files: [{MARS}]\n")
    assert invoke("validate", str(spec), "--set", "tokenizer.vocab_size=900")[:2] == (
        0,
        "valid tokenizer spec: t\n",
    )


def test_submit_with_a_bad_spec_exits_2_and_records_nothing(reg: Registry, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("kind: tokenizer\nname: t\ndata:\n  files: [nope.txt]\n")
    code, out, err = invoke("submit", str(spec))
    assert code == 2 and "no file matches 'nope.txt'" in err
    with reg.session() as s:
        assert store.list_jobs(s) == []


def test_jobs_list_json_is_an_array_of_objects_with_the_table_columns(reg: Registry) -> None:
    ids = seed(reg)
    code, out, _ = invoke("jobs", "list", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [ids["waiting"], ids["bad"], ids["ok"]]
    assert set(rows[0]) == {
        "id",
        "kind",
        "name",
        "status",
        "priority",
        "submitted_by",
        "created_at",
        "duration_s",
        "summary",
    }
    _, table, _ = invoke("jobs", "list")
    assert table.splitlines()[0].split()[:4] == ["ID", "KIND", "NAME", "STATUS"]
    _, failed, _ = invoke("jobs", "list", "--status", "failed", "--format", "json")
    assert [r["id"] for r in json.loads(failed)] == [ids["bad"]]
    _, limited, _ = invoke(
        "jobs", "list", "--limit", "1", "--kind", "tokenizer", "--format", "json"
    )
    assert len(json.loads(limited)) == 1


def test_jobs_show_says_why_a_job_failed(reg: Registry) -> None:
    ids = seed(reg)
    code, out, _ = invoke("jobs", "show", str(ids["bad"]))
    assert code == 0 and "FAILED" in out and "not valid UTF-8 at byte 3" in out
    assert "QUEUED -> STARTING: admitted" in out
    data = json.loads(invoke("jobs", "show", str(ids["bad"]), "--format", "json")[1])
    assert data["error"] == "/data/x.txt: not valid UTF-8 at byte 3"
    assert [e["to"] for e in data["events"]] == ["QUEUED", "STARTING", "RUNNING", "FAILED"]


def test_unknown_job_exits_2(reg: Registry) -> None:
    code, out, err = invoke("jobs", "show", "999")
    assert code == 2 and out == "" and "job 999 does not exist" in err


def test_why_without_a_scheduler_says_how_to_start_one(reg: Registry) -> None:
    ids = seed(reg)
    out = json.loads(invoke("jobs", "why", str(ids["waiting"]), "--format", "json")[1])
    assert out["asks"] == "64 CPU" and "orch cluster up" in out["reason"]
    done = json.loads(invoke("jobs", "why", str(ids["ok"]), "--format", "json")[1])
    assert done["reason"] == "not waiting: the job is SUCCEEDED"


def test_why_with_a_scheduler_view(reg: Registry) -> None:
    ids = seed(reg)
    from orchestrator.config import load_settings
    from orchestrator.scheduler.service import HEARTBEAT_KEY

    key = HEARTBEAT_KEY.format(key=load_settings().registry_key)
    with reg.session() as s:
        store.put_state(
            s,
            key,
            {
                "total": {"CPU": 2.0},
                "in_use": {"CPU": 1.0},
                "waiting": {str(ids["waiting"]): "can never start: ..."},
            },
        )
    out = json.loads(invoke("jobs", "why", str(ids["waiting"]), "--format", "json")[1])
    assert out["free"] == "1 CPU" and out["reason"] == "can never start: ..."


def test_cancel_a_queued_job(reg: Registry) -> None:
    ids = seed(reg)
    code, _, err = invoke("jobs", "cancel", str(ids["waiting"]))
    assert code == 0 and "cancelled" in err
    assert (
        json.loads(invoke("jobs", "show", str(ids["waiting"]), "--format", "json")[1])["status"]
        == "CANCELLED"
    )
    _, _, again = invoke("jobs", "cancel", str(ids["ok"]))
    assert "already ended (SUCCEEDED)" in again


def test_tokenizers_and_datasets(reg: Registry) -> None:
    seed(reg)
    rows = json.loads(invoke("tokenizers", "list", "--format", "json")[1])
    assert [(r["name"], r["version"], r["vocab_size"]) for r in rows] == [("wp", 1, 8000)]
    shown = json.loads(invoke("tokenizers", "show", "wp:1", "--format", "json")[1])
    assert shown["dataset"]["uri"] == "/data/corpus.txt"
    assert invoke("tokenizers", "show", "wp:7")[0] == 2
    assert invoke("tokenizers", "show", "../x")[0] == 2
    data = json.loads(invoke("datasets", "list", "--format", "json")[1])
    assert data[0]["num_rows"] == {"train": 10} and data[0]["fingerprint"] == "f" * 64


def test_logs_of_a_queued_job_explain_there_is_none_yet(reg: Registry) -> None:
    ids = seed(reg)
    code, out, err = invoke("jobs", "logs", str(ids["waiting"]))
    assert code == 0 and out == "" and "has not started" in err


def seed_models(reg: Registry) -> int:
    with reg.session() as s:
        job_id = store.create_job(
            s, kind="finetune", name="clf", spec={"kind": "finetune"}, resources={}
        ).id
        for version, acc in ((1, 0.81), (2, 0.86)):
            store.add_model_version(
                s,
                name="clf",
                task="text-classification",
                artifact_uri=f"/a/clf/v{version}",
                job_id=job_id,
                metrics={"accuracy": acc},
                base_model="/models/minilm",
            )
        store.add_model_version(
            s, name="mlm", task="fill-mask", artifact_uri="/a/mlm/v1", metrics={"perplexity": 40.0}
        )
        store.add_metrics(
            s,
            job_id,
            [
                {"name": "loss", "value": 0.7 - step / 100, "step": step, "split": "train"}
                for step in (5, 10, 15, 20)
            ]
            + [
                {"name": name, "value": value, "step": 20, "split": "eval"}
                for name, value in (("loss", 0.5), ("accuracy", 0.86))
            ],
        )
    return job_id


def test_models_list_sort_show_and_promote(reg: Registry) -> None:
    seed_models(reg)
    rows = json.loads(invoke("models", "list", "--format", "json")[1])
    assert [(r["name"], r["version"]) for r in rows] == [("clf", 2), ("clf", 1), ("mlm", 1)]
    best = json.loads(invoke("models", "list", "--sort", "accuracy", "--format", "json")[1])
    assert [r["version"] for r in best] == [2, 1] and best[0]["accuracy"] == 0.86
    masked = json.loads(invoke("models", "list", "--task", "fill-mask", "--format", "json")[1])
    assert [r["name"] for r in masked] == ["mlm"]
    code, _, err = invoke("models", "promote", "clf", "1", "--alias", "production")
    assert code == 0 and "clf@production moved to v1" in err
    _, _, err = invoke("models", "promote", "clf", "2", "--alias", "production")
    assert "moved from v1 to v2" in err
    shown = json.loads(invoke("models", "show", "clf@production", "--format", "json")[1])
    assert shown["version"] == 2 and shown["aliases"] == "production"
    assert shown["lineage"]["job"]["kind"] == "finetune"
    assert shown["lineage"]["base_model"] == "/models/minilm"
    assert invoke("models", "show", "clf:9")[0] == 2
    assert invoke("models", "promote", "clf", "1", "--alias", "../x")[0] == 2


def test_jobs_metrics_and_plot(reg: Registry, tmp_path: Path) -> None:
    job_id = seed_models(reg)
    rows = json.loads(invoke("jobs", "metrics", str(job_id), "--format", "json")[1])
    assert len(rows) == 6 and {"step", "epoch", "split", "name", "value"} == set(rows[0])
    only = json.loads(
        invoke("jobs", "metrics", str(job_id), "--name", "accuracy", "--format", "json")[1]
    )
    assert only == [{"step": 20, "epoch": None, "split": "eval", "name": "accuracy", "value": 0.86}]
    png = tmp_path / "curves.png"
    code, _, err = invoke("jobs", "plot", str(job_id), "-o", str(png))
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_submit_refuses_a_job_the_cluster_cannot_hold_even_at_its_largest(
    reg: Registry, tmp_path: Path
) -> None:
    from orchestrator.config import load_settings
    from orchestrator.scheduler.service import HEARTBEAT_KEY

    with reg.session() as s:
        store.put_state(
            s,
            HEARTBEAT_KEY.format(key=load_settings().registry_key),
            {"waiting": {}, "largest": [{"CPU": 2.0}, {"CPU": 4.0}, {"CPU": 4.0}]},
        )
    spec = tmp_path / "s.yaml"
    spec.write_text(f"kind: tokenizer\nname: t\ndata:\n  files: [{MARS}]\nresources:\n  cpus: 6\n")
    code, _, err = invoke("submit", str(spec))
    assert code == 2, err
    assert "can never start on this cluster, even at its largest" in err
    assert "one worker asks for 6 CPU but the largest node has 4 CPU" in err
    with reg.session() as s:
        assert store.list_jobs(s) == []
