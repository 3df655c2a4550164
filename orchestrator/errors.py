"""Errors the control plane raises, each with the CLI exit code it maps to.

Exit codes follow click: 0 success, 1 a failed job or runtime error, 2 bad usage or spec.
"""

from __future__ import annotations


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


class SpecError(UsageError):
    """A job spec that does not validate. Carries every problem found, not only the first."""

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint)
        self.problems = problems or []

    def __reduce__(self):
        return (type(self), (self.message, self.problems, self.hint))

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class NotFoundError(OrchestratorError):
    """A job, tokenizer, model or other registry object that does not exist."""

    exit_code = 2


class ClusterError(OrchestratorError):
    """The Ray cluster could not be started, reached or stopped."""


class JobFailedError(OrchestratorError):
    """A job that a user waited for ended FAILED or CANCELLED."""
