"""Token-classification data: tagged sentences from conll / jsonl files. The driver checks and
counts every sentence used, streaming each file once; Ray tasks (or the driver, in memory)
parse the files again with the same parser, and a UDF aligns each word's tag with its first
sub-token. ``TaggedData``: the parts of ``prepare`` (``jobs.data.pipeline``) that are this
kind's."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray

from jobs.data.files import SplitFiles, check_sentence_files
from jobs.data.in_memory import TokenizedRows, tokenize_in_memory
from jobs.data.sentences import TagScan, default_tag_names, read_sentences, scan_sentences, tag_ids
from jobs.data.split import Side, SplitRule, sides_of
from jobs.data.streaming import READ_CPUS, tokenizer_pool
from jobs.data.tokenizer_core import ragged, words_core
from orchestrator.specs.training import Columns, DataSpec, Files

TOKENS, TAGS = "tokens", "tags"  # the columns of parsed sentences (words, tag ids)
IGNORED = -100  # the label of sub-tokens and special tokens: no loss, no metric


@dataclass
class TaggedSplit:
    """One split's conll / jsonl files, checked and counted by the driver; ``split``: the
    split by fraction the count held sentences out by (no eval files in the spec)."""

    files: SplitFiles
    scan: TagScan
    split: SplitRule | None = None


def check_tagged_files(
    files: Files,
    key: str,
    columns: Columns,
    labels: list[str] | None,
    max_rows: int | None,
    split: SplitRule | None = None,
) -> TaggedSplit:
    """Stream a split's tagged files once (after the UTF-8 check and the fingerprint): every
    problem names ``key``, the file and the line; counts the sentences used (``max_rows``
    in all) and how many a split by fraction holds out."""
    checked = check_sentence_files(files, key)
    scan = scan_sentences(
        checked.paths,
        checked.format,
        key,
        tokens=columns.tokens,
        tags=columns.tags,
        labels=labels,
        max_rows=max_rows,
        held_out=split.holds_out if split else None,
    )
    return TaggedSplit(checked, scan, split)


def _sentence_rows(
    item: dict[str, Any],
    fmt: str,
    columns: tuple[str, str],
    label2id: dict[str, int],
    split: SplitRule | None,
) -> Iterator[dict[str, Any]]:
    """Ray Data ``flat_map``: one file's first ``take`` sentences as rows of words and tag
    ids (the driver has checked them with the same parser)."""
    sentences = read_sentences(item["path"], fmt, *columns)
    for sentence in itertools.islice(sentences, int(item["take"])):
        if split is None or split.keeps(sentence.tokens):
            yield {TOKENS: sentence.tokens, TAGS: tag_ids(sentence.tags, label2id)}


def sentence_dataset(
    tagged: TaggedSplit,
    columns: Columns,
    label2id: dict[str, int],
    split: SplitRule | None = None,
) -> ray.data.Dataset:
    """A lazy dataset of the split's sentences, parsed in Ray tasks (one per file): only
    the file names pass through the driver, never the rows."""
    items = _sentence_files(tagged)
    return ray.data.from_items(items, override_num_blocks=len(items)).flat_map(
        _sentence_rows,
        fn_kwargs={
            "fmt": tagged.files.format,
            "columns": (columns.tokens, columns.tags),
            "label2id": label2id,
            "split": split,
        },
        num_cpus=READ_CPUS,
    )


def _sentence_files(tagged: TaggedSplit) -> list[dict[str, Any]]:
    return [{"path": path, "take": take} for path, take in tagged.scan.taken.items()]


def sentences_in_memory(
    tagged: TaggedSplit,
    columns: Columns,
    label2id: dict[str, int],
    split: SplitRule | None,
    tokenize_words: TokenizeTagged,
) -> TokenizedRows:
    """The split's sentences parsed and tokenised in this process (``data.pipeline``
    in-memory), with the same parser and tokenizer as ``sentence_dataset``."""
    rows: dict[str, list[Any]] = {TOKENS: [], TAGS: []}
    fmt, names = tagged.files.format, (columns.tokens, columns.tags)
    for item in _sentence_files(tagged):
        for row in _sentence_rows(item, fmt, names, label2id, split):
            rows[TOKENS].append(row[TOKENS])
            rows[TAGS].append(row[TAGS])
    return tokenize_in_memory(rows, tokenize_words)


def align_tags(word_ids: list[int | None], tags: list[int]) -> list[int]:
    """Labels per sub-token: each word's first sub-token gets the word's tag; its other
    sub-tokens and the special tokens get -100 (no loss, no metric)."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORED if word is None or word == previous else int(tags[word]))
        previous = word
    return labels


