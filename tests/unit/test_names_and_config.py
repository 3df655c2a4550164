"""Names that become paths, and where settings come from."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from jobs.errors import JobInputError
from orchestrator.config import load_settings
from orchestrator.errors import ClusterError, NotFoundError, UsageError
from orchestrator.specs.errors import SpecError
from orchestrator.specs.names import check_name, parse_versioned


@pytest.mark.parametrize("name", ["bert-base", "tok_v2", "a.b", "A1"])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../x", "a/b", "a\\b", ".x", "-x", "x" * 65, "a..b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(SpecError, match="invalid") as exc:
        check_name(name)
    assert exc.value.exit_code == 2


def test_versioned_refs() -> None:
    assert parse_versioned("tok") == ("tok", None, None)
    assert parse_versioned("tok:3") == ("tok", 3, None)
    assert parse_versioned("clf@production") == ("clf", None, "production")
    with pytest.raises(SpecError, match="expected a number"):
        parse_versioned("tok:zero")
    with pytest.raises(SpecError, match="invalid alias"):
        parse_versioned("clf@../prod")


@pytest.mark.parametrize(
    "error",
    [
        SpecError("invalid spec", ["name: bad", "kind: missing"], hint="see the docs"),
        UsageError("bad usage", hint="try --help"),
        NotFoundError("no job 7"),
        ClusterError("unreachable", hint="orch cluster up"),
        JobInputError("train.tsv:3: label 'x' is not one of the labels"),
    ],
)
def test_errors_survive_pickling(error: Exception) -> None:
    # Errors cross Ray process boundaries (driver -> scheduler -> CLI): every field must survive.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"registry_url: sqlite:///{tmp_path}/file.db\nartifact_root: {tmp_path}/file-artifacts\n"
    )
    monkeypatch.setenv("ORCH_CONFIG", str(config))
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ORCH_REGISTRY_URL", raising=False)
    s = load_settings()
    assert s.resolved_registry_url == f"sqlite:///{tmp_path}/file.db"
    assert s.resolved_artifact_root == tmp_path / "file-artifacts"
    monkeypatch.setenv("ORCH_REGISTRY_URL", "postgresql://u@db/orch")
    assert load_settings().resolved_registry_url == "postgresql://u@db/orch"
    assert load_settings(cluster_address="10.0.0.1:6380").cluster_address == "10.0.0.1:6380"


def test_default_registry_is_sqlite_under_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCH_CONFIG", str(tmp_path / "none.yaml"))
    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("ORCH_REGISTRY_URL", raising=False)
    s = load_settings()
    assert s.resolved_registry_url == f"sqlite:///{tmp_path / 'h' / 'registry.db'}"
    assert s.resolved_artifact_root == tmp_path / "h" / "artifacts"


def test_bad_config_file_names_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("ORCH_CONFIG", str(config))
    config.write_text("registry_url: [unclosed\n")
    with pytest.raises(UsageError, match=f"config file {config} is not valid YAML"):
        load_settings()
    config.write_text("registy_url: x\n")
    with pytest.raises(UsageError, match="unknown setting.*registy_url"):
        load_settings()
