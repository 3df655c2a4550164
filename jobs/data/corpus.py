"""The tokenizer job's corpus: the texts of its files streamed one at a time (never loaded
whole), counted per file, in any format a dataset may have (a conll file gives its
sentences' words). Ray and torch are not imported here."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs.data.readers import utf8_error
from jobs.data.sentences import read_sentences
from jobs.errors import JobInputError
from orchestrator.specs.common import detect_format

__all__ = ["LineCounter", "batched", "iter_texts"]


@dataclass
class LineCounter:
    """Counts what a stream yielded, and reports progress every ``every`` lines."""

    every: int = 50_000
    on_progress: Callable[[int], None] | None = None
    lines: int = 0
    per_file: dict[str, int] = field(default_factory=dict)

    def count(self, path: str) -> None:
        self.lines += 1
        self.per_file[path] = self.per_file.get(path, 0) + 1
        if self.on_progress and self.lines % self.every == 0:
            self.on_progress(self.lines)


def _text_lines(path: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from enumerate(fh, start=1)


def _jsonl_rows(path: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed value) of each non-blank line; bad JSON names the file and line."""
    for lineno, raw in _text_lines(path):
        if not raw.strip():
            continue
        try:
            yield lineno, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


def _jsonl_texts(path: str, column: str) -> Iterator[tuple[int, str]]:
    for lineno, row in _jsonl_rows(path):
        if not isinstance(row, dict) or column not in row:
            keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise JobInputError(
                f"{path}:{lineno}: no column {column!r} (found: {keys}); "
                "set data.column in the spec"
            )
        yield lineno, str(row[column] if row[column] is not None else "")


def _csv_texts(path: str, column: str, delimiter: str) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if reader.fieldnames is None:
            return
        if column not in reader.fieldnames:
            raise JobInputError(
                f"{path}:1: no column {column!r} in the header "
                f"(found: {', '.join(reader.fieldnames)}); set data.column"
            )
        for row in reader:
            yield reader.line_num, row[column] or ""


def _rows(path: str, fmt: str, column: str) -> Iterator[tuple[int, str]]:
    kind = detect_format(path, fmt)
    if kind == "conll":  # a tokenizer learns from the sentences' words
        return ((s.line, " ".join(s.tokens)) for s in read_sentences(path, kind))
    if kind == "jsonl":
        return _jsonl_texts(path, column)
    if kind in ("csv", "tsv"):
        return _csv_texts(path, column, "\t" if kind == "tsv" else ",")
    return _text_lines(path)


def iter_texts(
    files: list[str],
    fmt: str,
    column: str,
    max_lines: int | None = None,
    counter: LineCounter | None = None,
) -> Iterator[str]:
    """Yield the non-empty texts of ``files`` one at a time (never the whole corpus)."""
    counter = counter or LineCounter()
    for path in files:
        rows = _rows(path, fmt, column)
        try:
            for _lineno, text in rows:
                text = text.strip()
                if not text:
                    continue
                counter.count(path)
                yield text
                if max_lines and counter.lines >= max_lines:
                    return
        except UnicodeDecodeError as exc:
            raise utf8_error(path, exc) from None


def batched(items: Iterator[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
