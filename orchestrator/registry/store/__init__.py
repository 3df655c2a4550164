"""The queries the CLI, the scheduler and the job drivers need, one module per entity.

Functions take a ``Session`` so that several of them can share one transaction (a driver
registers its tokenizer and marks its job SUCCEEDED atomically); ``Registry`` owns the engine.
Callers use the package as one namespace (``store.create_job(session, ...)``):

- ``session``: ``Registry`` (engine and short transactions), ``as_utc``
- ``jobs``: ``create_job``, ``transition`` (the ``ALLOWED_FROM`` state machine), ``note``,
  ``get_job``, ``list_jobs``, ``request_cancel``, ``set_progress``
- ``job_queue``: ``queued_jobs``, ``queue_mark``, ``active_jobs``
- ``datasets``: ``upsert_dataset``, ``list_datasets``
- ``tokenizers``: ``add_tokenizer``, ``list_tokenizers``, ``get_tokenizer``
- ``model_versions``: ``find_model``, ``check_model_task``, ``add_model_version``,
  ``get_model_version``, ``list_model_versions``
- ``aliases``: ``aliases_of``, ``set_alias``, ``previous_alias_holder``
- ``deployments``: ``live_deployment``, ``get_deployment``, ``list_deployments``,
  ``save_deployment``
- ``metrics``: ``add_metrics``, ``job_metrics``
- ``service_state``: ``put_state``, ``get_state``
- ``users``: ``add_user``, ``set_user_token``, ``user_by_token_hash``, ``find_user``,
  ``get_user``, ``list_users``
- ``audit_log``: ``audit``, ``list_audit``
- ``versioning``: ``next_version`` (shared by tokenizers and models)
"""

from orchestrator.registry.store.aliases import aliases_of, previous_alias_holder, set_alias
from orchestrator.registry.store.audit_log import audit, list_audit
from orchestrator.registry.store.datasets import list_datasets, upsert_dataset
from orchestrator.registry.store.deployments import (
    get_deployment,
    list_deployments,
    live_deployment,
    save_deployment,
)
from orchestrator.registry.store.job_queue import active_jobs, queue_mark, queued_jobs
from orchestrator.registry.store.jobs import (
    ALLOWED_FROM,
    create_job,
    get_job,
    list_jobs,
    note,
    request_cancel,
    set_progress,
    transition,
)
from orchestrator.registry.store.metrics import add_metrics, job_metrics
from orchestrator.registry.store.model_versions import (
    add_model_version,
    check_model_task,
    find_model,
    get_model_version,
    list_model_versions,
)
from orchestrator.registry.store.service_state import get_state, put_state
from orchestrator.registry.store.session import Registry, as_utc
from orchestrator.registry.store.tokenizers import add_tokenizer, get_tokenizer, list_tokenizers
from orchestrator.registry.store.users import (
    add_user,
    find_user,
    get_user,
    list_users,
    set_user_token,
    user_by_token_hash,
)
from orchestrator.registry.store.versioning import next_version

__all__ = [
    "ALLOWED_FROM",
    "Registry",
    "active_jobs",
    "add_metrics",
    "add_model_version",
    "add_tokenizer",
    "add_user",
    "aliases_of",
    "as_utc",
    "audit",
    "check_model_task",
    "create_job",
    "find_model",
    "find_user",
    "get_deployment",
    "get_job",
    "get_model_version",
    "get_state",
    "get_tokenizer",
    "get_user",
    "job_metrics",
    "list_audit",
    "list_datasets",
    "list_deployments",
    "list_jobs",
    "list_model_versions",
    "list_tokenizers",
    "list_users",
    "live_deployment",
    "next_version",
    "note",
    "previous_alias_holder",
    "put_state",
    "queue_mark",
    "queued_jobs",
    "request_cancel",
    "save_deployment",
    "set_alias",
    "set_progress",
    "set_user_token",
    "transition",
    "upsert_dataset",
    "user_by_token_hash",
]
