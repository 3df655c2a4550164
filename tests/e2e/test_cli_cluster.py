"""The `orch` command as a user runs it, against a cluster it starts with `orch cluster up`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import MARS, REPO, orch_cmd, run_orch

pytestmark = pytest.mark.e2e


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ORCH_", "PYTEST_"))}
    return {
        **env,
        "ORCH_HOME": str(home),
        "ORCH_CONFIG": str(home / "none.yaml"),
        "RAY_USAGE_STATS_ENABLED": "0",
        **extra,
    }


@pytest.fixture(scope="module")
def cli_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = clean_env(tmp_path_factory.mktemp("e2e") / "home")
    up = run_orch(["cluster", "up", "--num-cpus", "2"], env, check=True)
    assert up.stdout.strip().endswith(tuple("0123456789"))  # the GCS address
    yield env
    run_orch(["cluster", "down"], env)


@pytest.fixture(scope="module")
def wordpiece_submit(cli_cluster: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`orch submit jobs/configs/tokenizer-wordpiece.yaml --wait`, run once for the module:
    mars-wordpiece:1 (no other test here registers that name)."""
    proc = run_orch(["submit", "jobs/configs/tokenizer-wordpiece.yaml", "--wait"], cli_cluster)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def wordpiece(wordpiece_submit: subprocess.CompletedProcess[str]) -> str:
    return "mars-wordpiece:1"


