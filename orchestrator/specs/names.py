"""The name rules: names that become folders, routes and registry keys, and references
to registered versions (``NAME``, ``NAME:VERSION``, ``NAME@ALIAS``). The one copy."""

from __future__ import annotations

import re

from orchestrator.specs.errors import SpecError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME_RULE = (
    "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit, "
    "with no '/' and no '..'"
)


def is_valid_name(name: object) -> bool:
    """True when ``name`` is safe as a single path component: no traversal, no hidden file."""
    return isinstance(name, str) and bool(NAME_PATTERN.match(name)) and ".." not in name


def check_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a valid name, else raise SpecError saying the rule."""
    if not is_valid_name(name):
        raise SpecError(f"invalid {what} {name!r}: {NAME_RULE}")
    return name


def parse_versioned(ref: str, what: str = "name") -> tuple[str, int | None, str | None]:
    """Split ``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS`` into (name, version, alias)."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return check_name(name, what), None, check_name(alias, "alias")
    if ":" in ref:
        name, version = ref.split(":", 1)
        if not version.isdigit() or int(version) < 1:
            raise SpecError(f"invalid version {version!r} in {ref!r}: expected a number >= 1")
        return check_name(name, what), int(version), None
    return check_name(ref, what), None, None
