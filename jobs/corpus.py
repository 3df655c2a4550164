"""Text corpora on disk: streaming their lines out of text, jsonl, csv and tsv files, and
fingerprinting their content so the registry can tell datasets apart."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs.errors import JobInputError
from jobs.specs.common import detect_format, expand_files

HASH_CHUNK = 1 << 20


@dataclass
class Fingerprint:
    """What identifies a dataset: its files, their sizes and one hash over all content."""

    files: list[dict[str, Any]]
    sha256: str
    size_bytes: int
    uri: str = ""


def register_dataset(session: Any, fp: Fingerprint, format: str, num_rows: dict[str, int]) -> Any:
    """The registry's dataset row for these files (one per content and location)."""
    from orchestrator.registry import store

    return store.upsert_dataset(
        session,
        uri=fp.uri,
        fingerprint=fp.sha256,
        format=format,
        files=fp.files,
        num_rows=num_rows,
        size_bytes=fp.size_bytes,
    )


def fingerprint_files(files: list[str]) -> Fingerprint:
    """sha256 over each file's bytes (in name order) and the per-file hashes."""
    total = hashlib.sha256()
    entries = []
    for path in files:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(HASH_CHUNK):
                digest.update(chunk)
        entries.append({"path": path, "size": os.path.getsize(path), "sha256": digest.hexdigest()})
        total.update(f"{os.path.basename(path)}:{digest.hexdigest()}\n".encode())
    size = sum(e["size"] for e in entries)
    uri = files[0] if len(files) == 1 else os.path.commonpath(files)
    return Fingerprint(files=entries, sha256=total.hexdigest(), size_bytes=size, uri=uri)


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


def _jsonl_texts(path: str, column: str) -> Iterator[tuple[int, str]]:
    for lineno, raw in _text_lines(path):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
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
        kind = detect_format(path, fmt)
        if kind == "jsonl":
            rows = _jsonl_texts(path, column)
        elif kind in ("csv", "tsv"):
            rows = _csv_texts(path, column, "\t" if kind == "tsv" else ",")
        else:
            rows = _text_lines(path)
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
            raise JobInputError(
                f"{path}: not valid UTF-8 at byte {exc.start} "
                f"({exc.reason}); convert the file to UTF-8"
            ) from None


def batched(items: Iterator[str], size: int = 1000) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def resolve_corpus(patterns: list[str]) -> list[str]:
    files = expand_files(patterns)
    if not files:
        raise JobInputError(f"no input file matches {', '.join(patterns)}")
    return files
