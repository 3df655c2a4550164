"""Dataset files on disk, the one place that reads them for every job: which files a spec
names, their format, UTF-8 checks, content fingerprints, and the tokenizer corpus streamed
line by line (never loaded whole). Ray and torch are not imported here."""

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

__all__ = [
    "Fingerprint",
    "LineCounter",
    "batched",
    "check_not_empty",
    "check_utf8",
    "fingerprint_files",
    "iter_texts",
    "resolve_files",
    "single_format",
    "utf8_error",
]

HASH_CHUNK = 1 << 20


# --- which files, in which format -------------------------------------------------------------


def resolve_files(patterns: list[str], key: str | None = None) -> list[str]:
    """The files that ``patterns`` (paths, globs or folders) name; an error if there are none,
    naming the spec ``key`` (``data.train``) they came from when it is given."""
    files = expand_files(patterns)
    if not files:
        where = f"{key}.files: no file matches" if key else "no input file matches"
        raise JobInputError(f"{where} {', '.join(patterns)}")
    return files


def single_format(paths: list[str], fmt: str, key: str) -> str:
    """The one format of ``paths`` (a dataset read in one go cannot mix them)."""
    formats = {detect_format(p, fmt) for p in paths}
    if len(formats) > 1:
        raise JobInputError(
            f"{key}.files mixes formats {sorted(formats)}; set {key}.format or split the files"
        )
    return formats.pop()


def check_not_empty(paths: list[str]) -> None:
    for path in paths:
        if os.path.getsize(path) == 0:
            raise JobInputError(f"{path}: the file is empty")


# --- UTF-8 --------------------------------------------------------------------------------------


def utf8_error(path: str, exc: UnicodeDecodeError, lineno: int | None = None) -> JobInputError:
    """What the user reads about a bad byte: with the line when it is known (a whole-file
    check), else where the decoder stopped (a stream)."""
    if lineno is not None:
        where = f"{path}:{lineno}: not valid UTF-8 (byte {exc.start} of the line)"
    else:
        where = f"{path}: not valid UTF-8 at byte {exc.start} ({exc.reason})"
    return JobInputError(f"{where}; convert the file to UTF-8")


def check_utf8(paths: list[str]) -> None:
    """Name the file and line of the first bad byte (pyarrow would only say 'invalid')."""
    for path in paths:
        with open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise utf8_error(path, exc, lineno) from None


# --- fingerprints -------------------------------------------------------------------------------


@dataclass
class Fingerprint:
    """What identifies a dataset: its files, their sizes and one hash over all content."""

    files: list[dict[str, Any]]
    sha256: str
    size_bytes: int
    uri: str = ""


def fingerprint_files(files: list[str]) -> Fingerprint:
    """sha256 over each file's bytes (in name order) and the per-file hashes."""
    total = hashlib.sha256()
    entries: list[dict[str, Any]] = []
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


# --- the tokenizer corpus: texts one at a time ------------------------------------------------


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


def _rows(path: str, fmt: str, column: str) -> Iterator[tuple[int, str]]:
    kind = detect_format(path, fmt)
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
