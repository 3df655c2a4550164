"""Dataset files on disk, the one place that reads them for every job: which files a spec
names, their format, UTF-8 checks, content fingerprints, the tokenizer corpus streamed
line by line (never loaded whole), and tagged sentences (conll / jsonl) for token
classification. Ray and torch are not imported here."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jobs.errors import JobInputError
from orchestrator.specs.common import TAGGED_FORMATS, detect_format, expand_files

__all__ = [
    "TAGGED_FORMATS",
    "Fingerprint",
    "LineCounter",
    "Sentence",
    "TagScan",
    "batched",
    "check_not_empty",
    "check_utf8",
    "column_batches",
    "csv_parse_options",
    "default_tag_names",
    "fingerprint_files",
    "header_columns",
    "iter_texts",
    "parse_sentences",
    "read_sentences",
    "resolve_files",
    "scan_sentences",
    "single_format",
    "tag_ids",
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


# --- tagged sentences: token classification -------------------------------------------------

Tag = str | int
DOCSTART = "-DOCSTART-"
_CONLL_FIELDS = re.compile(r"[ \t]+")


class Sentence(NamedTuple):
    """One tagged sentence: the line it starts on, its words, and one tag per word (a tag
    name, or an int indexing into the labels)."""

    line: int
    tokens: list[str]
    tags: list[Tag]


def parse_sentences(
    lines: Iterable[str], fmt: str, source: str, tokens: str = "tokens", tags: str = "tags"
) -> Iterator[Sentence]:
    """The tagged sentences of a conll or jsonl text, one at a time. Every problem names
    ``source`` (the file) and the line.

    conll: one ``token<TAB or spaces>tag`` per line (the tag is the last field), sentences
    separated by blank or whitespace-only lines, ``-DOCSTART-`` lines skipped (they end a
    sentence). jsonl: one sentence per row, a list of words in column ``tokens`` and a list
    of as many tags in column ``tags``."""
    if fmt == "conll":
        return _conll_sentences(lines, source)
    if fmt == "jsonl":
        return _jsonl_sentences(lines, source, tokens, tags)
    raise JobInputError(
        f"{source}: token classification reads conll or jsonl files, not {fmt} files"
    )


def _conll_sentences(lines: Iterable[str], source: str) -> Iterator[Sentence]:
    words: list[str] = []
    tags: list[Tag] = []
    start = 0
    for lineno, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        fields = _CONLL_FIELDS.split(line.strip(" \t")) if line.strip() else []
        if not fields or fields[0] == DOCSTART:  # a sentence ends
            if words:
                yield Sentence(start, words, tags)
            words, tags = [], []
            continue
        if len(fields) < 2:
            raise JobInputError(
                f"{source} line {lineno}: no tag after the token {fields[0]!r} "
                "(expected 'token<TAB>tag')"
            )
        if not words:
            start = lineno
        words.append(fields[0])
        tags.append(fields[-1])
    if words:
        yield Sentence(start, words, tags)


def _is_tag(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _jsonl_sentences(
    lines: Iterable[str], source: str, tokens: str, tags: str
) -> Iterator[Sentence]:
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{source} line {lineno}"
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JobInputError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or tokens not in row or tags not in row:
            found = ", ".join(row) if isinstance(row, dict) else type(row).__name__
            raise JobInputError(
                f"{where}: no column {tokens!r} and {tags!r} (found: {found}); "
                "set data.columns.tokens and data.columns.tags"
            )
        words, labels = row[tokens], row[tags]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise JobInputError(f"{where}: {tokens!r} must be a list of strings (the words)")
        if not isinstance(labels, list) or not all(_is_tag(t) for t in labels):
            raise JobInputError(
                f"{where}: {tags!r} must be a list of tags (names, or ints indexing into labels)"
            )
        if len(words) != len(labels):
            raise JobInputError(
                f"{where}: {len(words)} tokens but {len(labels)} tags (one tag per token)"
            )
        if words:
            yield Sentence(lineno, words, labels)


def read_sentences(
    path: str, fmt: str, tokens: str = "tokens", tags: str = "tags"
) -> Iterator[Sentence]:
    """The tagged sentences of one file, streamed (see ``parse_sentences``)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            yield from parse_sentences(fh, fmt, path, tokens, tags)
    except UnicodeDecodeError as exc:
        raise utf8_error(path, exc) from None


