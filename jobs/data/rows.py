"""The rows of a tabular split (csv, tsv, jsonl, parquet, text, a `save_to_disk` folder):
which file column plays which role, and the rows read in the driver with the parsers Ray
Data uses, no Ray task, to count them per label (``tally``) or to hold them for an
in-memory pipeline (``collect``). Label and parse errors surface here, before any worker
starts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

from jobs.data.files import SplitFiles
from jobs.data.readers import column_batches
from jobs.data.split import SplitRule
from jobs.errors import JobInputError
from orchestrator.specs.training import DataSpec

TEXT, PAIR, LABEL = "text", "text_pair", "label"


def check_columns(names: list[str], spec: DataSpec, task: str, source: str) -> dict[str, str]:
    """Which file column plays which role (text / text_pair / label); names what is missing.

    Columns are not renamed in the pipeline (a projection stage would need a CPU of its own);
    the tokenizer reads them under their own names."""
    roles = {TEXT: spec.columns.text}
    if task == "classification":
        roles[LABEL] = spec.columns.label
        if spec.columns.text_pair:
            roles[PAIR] = spec.columns.text_pair
    if names == ["text"] and task != "classification":  # plain text files
        return {TEXT: "text"}
    missing = [c for c in roles.values() if c not in names]
    if missing:
        raise JobInputError(
            f"{source}: no column {', '.join(map(repr, missing))} (found: "
            f"{', '.join(names)}); set data.columns in the spec"
        )
    return roles


class Tally(NamedTuple):
    rows: int
    labels: Counter[Any]


def tally(
    files: SplitFiles,
    columns: dict[str, str],
    max_rows: int | None,
    split: SplitRule | None = None,
) -> list[Tally]:
    """Rows and rows per label of a split (the first ``max_rows`` rows, as the pipeline's
    ``limit``), or of both sides of a split by fraction: ``[kept]`` or ``[train, held out]``.

    pyarrow in the driver, the parser Ray Data uses, reads the rows far faster than Ray
    Data passes would (each is a Ray job of new processes)."""
    label, text = columns.get(LABEL), columns[TEXT]
    read = list(dict.fromkeys(c for c in (label, text if split else None) if c)) or [text]
    counts: list[Counter[Any]] = [Counter(), Counter()]  # kept (or train), held out
    for batch in _first_rows(files, read, max_rows):
        labels = batch[label] if label else [None] * len(batch[read[0]])
        if split:
            held = [split.holds_out(str(t)) for t in batch[text]]
            for value, out in zip(labels, held, strict=True):
                counts[out][value] += 1
        else:
            counts[0].update(labels)
    tallies = [Tally(sum(c.values()), c if label else Counter()) for c in counts]
    return tallies if split else tallies[:1]


def collect(
    files: SplitFiles,
    columns: dict[str, str],
    max_rows: int | None,
    split: SplitRule | None = None,
) -> list[dict[str, list[Any]]]:
    """The rows ``tally`` counts, read into memory (the columns ``columns`` names):
    ``[kept]`` or ``[train, held out]``."""
    names = list(dict.fromkeys(columns.values()))
    sides: list[dict[str, list[Any]]] = [{c: [] for c in names}, {c: [] for c in names}]
    for batch in _first_rows(files, names, max_rows):
        texts = batch[columns[TEXT]]
        held = [split.holds_out(str(t)) for t in texts] if split else [0] * len(texts)
        for c in names:
            for value, out in zip(batch[c], held, strict=True):
                sides[out][c].append(value)
    return sides if split else sides[:1]


def counted(rows: dict[str, list[Any]], columns: dict[str, str]) -> Tally:
    """``tally`` of rows already in memory."""
    label = columns.get(LABEL)
    return Tally(len(rows[columns[TEXT]]), Counter(rows[label]) if label else Counter())


def _batches(files: SplitFiles, columns: list[str]) -> Iterator[dict[str, list[Any]]]:
    """The split's ``columns`` a block at a time, in file order."""
    if files.format == "hf":
        for table in files.hf.select_columns(columns).with_format("arrow").iter(batch_size=4096):
            yield {c: table.column(c).to_pylist() for c in columns}
        return
    for path in files.paths:
        yield from column_batches(path, files.format, columns)


def _first_rows(
    files: SplitFiles, columns: list[str], max_rows: int | None
) -> Iterator[dict[str, list[Any]]]:
    """``_batches`` of the first ``max_rows`` rows (all rows if None), as the pipeline's
    ``limit``."""
    left = max_rows
    for batch in _batches(files, columns):
        if left is not None:
            size = min(len(batch[columns[0]]), left)
            left -= size
            batch = {c: values[:size] for c, values in batch.items()}
        yield batch
        if left == 0:
            return
