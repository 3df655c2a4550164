"""Validation of user-chosen names that end up in paths, routes and registry keys."""

from __future__ import annotations

import re

from orchestrator.errors import UsageError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is safe as a single path component, else raise UsageError.

    Allowed: letters, digits, '_', '.', '-', starting with a letter or digit, at most 64
    characters, and never '..' anywhere (so no traversal and no hidden files).
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or ".." in name:
        raise UsageError(
            f"invalid {what} {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit, with no '/' and no '..'"
        )
    return name


def parse_versioned(ref: str, what: str = "name") -> tuple[str, int | None, str | None]:
    """Split ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` into (name, version, alias)."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return check_name(name, what), None, check_name(alias, "alias")
    if ":" in ref:
        name, version = ref.split(":", 1)
        if not version.isdigit() or int(version) < 1:
            raise UsageError(f"invalid version {version!r} in {ref!r}: expected a number >= 1")
        return check_name(name, what), int(version), None
    return check_name(ref, what), None, None
