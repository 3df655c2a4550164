"""Settings: registry URL, artifact root, cluster address, and where local state lives.

Precedence, highest first: command-line flags, ``ORCH_*`` environment variables, the YAML
config file (``$ORCH_CONFIG``, else ``~/.config/orch/config.yaml``), then defaults under a
per-user data directory (``$ORCH_HOME``, else ``$XDG_DATA_HOME/orch``).
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from orchestrator.errors import UsageError


def default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "orch"


def config_file_path() -> Path:
    env = os.environ.get("ORCH_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "orch" / "config.yaml"


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the config file; a malformed one is a usage error that names the file."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = config_file_path()
        if not path.is_file():
            return {}
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise UsageError(f"config file {path} must hold a mapping of settings")
        unknown = set(data) - set(Settings.model_fields)
        if unknown:
            raise UsageError(
                f"config file {path}: unknown setting(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(Settings.model_fields))}"
            )
        return data


class Settings(BaseSettings):
    """Everything the control plane and the job drivers need to find each other."""

    model_config = SettingsConfigDict(env_prefix="ORCH_", extra="forbid")

    home: Path = Field(default_factory=default_home, description="Local state directory.")
    registry_url: str | None = Field(
        None, description="SQLAlchemy URL of the registry; default: SQLite file under home."
    )
    artifact_root: Path | None = Field(
        None, description="Where tokenizers, checkpoints and models are written."
    )
    cluster_address: str | None = Field(
        None,
        description="GCS address (host:port) of an existing Ray cluster; default: the local "
        "cluster that `orch cluster up` starts.",
    )
    dashboard_url: str | None = Field(
        None, description="Ray dashboard / Jobs API URL of that cluster (http://host:8265)."
    )
    ray_auth_token_path: Path | None = Field(
        None, description="Ray token file; default: the local cluster's own token."
    )
    autoscaling_config: Path | None = Field(
        None,
        description="The cluster's Ray cluster launcher YAML (the file given to `ray up`): its "
        "available_node_types tell the scheduler what the cluster may grow to, so that a job "
        "too large for the live nodes asks the autoscaler for them. Not needed where the "
        "autoscaler publishes its node types itself (autoscaler v2, KubeRay).",
    )
    num_cpus: float | None = Field(None, description="Logical CPUs of the local cluster.")
    num_gpus: float | None = Field(None, description="GPUs of the local cluster.")
    warm_drivers: bool = Field(
        True,
        description="Fork job drivers from a per-node host that has imported the job code "
        "(jobs/runtime/warm/): seconds less from submit to a job's first step; false starts "
        "a new Python process per driver.",
    )
    serve_host: str = Field(
        "127.0.0.1", description="Address Ray Serve's HTTP proxy listens on (0.0.0.0: all)."
    )
    serve_port: int | None = Field(
        None, description="Ray Serve's HTTP port; default: the local cluster's, else 8000."
    )
    serve_api_key: str | None = Field(
        None,
        description="API key endpoints require (Authorization: Bearer KEY) and "
        "`orch predict` sends; default: none.",
    )

    data_roots: list[Path] | None = Field(
        None,
        description="Folders the job data of non-admin users must lie in (the API refuses "
        "other paths); default: anywhere but the orchestrator's own home. Set it on a shared "
        "server: jobs read files as the cluster's user.",
    )
    server_origins: list[str] = Field(
        default_factory=list,
        description="Origins besides the server's own whose state-changing requests the API "
        "accepts (e.g. https://orch.example behind a TLS proxy).",
    )
    server_host: str = Field(
        "127.0.0.1", description="Address the API server listens on (0.0.0.0: all)."
    )
    server_port: int | None = Field(
        None, description="The API server's port; default 8270, or a free one if that is taken."
    )
    server_url: str | None = Field(
        None,
        description="URL of the API server the CLI talks to (http://host:8270); default: the "
        "local one that `orch cluster up` starts.",
    )
    token: SecretStr | None = Field(
        None, description="Your API token (prefer token_file: an environment shows in ps)."
    )
    token_file: Path | None = Field(
        None, description="File holding your API token; default: the local admin's token file."
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    @property
    def resolved_registry_url(self) -> str:
        return self.registry_url or f"sqlite:///{self.home / 'registry.db'}"

    @property
    def resolved_artifact_root(self) -> Path:
        return (self.artifact_root or self.home / "artifacts").expanduser().resolve()

    @property
    def local_token_path(self) -> Path:
        """The local admin's token, readable by its owner only (`orch cluster up`)."""
        return self.home / "token"

    @property
    def cluster_dir(self) -> Path:
        return self.home / "cluster"

    @cached_property
    def registry_key(self) -> str:
        """A short stable id of the registry: names the scheduler that serves it."""
        return hashlib.sha256(self.resolved_registry_url.encode()).hexdigest()[:12]

    def driver_env(self) -> dict[str, str]:
        """Environment a job driver needs to reach the same registry and artifact root."""
        return {
            "ORCH_HOME": str(self.home),
            "ORCH_REGISTRY_URL": self.resolved_registry_url,
            "ORCH_ARTIFACT_ROOT": str(self.resolved_artifact_root),
            "ORCH_WARM_DRIVERS": "1" if self.warm_drivers else "0",
        }


def load_settings(**overrides: Any) -> Settings:
    """Settings with flag overrides applied (None values mean 'not given')."""
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**given)
