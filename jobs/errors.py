"""Errors raised inside jobs. They cross Ray process boundaries, so they pickle."""

from __future__ import annotations


class JobInputError(Exception):
    """Bad data or configuration found while a job runs: the message names the file,
    line, column or spec key, and is what `orch jobs show` prints."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self):
        return (type(self), (self.message,))
