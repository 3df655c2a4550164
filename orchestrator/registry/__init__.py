"""The registry: jobs, events, datasets, tokenizers, models, aliases, metrics, deployments."""

from orchestrator.registry.models import JobStatus
from orchestrator.registry.store import Registry

__all__ = ["JobStatus", "Registry"]
