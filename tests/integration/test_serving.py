"""Serving on the session's real Ray cluster, called over real HTTP: a classifier fine-tuned
by our own job and a fill-mask model, bad inputs, alias promotion under traffic, the API key,
and deletion."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator import endpoints
from orchestrator.ray_client.connection import resolve_cluster
from orchestrator.ray_client.serve import serve_applications
from orchestrator.registry import store
from orchestrator.registry.models import DeploymentStatus
from tests.api_server import running_api_server
from tests.conftest import make_tiny_model, run_orch

# every test needs the shared classifier (a fine-tuning job) and two deployments
pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = {"cpus_per_replica": 0.25, "max_batch_size": 8}


def http(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, parsed JSON body, headers) of a GET (body None) or POST."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


@pytest.fixture(scope="module")
def served(
    ray_cluster: dict, sst2_classifier: dict, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """serve-cls:1 the SST-2 classifier fine-tuned by a finetune job (the shared one's files),
    serve-cls:2 another version, serve-mlm:1 a masked LM; serve-cls@production and serve-mlm
    served. Endpoints are deleted afterwards so that later tests get the cluster's CPUs back."""
    settings, registry = ray_cluster["settings"], ray_cluster["registry"]
    root = tmp_path_factory.mktemp("serving")
    with registry.session() as s:
        trained = store.get_model_version(s, sst2_classifier["name"])
        store.add_model_version(
            s,
            name="serve-cls",
            task="text-classification",
            artifact_uri=trained.artifact_uri,
            job_id=trained.job_id,
        )
        second = make_tiny_model(root / "v2", "text-classification", seed=1)
        store.add_model_version(
            s, name="serve-cls", task="text-classification", artifact_uri=str(second)
        )
        mlm = make_tiny_model(root / "mlm", "fill-mask")
        store.add_model_version(s, name="serve-mlm", task="fill-mask", artifact_uri=str(mlm))
        store.set_alias(s, "serve-cls", 1, "production")
    urls = {
        "serve-cls": endpoints.deploy(settings, registry, "serve-cls@production", **SMALL),
        "serve-mlm": endpoints.deploy(settings, registry, "serve-mlm", **SMALL),
    }
    # the CLI must find the cluster's token by itself: not from this process's Ray settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(ORCH_HOME=str(settings.home), ORCH_CONFIG=str(root / "none.yaml"))
    yield {"urls": urls, "env": env, **ray_cluster}
    for name in urls:
        with registry.session() as s:
            live = store.live_deployment(s, name) is not None
        if live:
            endpoints.delete(settings, registry, name)


def test_a_fine_tuned_classifier_and_a_fill_mask_model_answer_over_http(served: dict) -> None:
    cls, mlm = served["urls"]["serve-cls"], served["urls"]["serve-mlm"]
    status, body, headers = http(cls, {"inputs": "a moving and beautiful film"})
    assert status == 200 and headers["X-Model-Version"] == "serve-cls:1"
    assert len(body) == 1 and body[0]["label"] in ("negative", "positive")
    status, body, _ = http(cls, {"inputs": ["great", "awful"], "parameters": {"top_k": 2}})
    assert status == 200 and [len(b) for b in body] == [2, 2]
    assert sum(item["score"] for item in body[0]) == pytest.approx(1.0, abs=1e-4)
    status, body, _ = http(cls, {"inputs": {"text": "It rained.", "text_pair": "It was wet."}})
    assert status == 200 and body[0]["label"] in ("negative", "positive")
    status, body, _ = http(cls)
    assert status == 200 and body["labels"] == ["negative", "positive"]
    assert body["version"] == "serve-cls:1" and body["task"] == "text-classification"

    status, body, _ = http(mlm, {"inputs": "the princess of [MASK] smiled"})
    assert status == 200 and len(body) == 5 and "[MASK]" not in body[0]["sequence"]

    with served["registry"].session() as s:
        row = store.get_deployment(s, "serve-cls")
        assert row.status == DeploymentStatus.RUNNING and row.url == cls
        assert row.route == "/models/serve-cls" and row.alias == "production"
    out = run_orch(["predict", "serve-cls", "lovely", "dull", "--format", "json"], served["env"])
    assert out.returncode == 0, out.stderr
    assert [len(answer) for answer in json.loads(out.stdout)] == [1, 1]
    out = run_orch(["endpoints", "list", "--format", "json"], served["env"], check=True)
    listed = {row["name"]: row for row in json.loads(out.stdout)}
    assert (
        listed["serve-mlm"]["status"] == "RUNNING" and listed["serve-cls"]["model"] == "serve-cls:1"
    )
    out = run_orch(
        ["endpoints", "show", "serve-cls", "--format", "json"], served["env"], check=True
    )
    shown = json.loads(out.stdout)
    assert shown["serve"]["status"] == "RUNNING" and shown["serve"]["replicas"] == {"RUNNING": 1}
    assert shown["url"] == cls and shown["api_key"] == "none"


def test_bad_inputs_get_a_json_4xx_and_the_replica_keeps_serving(served: dict) -> None:
    url = served["urls"]["serve-cls"]
    bad = [
        (b"{oops", 400),
        ({"inputs": 3}, 422),
        ({"inputs": ""}, 422),
        ({"inputs": "x" * 100_000}, 413),
        ({"inputs": ["fine"] * 1000}, 413),
        ({"inputs": "x", "parameters": {"top_k": "many"}}, 422),
    ]
    for body, expected in bad:
        status, answer, _ = http(url, body)
        assert status == expected and answer["error"], body if len(str(body)) < 80 else "long"
    status, answer, _ = http(served["urls"]["serve-mlm"], {"inputs": "nothing masked"})
    assert status == 422 and "[MASK]" in answer["error"]
    unknown = url.rpartition("/")[0] + "/no-such-model"
    status, answer, _ = http(unknown, {"inputs": "hello"})
    assert status == 404 and "no-such-model" in answer["error"]
    status, answer, _ = http(url, {"inputs": "still here"})
    assert status == 200


def test_promote_and_rollback_under_traffic_fail_no_request(served: dict) -> None:
    url, env = served["urls"]["serve-cls"], served["env"]
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            try:
                status, _body, headers = http(url, {"inputs": ["a fine film", "a dull one"]})
                seen[headers["X-Model-Version"] if status == 200 else f"HTTP {status}"] += 1
                if status != 200:
                    failures.append(str(status))
            except Exception as exc:  # noqa: BLE001 - every failure counts
                failures.append(repr(exc))

    replica = http(url)[1]["replica"]
    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        out = run_orch(["models", "promote", "serve-cls", "2", "--alias", "production"], env)
        assert out.returncode == 0 and "rolled from serve-cls:1 to serve-cls:2" in out.stderr, (
            out.stderr
        )
        after_promote = dict(seen)
        out = run_orch(["models", "rollback", "serve-cls", "--alias", "production"], env)
        assert out.returncode == 0 and "to serve-cls:1" in out.stderr, out.stderr
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert after_promote.get("serve-cls:2", 0) > 0 and seen["serve-cls:1"] > 0
    _status, _body, headers = http(url, {"inputs": "after the rollback"})
    assert headers["X-Model-Version"] == "serve-cls:1"
    assert http(url)[1]["replica"] == replica  # swapped inside the running replica
    with served["registry"].session() as s:
        assert store.get_deployment(s, "serve-cls").model_version.version == 1


def test_promoting_a_version_that_cannot_be_served_leaves_the_endpoint_as_it_is(
    served: dict, tmp_path: Path
) -> None:
    url, env = served["urls"]["serve-cls"], served["env"]
    with served["registry"].session() as s:
        store.add_model_version(
            s, name="serve-cls", task="text-classification", artifact_uri=str(tmp_path / "gone")
        )
    out = run_orch(["models", "promote", "serve-cls", "3", "--alias", "production"], env)
    assert out.returncode == 0, out.stderr
    assert "endpoint serve-cls stays on serve-cls:1" in out.stderr and "missing" in out.stderr
    status, _body, headers = http(url, {"inputs": "still answered"})
    assert status == 200 and headers["X-Model-Version"] == "serve-cls:1"
    with served["registry"].session() as s:
        row = store.get_deployment(s, "serve-cls")
        assert (row.status, row.model_version.version) == (DeploymentStatus.RUNNING, 1)


def test_a_model_that_fails_to_load_is_a_failed_endpoint_that_says_why(
    served: dict, tmp_path: Path
) -> None:
    """Weights that do not fit their config (whole files, so only loading them finds it): the
    replicas fail, the endpoint is FAILED with the cause and nothing keeps retrying. A broken
    weights file is refused before anything is deployed, naming the file."""
    import shutil

    env, settings = served["env"], served["settings"]
    misfit = tmp_path / "misfit"
    shutil.copytree(make_tiny_model(tmp_path / "ok", "text-classification"), misfit)
    config = json.loads((misfit / "config.json").read_text())
    (misfit / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    broken = tmp_path / "broken"
    shutil.copytree(tmp_path / "ok", broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with served["registry"].session() as s:
        for path in (misfit, broken):
            store.add_model_version(
                s, name="serve-broken", task="text-classification", artifact_uri=str(path)
            )
    out = run_orch(["serve", "serve-broken:1", "--cpus-per-replica", "0.25"], env, timeout=600)
    assert out.returncode != 0 and "serve-broken" in out.stderr, out.stderr
    assert "mismatch" in out.stderr, out.stderr  # the cause, from the replica
    shown = json.loads(
        run_orch(["endpoints", "show", "serve-broken", "--format", "json"], env, check=True).stdout
    )
    assert shown["status"] == "FAILED" and "serve-broken:1" in shown["message"], shown
    info = resolve_cluster(settings)
    assert "serve-broken" not in serve_applications(info)  # nothing keeps retrying
    out = run_orch(["serve", "serve-broken:2"], env, timeout=60)  # refused before deploying
    assert out.returncode == 2, out.stderr
    assert f"{broken / 'model.safetensors'} is not a valid safetensors file" in out.stderr
    assert "serve-broken" not in serve_applications(info)
    status, answer, _ = http(served["urls"]["serve-cls"].replace("serve-cls", "serve-broken"))
    assert status == 404 and "serve-broken" in answer["error"]


def test_embeddings_behind_an_api_key(served: dict) -> None:
    env = served["env"]
    args = ["serve", "serve-mlm", "--task", "embeddings", "--api-key", "s3cret-key"]
    args += ["--cpus-per-replica", "0.25", "--max-batch-size", "8", "--dtype", "bfloat16"]
    url = run_orch(args, env, check=True).stdout.strip()
    assert url == served["urls"]["serve-mlm"]
    status, described, _ = http(url, None, {"Authorization": "Bearer s3cret-key"})
    assert status == 200 and described["dtype"] == "bfloat16", described
    status, answer, _ = http(url, {"inputs": "hello"})
    assert status == 401 and "API key" in answer["error"]
    status, _, _ = http(url, {"inputs": "hello"}, {"Authorization": "Bearer wrong"})
    assert status == 401
    status, vector, _ = http(url, {"inputs": "hello"}, {"Authorization": "Bearer s3cret-key"})
    assert status == 200 and len(vector) == 32
    assert sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-4)
    out = run_orch(["predict", "serve-mlm", "hello"], env)
    assert out.returncode == 1 and "401" in out.stderr
    out = run_orch(["predict", "serve-mlm", "hello"], {**env, "ORCH_SERVE_API_KEY": "s3cret-key"})
    assert out.returncode == 0 and "32" in out.stdout, out.stderr
    # serving it again changes what is given and keeps the rest: the key above all
    run_orch(["serve", "serve-mlm", "--max-batch-size", "4"], env, check=True)
    assert http(url, {"inputs": "hello"})[0] == 401
    out = run_orch(["endpoints", "show", "serve-mlm", "--format", "json"], env, check=True)
    shown = json.loads(out.stdout)
    assert shown["api_key"] == "required" and shown["task"] == "embeddings"
    assert shown["options"]["max_batch_size"] == 4 and shown["options"]["dtype"] == "bfloat16"


def test_a_deleted_endpoint_stops_answering_and_says_so(served: dict) -> None:
    url, env = served["urls"]["serve-mlm"], served["env"]
    out = run_orch(["endpoints", "delete", "serve-mlm"], env)
    assert out.returncode == 0, out.stderr
    status, answer, _ = http(url, {"inputs": "the [MASK] is red"})
    assert status == 404 and "serve-mlm" in answer["error"]
    out = run_orch(["endpoints", "list", "--all", "--format", "json"], env, check=True)
    rows = [row for row in json.loads(out.stdout) if row["name"] == "serve-mlm"]
    assert [row["status"] for row in rows] == ["DELETED"]
    out = run_orch(["predict", "serve-mlm", "hello"], env)
    assert out.returncode == 2 and "no endpoint named serve-mlm" in out.stderr


ENDPOINT_SERIES = (
    "ray_orch_endpoint_requests_total",
    "ray_orch_endpoint_errors_total",
    "ray_orch_endpoint_latency_seconds_count",
    "ray_orch_endpoint_batch_size_count",
    "ray_orch_endpoint_batched_requests_total",
)


def endpoint_totals(exposition: str, endpoint: str) -> dict[str, float]:
    """The series of ``endpoint`` in a /metrics answer, summed over its replicas (errors:
    the 4xx ones), and the relay's own gauges (``orch_ray_*``, by state)."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition):
        for s in family.samples:
            ours = s.labels.get("endpoint") == endpoint and s.labels.get("code") in (None, "4xx")
            if (ours and s.name in ENDPOINT_SERIES) or s.name.startswith("orch_ray_"):
                totals[s.name + (f"/{s.labels['state']}" if "state" in s.labels else "")] += s.value
    return dict(totals)


def test_endpoint_requests_errors_latency_and_batches_reach_the_api_metrics(
    served: dict, tmp_path: Path
) -> None:
    """What the replicas record reaches the API server's /metrics, relayed from the Ray
    nodes' metrics agents (Ray reports custom metrics every ~10 s)."""
    url = served["urls"]["serve-cls"]
    # the cluster's home (the API server finds the cluster there), a registry of its own
    with running_api_server(served["settings"].home, f"sqlite:///{tmp_path / 'api.db'}") as api:

        def scrape() -> dict[str, float]:
            answer = api.call("GET", "/metrics", role="viewer")
            assert answer.status_code == 200, answer.text
            return endpoint_totals(answer.text, "serve-cls")

        before = scrape()
        for text in ("a fine film", "a dull one", "it rained"):
            assert http(url, {"inputs": text})[0] == 200
        assert http(url, {"inputs": 3})[0] == 422
        wanted = dict(zip(ENDPOINT_SERIES, (4, 1, 4, 3, 3), strict=True))
        deadline = time.monotonic() + 60
        while True:
            seen = scrape()
            grown = {k: seen.get(k, 0) - before.get(k, 0) for k in ENDPOINT_SERIES}
            if all(grown[k] >= n for k, n in wanted.items()):
                break
            assert time.monotonic() < deadline, f"not relayed in 60 s: {grown}"
            time.sleep(2)
    assert seen["orch_ray_cluster_up"] == 1
    assert seen["orch_ray_metrics_agents/answered"] >= 1
    assert seen["orch_ray_metrics_agents/failed"] == 0