def wait_all(env: dict[str, str], ids: list[int], timeout: float = 300) -> dict[int, dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = json.loads(
            run_orch(["jobs", "list", "--limit", "500", "--format", "json"], env, check=True).stdout
        )
        jobs = {r["id"]: r for r in rows if r["id"] in ids}
        if all(j["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") for j in jobs.values()):
            return jobs
        assert time.monotonic() < deadline, f"jobs still running: {jobs}"
        time.sleep(1)


def test_submit_wait_then_query(
    cli_cluster: dict[str, str], wordpiece_submit: subprocess.CompletedProcess[str]
) -> None:
    env, proc = cli_cluster, wordpiece_submit
    job_id = int(proc.stdout.strip())
    assert "RUNNING -> SUCCEEDED" in proc.stderr and "tokenizer: mars-wordpiece:1" in proc.stderr
    listed = json.loads(
        run_orch(["tokenizers", "list", "--format", "json"], env, check=True).stdout
    )
    assert ("mars-wordpiece", 1, 8000) in [
        (t["name"], t["version"], t["vocab_size"]) for t in listed
    ]
    shown = json.loads(
        run_orch(["jobs", "show", str(job_id), "--format", "json"], env, check=True).stdout
    )
    assert shown["status"] == "SUCCEEDED" and shown["result"]["tokenizer"] == "mars-wordpiece:1"
    nodes = json.loads(run_orch(["cluster", "status", "--format", "json"], env, check=True).stdout)
    assert len(nodes) == 1 and nodes[0]["cpus"] == 2.0 and nodes[0]["head"] is True
    logs = run_orch(["jobs", "logs", str(job_id)], env, check=True)
    assert "trained on 2,940 lines" in logs.stdout


def test_a_failing_job_exits_1_and_says_why(cli_cluster: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    proc = run_orch(
        ["submit", "jobs/configs/tokenizer-bpe.yaml", "--set", f"data.files=[{bad}]", "--wait"],
        cli_cluster,
    )
    assert proc.returncode == 1
    assert f"{bad}: not valid UTF-8 at byte 3" in proc.stderr
    assert (
        json.loads(
            run_orch(
                ["tokenizers", "list", "--name", "mars-bpe", "--format", "json"],
                cli_cluster,
                check=True,
            ).stdout
        )
        == []
    )


@pytest.mark.slow
@pytest.mark.postgres
def test_twenty_simultaneous_submits_all_succeed(
    cli_cluster: dict[str, str], fresh_postgres_url: str
) -> None:
    """Twenty `orch submit` processes at once through the API on a PostgreSQL registry: every
    job recorded once and run. (Twenty processes writing one SQLite registry at once are
    tests/unit/test_registry.py's.)"""
    env = {**cli_cluster, "ORCH_REGISTRY_URL": fresh_postgres_url}
    before = {
        r["id"]
        for r in json.loads(
            run_orch(["jobs", "list", "--format", "json", "--limit", "500"], env).stdout or "[]"
        )
    }
    procs = [
        subprocess.Popen(
            [
                *orch_cmd(),
                "submit",
                "jobs/configs/tokenizer-unigram.yaml",
                "--set",
                f"name=concurrent-{i}",
                "--set",
                f"data.files=[{MARS}]",
                "--set",
                "data.max_lines=300",
                "--set",
                "tokenizer.vocab_size=400",
                "--set",
                "resources.cpus=0.5",
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(20)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 20, [err for _, err in outputs]
    assert not any("locked" in err.lower() for _, err in outputs)
    ids = [int(out.strip()) for out, _ in outputs]
    assert len(set(ids)) == 20 and not set(ids) & before
    jobs = wait_all(env, ids)
    assert {j["status"] for j in jobs.values()} == {"SUCCEEDED"}, jobs
    names = {
        t["name"]
        for t in json.loads(
            run_orch(["tokenizers", "list", "--format", "json"], env, check=True).stdout
        )
    }
    assert {f"concurrent-{i}" for i in range(20)} <= names


def test_logs_follow_exits_with_the_job_outcome(
    cli_cluster: dict[str, str], tmp_path: Path
) -> None:
    ok = run_orch(
        ["submit", "jobs/configs/tokenizer-unigram.yaml", "--set", "name=followed"],
        cli_cluster,
        check=True,
    )
    followed = run_orch(["jobs", "logs", ok.stdout.strip(), "-f"], cli_cluster)
    assert followed.returncode == 0 and "trained on 2,940 lines" in followed.stdout
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    bad = run_orch(
        ["submit", "jobs/configs/tokenizer-unigram.yaml", "--set", f"data.files=[{empty}]"],
        cli_cluster,
        check=True,
    )
    failed = run_orch(["jobs", "logs", bad.stdout.strip(), "-f"], cli_cluster)
    assert failed.returncode == 1 and "the corpus is empty" in failed.stderr


@contextmanager
def worker_node(cluster_env: dict[str, str], cpus: int) -> Iterator[None]:
    """A second Ray node on this machine, joined and stopped with cluster/worker.sh."""
    home = Path(cluster_env["ORCH_HOME"])
    state = json.loads((home / "cluster" / "state.json").read_text())
    env = {
        **cluster_env,
        "ORCH_WORKER_NAME": f"w{os.getpid()}",
        "RAY": str(Path(orch_cmd()[0]).parent / "ray"),
    }
    script = str(REPO / "cluster" / "worker.sh")
    start = subprocess.run(
        [script, "start", state["gcs_address"], state["token_path"], f"--num-cpus={cpus}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert start.returncode == 0, start.stderr
        yield
    finally:
        stop = subprocess.run([script, "stop"], env=env, capture_output=True, text=True, timeout=60)
        assert stop.returncode == 0 and "stopped node" in stop.stdout


@pytest.mark.slow
def test_a_two_worker_pretrain_spreads_over_two_nodes_and_registers_a_fill_mask_model(
    cli_cluster: dict[str, str], wordpiece: str
) -> None:
    """A node joined with cluster/worker.sh, then a masked LM pretrained by two Ray Train
    workers placed STRICT_SPREAD (one per node, fed by Ray Data shards): registered as a
    fill-mask model with its tokenizer's lineage, its metrics, and safetensors that load."""
    from transformers import AutoModelForMaskedLM, pipeline

    with worker_node(cli_cluster, cpus=1):
        nodes = json.loads(
            run_orch(["cluster", "status", "--format", "json"], cli_cluster, check=True).stdout
        )
        assert sorted(n["cpus"] for n in nodes) == [1.0, 2.0]
        proc = run_orch(
            [
                "submit",
                "jobs/configs/pretrain-distilbert-mars.yaml",
                *("--set", "name=spread", "--set", f"tokenizer={wordpiece}"),
                *("--set", "train.max_steps=6", "--set", "train.eval_steps=6"),
                *("--set", "train.logging_steps=2"),
                *("--set", "model.layers=2", "--set", "model.hidden=32"),
                *("--set", "model.intermediate=64", "--set", "scaling.num_workers=2"),
                *("--set", "scaling.cpus_per_worker=0.5"),
                *("--set", "scaling.placement=STRICT_SPREAD"),
                *("--format", "json", "--wait"),
            ],
            cli_cluster,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
    job_id = json.loads(proc.stdout)["id"]
    result = show(cli_cluster, "jobs", str(job_id))["result"]
    assert result["worker_nodes"] == 2  # one worker on each node
    assert result["model"] == "spread:1" and result["pipeline"] == "streaming"
    version = show(cli_cluster, "models", "spread:1")
    assert version["task"] == "fill-mask" and version["lineage"]["tokenizer"] == wordpiece
    assert version["metrics"]["global_step"] == 6 and version["metrics"]["perplexity"] > 1
    logged = json.loads(
        run_orch(["jobs", "metrics", str(job_id), "--format", "json"], cli_cluster).stdout
    )
    names = {(m["split"], m["name"]) for m in logged}
    assert {("train", "loss"), ("train", "tokens_per_s"), ("eval", "perplexity")} <= names
    assert ("final", "perplexity") in names
    folder = Path(version["artifact_uri"])
    assert AutoModelForMaskedLM.from_pretrained(folder, use_safetensors=True).config.n_layers == 2
    assert not (folder / "training_args.bin").exists()
    assert len(pipeline("fill-mask", model=str(folder))("the princess of [MASK] smiled")) == 5


def show(env: dict[str, str], noun: str, ref: str) -> dict:
    """``orch NOUN show REF --format json``."""
    return json.loads(run_orch([noun, "show", ref, "--format", "json"], env, check=True).stdout)


def cluster_state(env: dict[str, str]) -> dict:
    """What `orch cluster up` recorded about the cluster of this orch home."""
    return json.loads((Path(env["ORCH_HOME"]) / "cluster" / "state.json").read_text())


def test_address_targets_an_existing_cluster(cli_cluster: dict[str, str], tmp_path: Path) -> None:
    """Another registry (another home) on the module's cluster through --address: its own
    scheduler and API server, the cluster's token, and jobs that run there."""
    from orchestrator.ray_client.cluster_info import reachable

    info = cluster_state(cli_cluster)
    env = clean_env(
        tmp_path / "home",
        ORCH_CLUSTER_ADDRESS=info["gcs_address"],
        ORCH_DASHBOARD_URL=info["dashboard_url"],
        ORCH_RAY_AUTH_TOKEN_PATH=info["token_path"],
    )
    try:
        up = run_orch(["cluster", "up"], env, check=True)
        assert "already running" in up.stderr and up.stdout.strip() == info["gcs_address"]
        proc = run_orch(
            ["submit", "jobs/configs/tokenizer-wordpiece.yaml", "--set", "name=remote", "--wait"],
            env,
        )
        assert proc.returncode == 0, proc.stderr
        assert not (tmp_path / "home" / "cluster" / "state.json").exists()  # no Ray started
        nodes = json.loads(
            run_orch(["cluster", "status", "--format", "json"], env, check=True).stdout
        )
        assert len(nodes) == 1
    finally:  # this home's API server; the module's cluster lives on
        down = run_orch(["cluster", "down"], env)
    assert "stopped 1 API server(s)" in down.stderr and "no local cluster" in down.stderr
    assert reachable(info["gcs_address"])


def test_submit_starts_a_local_cluster_and_down_stops_only_that_one(
    cli_cluster: dict[str, str], tmp_path: Path
) -> None:
    """`orch submit` in a home with no cluster starts one and runs the job there; `orch cluster
    down` then stops every process of it, while the module's cluster beside it lives on."""
    from orchestrator.ray_client.cluster_info import reachable
    from orchestrator.ray_client.local import our_processes

    env = clean_env(tmp_path / "home")
    try:
        proc = run_orch(
            [
                "submit",
                "jobs/configs/tokenizer-bpe.yaml",
                *("--set", "data.max_lines=500", "--set", "tokenizer.vocab_size=600", "--wait"),
            ],
            env,
        )
        assert proc.returncode == 0, proc.stderr
        state = cluster_state(env)
        down = run_orch(["cluster", "down"], env, check=True)
    except BaseException:
        run_orch(["cluster", "down"], env)  # leave no cluster behind
        raise
    assert "stopped" in down.stderr
    # nothing left behind, the Ray client server (which names only the address) included
    assert our_processes(state["temp_dir"], state["gcs_address"]) == []
    assert not reachable(state["gcs_address"])
    assert reachable(cluster_state(cli_cluster)["gcs_address"])  # the other lives
    status = run_orch(["cluster", "status"], env)
    assert status.returncode == 1 and "no cluster is running" in status.stderr
