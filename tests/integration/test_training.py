"""Pretraining and fine-tuning on the session's real Ray cluster (2 CPUs), end to end."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator import submission
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec
from tests.conftest import MARS, SHARED_DATA, shared_data
from tests.integration.conftest import run_in_process
from tests.integration.conftest import run_spec as run

pytestmark = pytest.mark.integration

SMALL_TRAIN = {"batch_size": 16, "eval_batch_size": 64, "logging_steps": 5}
TWO_WORKERS = {"num_workers": 2, "cpus_per_worker": 0.5, "data_cpus": 0.5}


@pytest.fixture(scope="module")
def tokenizer(ray_cluster: dict) -> str:
    _, outcome = run(
        ray_cluster,
        {
            "kind": "tokenizer",
            "name": "mlm-tok",
            "data": {"files": [str(MARS)]},
            "tokenizer": {"vocab_size": 3000},
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    return "mlm-tok"


@pytest.mark.slow
def test_finetune_minilm_on_sst2_beats_chance(
    ray_cluster: dict, minilm: str, sst2_classifier: dict
) -> None:
    """MiniLM fine-tuned on 640 SST-2 rows for one epoch (the shared classifier's job)."""
    job_id = sst2_classifier["job_id"]
    with ray_cluster["registry"].session() as s:
        version = store.get_model_version(s, sst2_classifier["name"])
        evals = [m for m in store.job_metrics(s, job_id, "accuracy") if m.split == "eval"]
    assert version.metrics["accuracy"] > 0.6  # chance on SST-2 dev is 0.51
    assert version.metrics["accuracy"] == max(m.value for m in evals)  # the best one
    assert version.base_model == minilm and version.dataset_id is not None
    # one worker, 640 rows: the driver tokenised them in memory (data.pipeline auto)
    assert sst2_classifier["outcome"].result["pipeline"] == "in-memory"


@pytest.mark.slow
def test_mrpc_sentence_pairs(ray_cluster: dict, minilm: str) -> None:
    mrpc = shared_data(SHARED_DATA / "mrpc")
    _, outcome = run(
        ray_cluster,
        {
            "kind": "finetune",
            "name": "mrpc-tiny",
            "base": {"path": minilm},
            "data": {
                "train": {"files": [str(mrpc / "train.jsonl")]},
                "eval": {"files": [str(mrpc / "dev.jsonl")]},
                "max_rows": 160,
                "columns": {"text": "sentence1", "text_pair": "sentence2"},
                "max_length": 64,
            },
            "labels": ["not_equivalent", "equivalent"],
            "metrics": ["accuracy", "f1"],
            "train": {**SMALL_TRAIN, "max_steps": 8, "eval_steps": 8},
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with ray_cluster["registry"].session() as s:
        version = store.get_model_version(s, "mrpc-tiny")
    assert {"accuracy", "f1"} <= set(version.metrics)
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(version.artifact_uri).id2label == {
        0: "not_equivalent",
        1: "equivalent",
    }


def _train_worker_pids(cluster: dict, ray_job_id: str) -> list[int]:
    """PIDs of the live Ray Train workers of one job, asked of this cluster by its address
    (an address-less call fails when another Ray cluster runs on the machine)."""
    from ray.util.state import list_actors

    from orchestrator.ray_client.connection import jobs_client

    info = cluster["info"]
    core_job_id = jobs_client(info).get_job_info(ray_job_id).job_id
    actors = list_actors(
        address=info.dashboard_url,
        filters=[
            ("class_name", "=", "RayTrainWorker"),
            ("state", "=", "ALIVE"),
            ("job_id", "=", core_job_id),
        ],
    )
    return [a.pid for a in actors if a.pid]


TINY_MLM = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "max_positions": 64}


def pretrain_spec(name: str, tokenizer: str, scaling: dict, **train: object) -> dict:
    return {
        "kind": "pretrain",
        "name": name,
        "tokenizer": tokenizer,
        "model": TINY_MLM,
        "data": {"train": {"files": [str(MARS)]}, "eval_fraction": 0.02, "max_length": 64},
        "train": {**SMALL_TRAIN, "batch_size": 8, "max_steps": 40, "eval_steps": 10, **train},
        "scaling": scaling,
        "retries": 2,
    }


def wait_for_checkpoints(reg: Registry, job_id: int, past_step: int = 22) -> None:
    """Until the job has logged a training loss past ``past_step``: with a checkpoint every
    10 steps, at least one complete checkpoint is then registered with Ray."""
    deadline = time.monotonic() + 300
    while True:
        with reg.session() as s:
            steps = [m.step for m in store.job_metrics(s, job_id, "loss") if m.split == "train"]
            status = store.get_job(s, job_id).status
        if steps and max(steps) > past_step:
            return
        assert not JobStatus(status).terminal, status
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.5)


@pytest.mark.slow
def test_fsdp_shards_the_model_and_a_killed_worker_resumes_from_its_sharded_checkpoint(
    ray_cluster: dict, tokenizer: str
) -> None:
    """FSDP2 on CPU over gloo, 2 workers: each rank holds half of the parameters, a worker
    killed mid-run resumes from the sharded checkpoint with the step count continuing, the
    loss falls, and the registered (whole, safetensors) model serves."""
    from orchestrator import endpoints
    from tests.integration.test_serving import SMALL, http

    reg: Registry = ray_cluster["registry"]
    job_id = submission.submit_spec(
        reg,
        # lr 1e-3: at the default 5e-5 this tiny model's loss stays at ln(vocab) for 40 steps
        # and "the loss falls" would be a coin toss
        parse_spec(
            pretrain_spec("sharded", tokenizer, {**TWO_WORKERS, "strategy": "fsdp"}, lr=1e-3)
        ),
    )
    wait_for_checkpoints(reg, job_id)
    with reg.session() as s:
        ray_job_id = store.get_job(s, job_id).ray_job_id
    pids = _train_worker_pids(ray_cluster, ray_job_id)
    assert len(pids) == 2, pids
    os.kill(pids[-1], signal.SIGKILL)
    outcome = submission.follow(reg, job_id, lambda e: None, lambda p: None, timeout=600)
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with reg.session() as s:
        job = store.get_job(s, job_id)
        # state changes only (notes, such as "first training step done", change none)
        reasons = [(e.to_status, e.reason) for e in job.events if e.from_status != e.to_status]
        version = store.get_model_version(s, "sharded")
        losses = [m.value for m in store.job_metrics(s, job_id, "loss") if m.split == "train"]
    if not any(status == JobStatus.RETRYING for status, _ in reasons):
        from orchestrator.ray_client.logs import job_logs

        logs = job_logs(ray_cluster["info"], job.ray_job_id)
        lines = [ln for ln in logs.splitlines() if "RETRY" in ln or "Error" in ln or "died" in ln]
        pytest.fail(f"no RETRYING event after killing {pids[-1]}: {reasons}\n" + "\n".join(lines))
    retry = next(r for status, r in reasons if status == JobStatus.RETRYING)
    resumed_at = int(re.search(r"checkpoint at step (\d+)", retry).group(1))
    assert resumed_at >= 10  # not from step 0
    assert [s for s, _ in reasons][-3:] == ["RETRYING", "RUNNING", "SUCCEEDED"]
    assert version.metrics["global_step"] == 40  # the count continued; it did not restart
    assert sum(losses[-2:]) < sum(losses[:2])  # logged every 5 steps
    # each rank held half of the model (FSDP shards evenly, padding a dimension if odd)
    per_rank = job.result["params_per_rank"]
    whole = version_parameters(version.artifact_uri)
    assert len(per_rank) == 2 and all(abs(n - whole / 2) <= 0.01 * whole for n in per_rank)
    assert (Path(version.artifact_uri) / "model.safetensors").is_file()
    url = endpoints.deploy(ray_cluster["settings"], reg, "sharded", **SMALL)
    try:
        status, answer, _ = http(url, {"inputs": "the red [MASK] of mars"})
        assert status == 200 and len(answer) == 5 and "[MASK]" not in answer[0]["sequence"]
    finally:
        endpoints.delete(ray_cluster["settings"], reg, "sharded")


def version_parameters(folder: str) -> int:
    """The parameter count of a registered model folder, loaded as a user would."""
    import transformers

    model = transformers.AutoModelForMaskedLM.from_pretrained(folder, use_safetensors=True)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.slow
def test_a_killed_driver_is_requeued_and_resumes_from_its_checkpoint(
    ray_cluster: dict, tokenizer: str
) -> None:
    """The driver SIGKILLed mid-training (as the OOM killer or a lost node would): with
    retries left the job is requeued, and the next attempt resumes from the latest complete
    checkpoint of the first: the step count continues and the job succeeds."""
    from tests.integration.test_scheduler import driver_pid

    reg: Registry = ray_cluster["registry"]
    one_worker = {"num_workers": 1, "cpus_per_worker": 1.0, "data_cpus": 0.5}
    job_id = submission.submit_spec(
        reg, parse_spec(pretrain_spec("driver-killed", tokenizer, one_worker))
    )
    wait_for_checkpoints(reg, job_id)
    os.kill(driver_pid(reg, job_id), signal.SIGKILL)
    outcome = submission.follow(reg, job_id, lambda e: None, lambda p: None, timeout=600)
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with reg.session() as s:
        job = store.get_job(s, job_id)
        events = [(e.to_status, e.reason) for e in job.events]
        version = store.get_model_version(s, "driver-killed")
    assert job.attempts == 2, events
    retry = next(r for status, r in events if status == JobStatus.RETRYING)
    assert "driver died" in retry and "attempt 2 of 3" in retry, retry
    statuses = [s for s, _ in events]
    assert statuses[statuses.index("RETRYING") :][:3] == ["RETRYING", "QUEUED", "STARTING"]
    assert sum(r.startswith("first training step done") for _, r in events) == 2  # 1 a start
    resumed = next(r for _, r in events if r.startswith("attempt 2:"))
    assert int(re.search(r"resumed from step (\d+)", resumed).group(1)) >= 10, resumed
    assert version.metrics["global_step"] == 40  # the count continued; it did not restart
    assert version.job_id == job_id


def finetune(base: str, files: list[str], **extra: object) -> dict:
    return {
        "kind": "finetune",
        "name": "bad",
        "base": {"path": base},
        "data": {"train": {"files": files}, **extra.pop("data", {})},
        **extra,
    }


def test_bad_data_fails_with_a_message_that_names_the_problem(
    in_process: Registry, minilm: str, tmp_path: Path
) -> None:
    tsv = tmp_path / "rows.tsv"
    tsv.write_text("sentence\tlabel\ngood film\t1\nbad film\t0\n")
    out_of_range = tmp_path / "labels.tsv"
    out_of_range.write_text("sentence\tlabel\ngood film\t1\nbad film\t7\n")
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("sentence\tlabel\ncaf\xe9\t1\n".encode("latin-1"))

    error = run_in_process(in_process, finetune(minilm, [str(tsv)]))
    assert "no column 'text'" in error and "found: sentence, label" in error
    error = run_in_process(
        in_process,
        finetune(
            minilm,
            [str(out_of_range)],
            data={"columns": {"text": "sentence"}},
            labels=["negative", "positive"],
        ),
    )
    assert "label 7 is out of range" in error
    error = run_in_process(in_process, finetune(minilm, [str(empty)]))
    assert f"{empty}: the file is empty" in error
    error = run_in_process(
        in_process, finetune(minilm, [str(latin1)], data={"columns": {"text": "sentence"}})
    )
    assert f"{latin1}:2: not valid UTF-8" in error
    error = run_in_process(in_process, finetune(str(tmp_path / "no-such-model"), [str(tsv)]))
    assert "no-such-model does not exist" in error


def test_a_save_to_disk_folder_feeds_the_pipeline(
    in_process: Registry, minilm: str, sst2: Path, tmp_path: Path
) -> None:
    """`format: hf` reads a `datasets` folder through ray.data.from_huggingface."""
    import datasets
    import ray.data

    from jobs.data.pipeline import prepare
    from orchestrator.specs.training import DataSpec, ScalingSpec

    rows = [line.split("\t") for line in (sst2 / "dev.tsv").read_text().splitlines()[1:201]]
    folder = tmp_path / "sst2-hf"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"sentence": [r[0] for r in rows[:150]], "label": [int(r[1]) for r in rows[:150]]}
            ),
            "validation": datasets.Dataset.from_dict(
                {"sentence": [r[0] for r in rows[150:]], "label": [int(r[1]) for r in rows[150:]]}
            ),
        }
    ).save_to_disk(str(folder))
    spec = DataSpec.model_validate(
        {
            "train": {"files": [str(folder)], "format": "hf", "hf_split": "train"},
            "eval": {"files": [str(folder)], "format": "hf", "hf_split": "validation"},
            "columns": {"text": "sentence"},
        }
    )
    streaming = ScalingSpec(num_workers=2, cpus_per_worker=0.5)  # no in-memory for 2 workers
    data = prepare(spec, "classification", minilm, ["negative", "positive"], streaming)
    assert isinstance(data.eval, ray.data.Dataset)
    assert (data.splits["train"].rows, data.splits["eval"].rows) == (150, 50)
    batch = next(iter(data.eval.iter_batches(batch_size=8, batch_format="numpy")))
    assert set(batch) == {"input_ids", "labels"} and batch["labels"].dtype.kind == "i"


