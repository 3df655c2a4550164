"""The two sides of a job's data, train and eval, and the split by fraction that makes both
from one set of files when the spec names no eval files: a hash of each row's content decides
its side, the same on every run and every node, with no pass over the data first."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar


class SplitRule(NamedTuple):
    """A split by fraction (``data.eval_fraction``, ``data.split_seed``); ``held_out``: the
    side a dataset keeps, the held-out (eval) rows or the others."""

    fraction: float
    seed: int
    held_out: bool = True

    def holds_out(self, text: str | list[str]) -> bool:
        """Whether a row's text (a sentence's words: hashed joined by spaces) is held out."""
        key = " ".join(text) if isinstance(text, list) else text
        digest = hashlib.blake2b(f"{self.seed}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.fraction

    def keeps(self, text: str | list[str]) -> bool:
        return self.holds_out(text) == self.held_out


def sides_of(split: SplitRule | None) -> list[SplitRule | None]:
    """What each side read from one set of files keeps: all rows (``[None]``: the files are
    one side's own), or ``[train, held out]`` of a split by fraction."""
    if split is None:
        return [None]
    return [split._replace(held_out=False), split._replace(held_out=True)]


Source = TypeVar("Source")


@dataclass
class Side(Generic[Source]):
    """One split as the job trains or evaluates on it: its source (the files, resolved and
    checked once; both sides of a split by fraction share it), which of the source's rows it
    keeps, how many, and the labels seen in them."""

    source: Source
    rule: SplitRule | None
    rows: int
    labels: Collection[Any]  # label values (classification), tag names (token classification)
    read: dict[str, list[Any]] | None = None  # the rows, when the driver has read them
