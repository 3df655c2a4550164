"""Tagged sentences for token classification: the conll / jsonl parser, the checks of
every tag against the label names, and the driver's one pass over a split's files that
checks and counts them. Every problem names the file and the line. Ray and torch are not
imported here."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from jobs.data.readers import utf8_error
from jobs.errors import JobInputError

__all__ = [
    "Sentence",
    "TagScan",
    "default_tag_names",
    "parse_sentences",
    "read_sentences",
    "scan_sentences",
    "tag_ids",
]

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
    check = _TagCheck(labels, set(labels) if labels is not None else None)
    scan = TagScan()
    for path in paths:
        if max_rows and scan.sentences >= max_rows:
            break
        left = max_rows - scan.sentences if max_rows else None
        try:
            count = _scan_file(path, fmt, (tokens, tags), check, scan, left, held_out)
        except JobInputError as exc:
            raise JobInputError(f"{key}: {exc}") from None
        if count == 0:
            raise JobInputError(
                f"{key}: {path}: no sentence in the file (only blank or -DOCSTART- lines)"
            )
        scan.taken[path] = count
    return scan


class _TagCheck(NamedTuple):
    labels: list[str] | None
    known: set[str] | None  # the labels as a set, for the common case: a known tag name

    def __call__(self, sentence: Sentence, path: str, fmt: str, seen: set[str]) -> None:
        """Add the sentence's tag names to ``seen``; an error names a tag's file and line."""
        for i, tag in enumerate(sentence.tags):
            if isinstance(tag, str) and (self.known is None or tag in self.known):
                seen.add(tag)
                continue
            problem = tag_problem(tag, self.labels)
            if problem:
                raise JobInputError(f"{path} line {tag_line(sentence, i, fmt)}: {problem}")


def _scan_file(
    path: str,
    fmt: str,
    columns: tuple[str, str],
    check: _TagCheck,
    scan: TagScan,
    left: int | None,
    held_out: Callable[[list[str]], bool] | None,
) -> int:
    """Check one file's sentences (the first ``left``, or all) into ``scan``; how many."""
    count = 0
    for sentence in read_sentences(path, fmt, *columns):
        check(sentence, path, fmt, scan.tags)
        count += 1
        if held_out is not None and held_out(sentence.tokens):
            scan.held_out += 1
        if left and count >= left:
            break
    return count
