"""The one error that specs, names and references raise: the CLI prints it and exits 2.

It crosses Ray process boundaries (a driver re-validates its spec), so it pickles.
"""

from __future__ import annotations


class SpecError(ValueError):
    """A job spec, a name or a reference that does not validate. Carries every problem
    found, not only the first."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.hint = hint

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.message, self.problems, self.hint))

    def __str__(self) -> str:
        lines = [self.message, *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)
