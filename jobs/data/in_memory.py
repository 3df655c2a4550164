"""A tokenised split held in memory: what an in-memory input pipeline (``data.pipeline``)
hands a one-worker job in place of a Ray Data dataset, tokenised in the driver by the same
UDF a streaming pipeline runs in its actors. No Ray here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

BLOCK = 1024  # rows tokenised at a time


class TokenizedRows:
    """Columns of equal length (a ragged array of token ids per row, labels, ...), iterated in
    batches the way the training loop iterates a Ray Data shard: ``iter_batches`` (numpy
    batches, in row order, the last one short) and ``iter_torch_batches`` (the same batches
    through a collate function)."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        lengths = {name: len(values) for name, values in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        self.columns = columns

    @classmethod
    def concat(cls, parts: list[dict[str, np.ndarray]]) -> TokenizedRows:
        """One split from the UDF's output batches, in order."""
        return cls({name: np.concatenate([p[name] for p in parts]) for name in parts[0]})

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def iter_batches(
        self, *, batch_size: int, batch_format: str = "numpy"
    ) -> Iterator[dict[str, np.ndarray]]:
        if batch_format != "numpy":
            raise ValueError(f"batch_format {batch_format!r}: rows in memory are numpy only")
        for start in range(0, len(self), batch_size):
            end = start + batch_size
            yield {name: values[start:end] for name, values in self.columns.items()}

    def iter_torch_batches(
        self,
        *,
        batch_size: int,
        collate_fn: Callable[[dict[str, np.ndarray]], Any],
        prefetch_batches: int = 0,  # noqa: ARG002 - nothing to prefetch: the rows are here
    ) -> Iterator[Any]:
        for batch in self.iter_batches(batch_size=batch_size):
            yield collate_fn(batch)


def tokenize_in_memory(rows: dict[str, list[Any]], udf: Any) -> TokenizedRows:
    """Rows read into memory, tokenised by ``udf`` (the Ray Data UDF a streaming pipeline
    runs in its actors) a block at a time, in the calling process."""
    count = len(next(iter(rows.values())))
    return TokenizedRows.concat(
        [
            udf({c: objects(values[i : i + BLOCK]) for c, values in rows.items()})
            for i in range(0, count, BLOCK)
        ]
    )


def objects(values: list[Any]) -> np.ndarray:
    """A column as Ray Data hands it to a UDF: numbers as a numeric array, anything else (str,
    lists of words) as an object array, one element per row."""
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out
