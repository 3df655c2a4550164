"""The integration tests' real local Ray cluster (with its scheduler), and the models they
share. The cluster lives for the integration tests only (package scope): the e2e tests that
run after them start their own, and should not share the machine's cores with an idle one."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.runtime import driver
from orchestrator import submission
from orchestrator.errors import NotFoundError
from orchestrator.registry import JobStatus, Registry, store
from orchestrator.specs import parse_spec
from tests.conftest import REPO, SHARED_DATA, minilm_path, shared_data

# The SST-2 excerpt that ships with the project: its first 640 training rows and its dev set
# are byte for byte those of ../shared/data/sst2, and it is there on every machine.
SAMPLE_SST2 = REPO / "jobs" / "sample_data" / "sst2"


@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One real local Ray cluster, started through our own code, with a scheduler serving a
    registry of its own. Integration tests share it; it is stopped after the last of them.
    Tests name this cluster in every Ray call (``info``): other clusters may run beside it."""
    from orchestrator.config import Settings
    from orchestrator.ray_client import local, scheduler_host
    from orchestrator.registry import Registry

    home = tmp_path_factory.mktemp("ray-session") / "home"
    settings = Settings(home=home)
    info, _ = local.start_local_cluster(settings, num_cpus=2)
    registry = Registry(settings.resolved_registry_url)
    try:
        scheduler_host.ensure_scheduler(settings, info)
        yield {"settings": settings, "info": info, "registry": registry}
    finally:
        import ray

        from orchestrator.api.local import stop_servers

        stop_servers(settings)  # the one the `orch` commands of the tests started
        if ray.is_initialized():
            ray.shutdown()
        local.stop_local_cluster(settings)
        shutil.rmtree(home, ignore_errors=True)


def run_spec(cluster: dict, spec: dict, timeout: float = 600) -> tuple[int, submission.Outcome]:
    """Submit a spec to the cluster's queue and follow it to the end: (job id, outcome)."""
    job_id = submission.submit_spec(cluster["registry"], parse_spec(spec))
    outcome = submission.follow(
        cluster["registry"], job_id, lambda e: None, lambda p: None, timeout=timeout
    )
    return job_id, outcome


@pytest.fixture(scope="package")
def minilm() -> str:
    return str(minilm_path())


@pytest.fixture(scope="package")
def sst2() -> Path:
    return shared_data(SHARED_DATA / "sst2")


@pytest.fixture(scope="package")
def sst2_classifier(ray_cluster: dict, minilm: str) -> dict:
    """MiniLM fine-tuned on 640 SST-2 rows (one epoch) by a finetune job, trained once for the
    tests that need a classifier that learned something (training checks its quality, evaluate
    scores it, serving serves it): {"job_id", "outcome", "name", "model"}. Nobody adds
    versions to its name."""
    name = "sst2-minilm-shared"
    job_id, outcome = run_spec(
        ray_cluster,
        {
            "kind": "finetune",
            "name": name,
            "base": {"path": minilm},
            "data": {
                "train": {"files": [str(SAMPLE_SST2 / "train.tsv")]},
                "eval": {"files": [str(SAMPLE_SST2 / "dev.tsv")]},
                "max_rows": 640,
                "columns": {"text": "sentence"},
                "max_length": 64,
            },
            "labels": ["negative", "positive"],
            "train": {
                "batch_size": 16,
                "eval_batch_size": 64,
                "logging_steps": 5,
                "epochs": 1,
                "lr": 1e-4,
                "eval_steps": 20,
            },
            "scaling": {"num_workers": 1, "data_cpus": 0.5},
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    return {"job_id": job_id, "outcome": outcome, "name": name, "model": outcome.result["model"]}


@pytest.fixture(scope="package")
def ner_model(ray_cluster: dict, minilm: str) -> dict:
    """MiniLM fine-tuned for named-entity recognition (token-classification, 13 WNUT-17 tags)
    on 400 WNUT-17 training sentences for 120 steps of 8, scored on 400 dev sentences (a low
    entity f1: WNUT-17 is hard and the budget small); trained once
    for the tests that need a token classifier (training checks it, evaluate scores it,
    serving serves it): {"job_id", "name", "model" (NAME:VERSION), "path" (its artifact
    folder)}. Nobody adds versions to its name. Its base is MiniLM imported with `orch models
    import`'s code (`minilm-imported@base`): a fine-tune from an imported version."""
    from orchestrator.model_import import import_model

    wnut = shared_data(SHARED_DATA / "wnut17")
    settings = ray_cluster["settings"]
    import_model(
        ray_cluster["registry"],
        settings.resolved_artifact_root,
        Path(minilm),
        "minilm-imported",
        alias="base",
    )
    name = "wnut17-minilm-shared"
    job_id, outcome = run_spec(
        ray_cluster,
        {
            "kind": "finetune",
            "name": name,
            "task": "token-classification",
            "base": {"model": "minilm-imported@base"},
            "data": {
                "train": {"files": [str(wnut / "train.conll")]},
                "eval": {"files": [str(wnut / "dev.conll")]},
                "max_rows": 400,
                "max_length": 64,
                # one worker fed by Ray Data (auto holds small data in memory): this fixture
                # keeps that path trained end to end, the length-grouped stream and the early
                # first batch included
                "pipeline": "streaming",
            },
            "train": {
                "batch_size": 8,  # more, smaller steps: entities appear sooner than with 16
                "eval_batch_size": 64,
                "logging_steps": 10,
                "max_steps": 120,
                "eval_steps": 40,
                "lr": 2e-4,
                "warmup_ratio": 0.1,
            },
            "scaling": {"num_workers": 1, "data_cpus": 0.5},
        },
    )
    assert outcome.status == JobStatus.SUCCEEDED, outcome.error
    assert outcome.result is not None
    return {
        "job_id": job_id,
        "name": name,
        "model": outcome.result["model"],
        "path": outcome.result["artifact_uri"],
    }


@pytest.fixture
def in_process(ray_cluster: dict, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Run drivers in this process (on the session cluster's registry) for quick failure
    tests: bad data fails while the driver checks it, before any Ray work."""
    for key, value in ray_cluster["settings"].driver_env().items():
        monkeypatch.setenv(key, value)
    return ray_cluster["registry"]


def run_in_process(reg: Registry, spec: dict) -> str:
    """Run ``spec``'s driver here; it must fail and register no model. Its error."""
    parsed = parse_spec(spec, check_files=False)
    with reg.session() as s:
        job_id = store.create_job(
            s, kind=parsed.kind, name=parsed.name, spec=parsed.model_dump(mode="json"), resources={}
        ).id
        store.transition(s, job_id, JobStatus.STARTING, "test")
    assert driver.run_job(job_id) == 1
    with reg.session() as s:
        job = store.get_job(s, job_id)
        assert job.status == JobStatus.FAILED
        if parsed.kind in ("finetune", "pretrain"):
            with pytest.raises(NotFoundError, match="not registered"):
                store.get_model_version(s, parsed.name)
        return str(job.error)