def test_streaming_and_in_memory_pipelines_hold_the_same_tokenised_rows(
    ray_cluster: dict, minilm: str, tmp_path: Path
) -> None:
    """The driver counts rows and labels itself (``tally``, pyarrow, no Ray task), and an
    in-memory pipeline reads and tokenises with the same parsers and UDF in the driver: in
    every format, with ``max_rows`` and with a split by fraction, the counts are what Ray Data
    reads, and both pipelines hold the same tokenised rows with the same labels."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.data.in_memory import TokenizedRows
    from jobs.data.pipeline import prepare
    from orchestrator.specs.training import DataSpec, ScalingSpec

    texts = [f"row {i} {'good' if i % 3 else 'bad'} film" for i in range(700)]
    labels = ["pos" if i % 3 else "neg" for i in range(700)]
    (tmp_path / "a.tsv").write_text(
        "sentence\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in zip(texts, labels, strict=True))
    )
    (tmp_path / "b.csv").write_text(
        "text,label\n" + "".join(f'"{t}, quoted",{i % 2}\n' for i, t in enumerate(texts))
    )
    (tmp_path / "c.jsonl").write_text(
        "\n".join(f'{{"text": "{t}", "label": {i % 4}}}' for i, t in enumerate(texts)) + "\n"
    )
    (tmp_path / "g.jsonl").write_text(  # numeric strings: Ray's pandas reader makes them ints
        "\n".join(f'{{"text": "{t}", "label": "{i % 2}"}}' for i, t in enumerate(texts)) + "\n"
    )
    pq.write_table(pa.table({"text": texts, "label": labels}), tmp_path / "d.parquet")
    (tmp_path / "e.txt").write_text("\n".join(t if i % 7 else " " for i, t in enumerate(texts)))
    datasets.Dataset.from_dict({"text": texts, "label": labels}).save_to_disk(tmp_path / "f")
    cases = [
        ({"files": [str(tmp_path / "a.tsv")]}, {"text": "sentence"}, "classification"),
        ({"files": [str(tmp_path / "b.csv")]}, {}, "classification"),
        ({"files": [str(tmp_path / "c.jsonl")]}, {}, "classification"),
        ({"files": [str(tmp_path / "g.jsonl")]}, {}, "classification"),
        ({"files": [str(tmp_path / "d.parquet")]}, {}, "classification"),
        ({"files": [str(tmp_path / "e.txt")]}, {}, "mlm"),
        ({"files": [str(tmp_path / "f")], "format": "hf"}, {}, "classification"),
    ]

    def rows(split: Any) -> list[tuple]:
        batches = split.iter_batches(batch_size=256, batch_format="numpy")
        return sorted(
            (tuple(int(i) for i in ids), int(batch["labels"][n]) if "labels" in batch else None)
            for batch in batches
            for n, ids in enumerate(batch["input_ids"])
        )

    one_worker = ScalingSpec(num_workers=1, data_cpus=0.5)
    variants = [(files, columns, task, 250, None) for files, columns, task in cases]
    variants.append((*cases[0], None, cases[0][0]))  # an eval file of its own, all rows
    for files, columns, task, max_rows, evaluated in variants:
        spec = {"train": files, "eval": evaluated, "columns": columns, "max_rows": max_rows}
        streamed, held = (
            prepare(
                DataSpec.model_validate({**spec, "eval_fraction": 0.2, "pipeline": how}),
                task,
                minilm,
                None,
                one_worker,
            )
            for how in ("streaming", "in-memory")
        )
        assert isinstance(held.train, TokenizedRows), files
        assert streamed.splits == held.splits and streamed.label_names == held.label_names
        for split in ("train", "eval"):
            expected = rows(getattr(streamed, split))  # what Ray Data read and tokenised
            assert len(expected) == streamed.splits[split].rows, (files, max_rows, split)
            assert rows(getattr(held, split)) == expected, (files, max_rows, split)


@pytest.mark.slow
def test_evaluate_a_registered_model(ray_cluster: dict, sst2: Path, sst2_classifier: dict) -> None:
    """Scores the shared SST-2 classifier; metrics rows land in the registry."""
    job_id, outcome = run(
        ray_cluster,
        {
            "kind": "evaluate",
            "name": "dev-200",
            "model": sst2_classifier["name"],  # the latest version
            "data": {
                "files": [str(sst2 / "dev.tsv")],
                "columns": {"text": "sentence"},
                "max_rows": 200,
            },
            "metrics": ["accuracy", "f1", "matthews_correlation"],
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    with ray_cluster["registry"].session() as s:
        scores = {m.name: m.value for m in store.job_metrics(s, job_id) if m.split == "eval"}
    assert scores["rows"] == 200 and 0.5 < scores["accuracy"] <= 1
    assert {"f1", "matthews_correlation"} <= set(scores)
    assert outcome.result["model"] == sst2_classifier["model"]


@pytest.mark.gpu
def test_fsdp_finetune_on_gpus(ray_cluster: dict, minilm: str, sst2: Path) -> None:
    """FSDP sharding with bf16 on the GPUs of the cluster (skipped without CUDA)."""
    import torch

    _, outcome = run(
        ray_cluster,
        {
            "kind": "finetune",
            "name": "fsdp-tiny",
            "base": {"path": minilm},
            "data": {
                "train": {"files": [str(sst2 / "train.tsv")]},
                "eval": {"files": [str(sst2 / "dev.tsv")]},
                "max_rows": 512,
                "columns": {"text": "sentence"},
            },
            "train": {**SMALL_TRAIN, "max_steps": 10, "eval_steps": 10, "precision": "bf16"},
            "scaling": {
                "num_workers": torch.cuda.device_count(),
                "use_gpu": True,
                "strategy": "fsdp",
            },
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
