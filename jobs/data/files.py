"""A split's files, resolved and checked once: the paths a spec's ``files`` name, their one
format, their fingerprint and (tabular files) their columns. Everything after (counting,
reading into memory, Ray Data reads) takes the ``SplitFiles`` and never resolves again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from jobs.data.readers import (
    Fingerprint,
    check_not_empty,
    check_utf8,
    fingerprint_files,
    header_columns,
    resolve_files,
    single_format,
)
from jobs.errors import JobInputError
from orchestrator.specs.common import TAGGED_FORMATS
from orchestrator.specs.training import Files


class SplitFiles(NamedTuple):
    """A split's files after the checks every job makes before reading them."""

    paths: list[str]
    format: str
    fingerprint: Fingerprint
    columns: list[str]  # of the first file (none for tagged sentences)
    hf: Any = None  # the loaded `save_to_disk` dataset (format hf)


def check_files(spec: Files, what: str) -> SplitFiles:
    """A split's tabular or text files, after checking they exist, are not empty and are
    valid UTF-8 text; or its `save_to_disk` folder (format hf), loaded."""
    if spec.format == "hf":
        return _check_hf(spec, what)
    paths = resolve_files(spec.files, f"data.{what}")
    fmt = single_format(paths, spec.format, f"data.{what}")
    if fmt == "conll":
        raise JobInputError(
            f"data.{what}: {paths[0]} is a conll file (a tag per word): only "
            "token classification reads it (finetune with task: token-classification)"
        )
    check_not_empty(paths)
    if fmt != "parquet":
        check_utf8(paths)
    return SplitFiles(paths, fmt, fingerprint_files(paths), header_columns(paths[0], fmt))


def check_sentence_files(spec: Files, key: str) -> SplitFiles:
    """A split's tagged files (conll or jsonl) for token classification, after checking
    they exist and are valid UTF-8; ``key`` names the spec section (``data.train``)."""
    if spec.format == "hf":
        raise JobInputError(f"{key}.format hf: token classification reads conll or jsonl files")
    paths = resolve_files(spec.files, key)
    fmt = single_format(paths, spec.format, key)
    if fmt not in TAGGED_FORMATS:
        raise JobInputError(
            f"{key}: {paths[0]} is read as {fmt}; token classification reads conll or "
            f"jsonl files (set {key}.format)"
        )
    check_utf8(paths)
    return SplitFiles(paths, fmt, fingerprint_files(paths), [])


def _check_hf(spec: Files, what: str) -> SplitFiles:
    import datasets

    folder = spec.files[0]
    try:
        loaded = datasets.load_from_disk(folder)
    except (FileNotFoundError, ValueError) as exc:
        raise JobInputError(
            f"data.{what}.files: {folder} is not a `save_to_disk` folder: {exc}"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        if spec.hf_split not in loaded:
            raise JobInputError(
                f"data.{what}.hf_split: {spec.hf_split!r} is not one of {list(loaded)} in {folder}"
            )
        loaded = loaded[spec.hf_split]
    files = _hf_files(folder)
    return SplitFiles(files, "hf", fingerprint_files(files), list(loaded.column_names), loaded)


def _hf_files(folder: str) -> list[str]:
    """The files of a `save_to_disk` folder, in a stable order."""
    return sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())
