"""Dataset files on disk, the one place that reads them for every job: which files a spec
names, their format, their columns and rows as Ray Data parses them, UTF-8 checks and
content fingerprints. The tokenizer corpus (``jobs.data.corpus``) and tagged sentences
(``jobs.data.sentences``) read files through these. Ray and torch are not imported here."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jobs.errors import JobInputError
from orchestrator.specs.common import detect_format, expand_files

__all__ = [
    "Fingerprint",
    "check_not_empty",
    "check_utf8",
    "column_batches",
    "csv_parse_options",
    "fingerprint_files",
    "header_columns",
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


def header_columns(path: str, fmt: str) -> list[str]:
    """The column names of a csv, tsv, jsonl or parquet file as Ray Data reads it, from its
    header (csv/tsv), first block of rows (jsonl) or footer (parquet): no read task, no Ray."""
    try:
        if fmt in ("csv", "tsv"):
            import pyarrow.csv as pacsv

            with pacsv.open_csv(path, parse_options=csv_parse_options(fmt)) as reader:
                return list(reader.schema.names)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if fmt == "jsonl":  # keys over the first block of rows, as Ray Data's reader sees them
            import pyarrow.json as pajson

            with pajson.open_json(path) as reader:
                return list(reader.schema.names)
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors name no file
        cause = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
        raise JobInputError(f"could not read {path}: {cause}") from None
    return ["text"]  # plain text: one row per line


def column_batches(path: str, fmt: str, columns: list[str]) -> Iterator[dict[str, list[Any]]]:
    """``columns`` of a csv, tsv, jsonl, parquet or text file, a block of rows at a time, as
    Ray Data's readers parse them (pyarrow's streaming csv reader with the same options and
    type inference; pandas' ``read_json(lines=True)`` for jsonl, numeric strings becoming
    numbers; the parquet row groups; one row per non-blank line of text), as pyarrow values;
    read in the driver with no Ray task. Errors name the file."""
    try:
        if fmt in ("csv", "tsv"):
            import pyarrow.csv as pacsv

            with pacsv.open_csv(path, parse_options=csv_parse_options(fmt)) as reader:
                for batch in reader:
                    yield {c: batch.column(c).to_pylist() for c in columns}
        elif fmt == "jsonl":  # read_json(lines=True) parses with pandas: its type inference
            import pandas as pd
            import pyarrow as pa

            with open(path, "rb") as raw, pd.read_json(raw, lines=True, chunksize=10_000) as rows:
                for frame in rows:
                    table = pa.Table.from_pandas(frame, preserve_index=False)
                    yield {
                        c: table.column(c).to_pylist() if c in frame else [None] * len(frame)
                        for c in columns
                    }
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(path) as parquet:
                for batch in parquet.iter_batches(columns=columns):
                    yield {c: batch.column(c).to_pylist() for c in columns}
        else:  # text: the lines of str.splitlines() that are not blank, as Ray's read_text
            with open(path, encoding="utf-8") as fh:
                lines = (line for raw in fh for line in raw.splitlines() if line.strip())
                while block := list(itertools.islice(lines, 4096)):
                    yield {c: block for c in columns}
    except JobInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors name no file
        cause = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__
        raise JobInputError(f"could not read {path}: {cause}") from None


def csv_parse_options(fmt: str) -> Any:
    """How Ray Data and ``header_columns`` parse csv and tsv: tabs without quoting (SST-2's
    sentences hold bare quotes), or commas with double quotes."""
    import pyarrow.csv as pacsv

    tsv = fmt == "tsv"
    return pacsv.ParseOptions(delimiter="\t" if tsv else ",", quote_char=False if tsv else '"')


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