def tag_line(sentence: Sentence, index: int, fmt: str) -> int:
    """The line of the sentence's tag ``index``: its own line in conll, the row's in jsonl."""
    return sentence.line + index if fmt == "conll" else sentence.line


def default_tag_names(tags: Iterable[str]) -> list[str]:
    """Tag names in id order when the spec gives none: "O" first if present, then sorted."""
    found = set(tags)
    rest = sorted(found - {"O"})
    return ["O", *rest] if "O" in found else rest


def tag_problem(tag: Tag, labels: list[str] | None) -> str | None:
    """What is wrong with one tag given the label names (None: nothing)."""
    if isinstance(tag, int):
        if labels is None:
            return (
                f"tag {tag} is an integer: integer tags index into labels, so labels "
                "(the tag names in id order) must be given"
            )
        if not 0 <= tag < len(labels):
            return f"tag {tag} is out of range: labels are 0..{len(labels) - 1} ({labels})"
        return None
    if labels is not None and tag not in labels:
        return f"tag {tag!r} is not one of labels {labels}"
    return None


def tag_ids(tags: list[Tag], label2id: dict[str, int]) -> list[int]:
    """Tag ids of one (checked) sentence: names mapped, ints kept."""
    return [t if isinstance(t, int) else label2id[t] for t in tags]


@dataclass
class TagScan:
    """What one pass over a split's tagged files found."""

    taken: dict[str, int] = field(default_factory=dict)  # sentences used, per file, in order
    held_out: int = 0  # of which the split by fraction holds out for evaluation
    tags: set[str] = field(default_factory=set)  # tag names seen

    @property
    def sentences(self) -> int:
        return sum(self.taken.values())


def scan_sentences(
    paths: list[str],
    fmt: str,
    key: str,
    *,
    tokens: str = "tokens",
    tags: str = "tags",
    labels: list[str] | None = None,
    max_rows: int | None = None,
    held_out: Callable[[list[str]], bool] | None = None,
) -> TagScan:
    """Check and count a split's tagged sentences, streaming each file once (up to
    ``max_rows`` sentences in all). Every tag must be one of ``labels`` when they are given
    (ints index into them). Errors name the spec ``key``, the file and the line:
    ``data.train: /x.conll line 17: tag 'B-foo' is not one of labels [...]``."""
    for path in paths:
        if os.path.getsize(path) == 0:
            raise JobInputError(f"{key}: {path} line 1: the file is empty")
    known = set(labels) if labels is not None else None
    scan = TagScan()
    for path in paths:
        if max_rows and scan.sentences >= max_rows:
            break
        count = 0
        try:
            for sentence in read_sentences(path, fmt, tokens, tags):
                for i, tag in enumerate(sentence.tags):
                    if isinstance(tag, str) and (known is None or tag in known):
                        scan.tags.add(tag)
                        continue
                    problem = tag_problem(tag, labels)
                    if problem:
                        raise JobInputError(f"{path} line {tag_line(sentence, i, fmt)}: {problem}")
                count += 1
                if held_out is not None and held_out(sentence.tokens):
                    scan.held_out += 1
                if max_rows and scan.sentences + count >= max_rows:
                    break
        except JobInputError as exc:
            raise JobInputError(f"{key}: {exc}") from None
        if count == 0:
            raise JobInputError(
                f"{key}: {path}: no sentence in the file (only blank or -DOCSTART- lines)"
            )
        scan.taken[path] = count
    return scan
