"""The contract between the control plane and the workloads: one typed pydantic spec per job
kind (``tokenizer``, ``training``, ``models``, ``serving``), the name rules (``names``), the
shared names of states, kinds and tasks (``vocabulary``), and ``SpecError``.

Pydantic and the standard library only; nothing else of this project. ``load_spec`` and
``parse_spec`` (``loading``) are imported on first use, so that ``vocabulary`` alone (which the
CLI's choices use) does not import pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.specs.errors import SpecError
    from orchestrator.specs.loading import SPEC_CLASSES, load_spec, parse_spec

__all__ = ["SPEC_CLASSES", "SpecError", "load_spec", "parse_spec"]
_HOMES = {
    "SPEC_CLASSES": "orchestrator.specs.loading",
    "load_spec": "orchestrator.specs.loading",
    "parse_spec": "orchestrator.specs.loading",
    "SpecError": "orchestrator.specs.errors",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
