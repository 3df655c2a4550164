"""Errors the control plane raises, each with the CLI exit code it maps to.

Exit codes follow click: 0 success, 1 a failed job or runtime error, 2 bad usage or spec.
A bad spec, name or reference raises ``SpecError`` from ``orchestrator.specs`` (exit code 2), which
the control plane treats like its own errors (``USER_ERRORS``).
"""

from __future__ import annotations

from orchestrator.specs.errors import SpecError  # the specs' own error; exit code 2 like UsageError


class OrchestratorError(Exception):
    """Base class: a message meant for the user, and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __reduce__(self):  # crosses Ray process boundaries: keep it picklable
        return (type(self), (self.message, self.hint))

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(OrchestratorError):
    """Bad command-line usage or configuration."""

    exit_code = 2


class NotFoundError(OrchestratorError):
    """A job, tokenizer, model or other registry object that does not exist."""

    exit_code = 2


class ClusterError(OrchestratorError):
    """The Ray cluster could not be started, reached or stopped."""


class JobFailedError(OrchestratorError):
    """A job that a user waited for ended FAILED or CANCELLED."""


class EndpointError(OrchestratorError):
    """The endpoint answered with an error (its HTTP status and message)."""

    def __init__(self, message: str, hint: str | None = None, status: int = 0) -> None:
        super().__init__(message, hint)
        self.status = status

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.hint, self.status))


class AccessError(OrchestratorError):
    """No valid API token (401), or a role that may not do this (403)."""


class ServerError(OrchestratorError):
    """The API server could not be reached, or failed."""


# What the CLI reports as one line with its exit code, never as a traceback.
USER_ERRORS = (OrchestratorError, SpecError)

__all__ = [
    "USER_ERRORS",
    "AccessError",
    "EndpointError",
    "ServerError",
    "ClusterError",
    "JobFailedError",
    "NotFoundError",
    "OrchestratorError",
    "SpecError",
    "UsageError",
]