class TokenizeTagged:
    """Ray Data UDF: words to sub-tokens (the fast tokenizer's Rust core from
    ``tokenizer_core(..., words=True)``, pre-split words, truncation), tags aligned to the
    first sub-token of each word."""

    def __init__(self, core: str) -> None:
        import tokenizers

        self.core = tokenizers.Tokenizer.from_str(core)

    def __call__(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        words = [[str(w) for w in sentence] for sentence in raw[TOKENS]]
        encoded = self.core.encode_batch(words, is_pretokenized=True)
        labels = [
            align_tags(e.word_ids, list(tags)) for e, tags in zip(encoded, raw[TAGS], strict=True)
        ]
        return {
            "input_ids": ragged([e.ids for e in encoded]),
            "labels": ragged(labels, np.int64),
        }


def tokenize_tagged(
    ds: ray.data.Dataset,
    tokenizer_dir: str,
    max_length: int,
    data_cpus: float,
    batch_size: int = 256,
    actors: int | None = None,
) -> ray.data.Dataset:
    """Stream sentences through a pool of ``TokenizeTagged`` actors (``tokenizer_pool``)."""
    core = words_core(tokenizer_dir, max_length)
    return tokenizer_pool(ds, TokenizeTagged, {"core": core}, data_cpus, batch_size, actors)


class TaggedData:
    """``prepare``'s parts for token classification: the driver's one pass over each split's
    files checks every tag and counts the sentences; label names are the spec's or the tags
    seen."""

    noun = "sentences"

    def __init__(
        self, spec: DataSpec, task: str, tokenizer_dir: str, label_names: list[str] | None
    ) -> None:
        self.spec, self.task = spec, task
        self.tokenizer_dir, self.labels = tokenizer_dir, label_names

    def check(self, files: Files, what: str, split: SplitRule | None) -> TaggedSplit:
        spec = self.spec
        return check_tagged_files(
            files, f"data.{what}", spec.columns, self.labels, spec.max_rows, split
        )

    def count(self, tagged: TaggedSplit, memory: bool) -> list[Side[TaggedSplit]]:
        """Both sides of the split (or its one side), as the scan counted them; the sentences
        are read into memory later, with their tag ids (``memory`` changes nothing here)."""
        scan, split = tagged.scan, tagged.split
        rows = (
            [scan.sentences] if split is None else [scan.sentences - scan.held_out, scan.held_out]
        )
        return [
            Side(tagged, rule, count, scan.tags)
            for rule, count in zip(sides_of(split), rows, strict=True)
        ]

    def label_names(self, train: Side[TaggedSplit], held: Side[TaggedSplit]) -> list[str]:
        return self.labels or default_tag_names({*train.labels, *held.labels})

    def in_memory(self, side: Side[TaggedSplit], label2id: dict[str, int] | None) -> TokenizedRows:
        assert label2id is not None  # label_names always names the tags
        columns = self.spec.columns
        return sentences_in_memory(side.source, columns, label2id, side.rule, self._words)

    def streaming(
        self, side: Side[TaggedSplit], label2id: dict[str, int] | None, data_cpus: float
    ) -> ray.data.Dataset:
        assert label2id is not None  # label_names always names the tags
        sentences = sentence_dataset(side.source, self.spec.columns, label2id, side.rule)
        return tokenize_tagged(sentences, self.tokenizer_dir, self.spec.max_length, data_cpus)

    @functools.cached_property
    def _words(self) -> TokenizeTagged:
        """One tokenizer for both splits read into memory."""
        return TokenizeTagged(words_core(self.tokenizer_dir, self.spec.max_length))
