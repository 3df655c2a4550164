"""Version numbers of the registry's named, versioned artifacts (tokenizers, models)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def next_version(session: Session, column: Any, where: Any) -> int:
    """One more than the highest ``column`` among the rows matching ``where`` (1 for none)."""
    return int(session.scalar(select(func.coalesce(func.max(column), 0)).where(where))) + 1
