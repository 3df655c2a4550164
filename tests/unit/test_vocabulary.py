"""Job states, kinds and tasks are defined once (orchestrator.specs.vocabulary): the specs,
the registry, the CLI's choices and the API (which the console reads) all take them from
there."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.registry import JobStatus as RegistryJobStatus
from orchestrator.specs import SPEC_CLASSES
from orchestrator.specs.vocabulary import (
    ENDPOINT_TASKS,
    FINETUNE_TASKS,
    JOB_KINDS,
    MODEL_TASKS,
    TERMINAL_STATUSES,
    JobStatus,
    vocabulary,
)
from tests.api_server import ApiServer

CONSOLE = Path(__file__).resolve().parents[2] / "orchestrator" / "api" / "console"


def test_the_spec_kinds_are_the_vocabulary_s() -> None:
    assert tuple(SPEC_CLASSES) == JOB_KINDS
    for kind, spec_class in SPEC_CLASSES.items():
        assert spec_class.model_fields["kind"].default == kind


def test_the_registry_stores_the_vocabulary_s_states() -> None:
    assert RegistryJobStatus is JobStatus
    assert [s for s in JobStatus if s.terminal] == list(TERMINAL_STATUSES)


def test_the_api_serves_the_vocabulary_to_any_signed_in_user(api_server: ApiServer) -> None:
    assert api_server.call("GET", "/api/vocabulary", role=None).status_code == 401
    answer = api_server.call("GET", "/api/vocabulary", role="viewer")
    assert answer.status_code == 200
    assert answer.json() == vocabulary()
    assert answer.json()["job_statuses"][0] == "QUEUED"


def test_the_api_refuses_a_state_or_kind_outside_the_vocabulary(api_server: ApiServer) -> None:
    assert api_server.call("GET", "/api/jobs?status=DONE", role="viewer").status_code == 422
    assert api_server.call("GET", "/api/jobs?kind=sweep", role="viewer").status_code == 422
    assert api_server.call("GET", "/api/jobs?status=RUNNING", role="viewer").status_code == 200


def test_the_cli_offers_the_vocabulary_s_choices() -> None:
    runner = CliRunner()
    assert "retrying" in runner.invoke(cli, ["jobs", "list", "--help"]).output.lower()
    for command, names in (
        (["models", "list", "--help"], MODEL_TASKS),
        (["serve", "--help"], ENDPOINT_TASKS),
    ):
        out = re.sub(r"\s+", "", runner.invoke(cli, command).output)
        assert all(name in out for name in names), command


def test_the_console_spells_out_no_state_or_kind() -> None:
    """The console's pages take states and kinds from GET /api/vocabulary."""
    for script in CONSOLE.glob("*.js"):
        text = script.read_text()
        assert '"SUCCEEDED"' not in text and '"CANCELLED"' not in text, script.name
        assert '"pretrain"' not in text, script.name


def test_every_task_a_model_is_trained_for_is_a_model_task_an_endpoint_serves() -> None:
    assert set(FINETUNE_TASKS) <= set(MODEL_TASKS) <= set(ENDPOINT_TASKS)
