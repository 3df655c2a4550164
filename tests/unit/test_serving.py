"""Serving without Ray, the control plane's side: the options an endpoint is served with,
the registry's endpoint rows and the CLI's error paths. Requests, the direct tasks and the
pipeline tasks have test_serving_requests.py, test_serving_direct.py,
test_serving_pipelines.py and test_serving_question_answering.py."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.registry import Registry, store
from orchestrator.registry.models import DeploymentStatus
from orchestrator.specs.serving import ServeOptions, parse_autoscale


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
