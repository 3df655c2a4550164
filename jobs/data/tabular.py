"""Classification and masked-LM data: rows of text (and a label) from csv, tsv, jsonl,
parquet or text files or a `save_to_disk` folder. The label check, the tokenizer UDF and
``TabularData``, the parts of ``prepare`` (``jobs.data.pipeline``) that are this kind's."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import ray

from jobs.data.files import SplitFiles, check_files
from jobs.data.in_memory import TokenizedRows, tokenize_in_memory
from jobs.data.rows import LABEL, PAIR, TEXT, check_columns, collect, counted, tally
from jobs.data.split import Side, SplitRule, sides_of
from jobs.data.streaming import OP_CPUS, read_dataset, tokenizer_pool
from jobs.data.tokenizer_core import ragged, tokenizer_core
from jobs.errors import JobInputError
from orchestrator.specs.training import DataSpec, Files


def resolve_labels(values: list[Any], names: list[str] | None) -> list[str]:
    """Label names in id order, after checking every label value against them."""
    values = [v for v in values if v is not None]
    if not values:
        raise JobInputError("the label column is empty")
    if all(isinstance(v, int | np.integer) for v in values):
        ints = sorted(int(v) for v in values)
        count = len(names) if names else ints[-1] + 1
        bad = [v for v in ints if v < 0 or v >= count]
        if bad:
            raise JobInputError(
                f"label {bad[0]} is out of range: labels must be 0..{count - 1}"
                + (f" (labels: {names})" if names else "")
            )
        return names or [str(i) for i in range(count)]
    strings = sorted({str(v) for v in values})
    if names:
        unknown = [v for v in strings if v not in names]
        if unknown:
            raise JobInputError(f"label {unknown[0]!r} is not one of labels {names}")
        return names
    return strings


class Tokenize:
    """Ray Data UDF: one tokenizer per actor, truncation, no padding (that is per batch).
    Pairs carry their segment ids; the collator drops them for models that take none."""

    def __init__(
        self,
        tokenizer_dir: str,
        core: str | None,
        max_length: int,
        columns: dict[str, str],
        label2id: dict[str, int] | None,
    ) -> None:
        self.core: Any = None
        self.slow: Any = None
        if core is not None:
            import tokenizers

            self.core = tokenizers.Tokenizer.from_str(core)
        else:  # a slow tokenizer: transformers' own call
            from transformers import AutoTokenizer

            self.slow = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.max_length = max_length
        self.columns = columns
        self.label2id = label2id

    def _encode(self, texts: list[str], pairs: list[str] | None) -> tuple[list, list | None]:
        if self.core is not None:
            inputs = list(zip(texts, pairs, strict=True)) if pairs else texts
            encoded = self.core.encode_batch(inputs)
            return [e.ids for e in encoded], [e.type_ids for e in encoded] if pairs else None
        enc = self.slow(
            texts, pairs, truncation=True, max_length=self.max_length, return_attention_mask=False
        )
        return enc["input_ids"], enc.get("token_type_ids") if pairs else None

    def __call__(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        batch = {role: raw[column] for role, column in self.columns.items()}
        texts = [str(t) for t in batch[TEXT]]
        pairs = [str(t) for t in batch[PAIR]] if PAIR in batch else None
        ids, segments = self._encode(texts, pairs)
        out: dict[str, Any] = {"input_ids": ragged(ids)}
        if segments is not None:
            out["token_type_ids"] = ragged(segments)
        if LABEL in batch:
            labels = batch[LABEL]
            if self.label2id is not None and labels.dtype.kind not in "iu":
                labels = np.array([self.label2id[str(v)] for v in labels])
            out["labels"] = labels.astype(np.int64)
        return out


def tokenize(
    ds: ray.data.Dataset,
    tokenizer_dir: str,
    max_length: int,
    columns: dict[str, str],
    label2id: dict[str, int] | None,
    data_cpus: float,
    batch_size: int = 256,
    actors: int | None = None,
) -> ray.data.Dataset:
    """Stream ``ds`` through a pool of ``Tokenize`` actors (``tokenizer_pool``): the CPUs set
    aside for the input pipeline size it, or ``actors`` fixes its size."""
    kwargs = {
        "tokenizer_dir": tokenizer_dir,
        "core": tokenizer_core(tokenizer_dir, max_length),
        "max_length": max_length,
        "columns": columns,
        "label2id": label2id,
    }
    return tokenizer_pool(ds, Tokenize, kwargs, data_cpus, batch_size, actors)


class Table(NamedTuple):
    """A split's checked files, which column plays which role, and the split by fraction
    made of them (None: they are one side's own)."""

    files: SplitFiles
    columns: dict[str, str]
    split: SplitRule | None


class TabularData:
    """``prepare``'s parts for rows of text, with a label each (``task`` classification) or
    none (mlm): the driver counts the rows and labels (or reads them into memory), Ray Data
    reads the files again to stream them."""

    noun = "rows"

    def __init__(
        self, spec: DataSpec, task: str, tokenizer_dir: str, label_names: list[str] | None
    ) -> None:
        self.spec, self.task = spec, task
        self.tokenizer_dir, self.labels = tokenizer_dir, label_names

    def check(self, files: Files, what: str, split: SplitRule | None) -> Table:
        checked = check_files(files, what)
        columns = check_columns(checked.columns, self.spec, self.task, ", ".join(files.files))
        return Table(checked, columns, split)

    def count(self, table: Table, memory: bool) -> list[Side[Table]]:
        """Both sides of the table (or its one side), counted; read into memory if ``memory``."""
        rules, max_rows = sides_of(table.split), self.spec.max_rows
        if memory:
            parts = collect(table.files, table.columns, max_rows, table.split)
            return [
                Side(table, rule, *counted(part, table.columns), read=part)
                for rule, part in zip(rules, parts, strict=True)
            ]
        tallies = tally(table.files, table.columns, max_rows, table.split)
        return [Side(table, rule, *t) for rule, t in zip(rules, tallies, strict=True)]

    def label_names(self, train: Side[Table], held: Side[Table]) -> list[str] | None:
        if self.task != "classification":
            return None
        return resolve_labels([*train.labels, *held.labels], self.labels)

    def in_memory(self, side: Side[Table], label2id: dict[str, int] | None) -> TokenizedRows:
        core = tokenizer_core(self.tokenizer_dir, self.spec.max_length)
        udf = Tokenize(
            self.tokenizer_dir, core, self.spec.max_length, side.source.columns, label2id
        )
        assert side.read is not None  # count(memory=True) read them
        return tokenize_in_memory(side.read, udf)

    def streaming(
        self, side: Side[Table], label2id: dict[str, int] | None, data_cpus: float
    ) -> ray.data.Dataset:
        columns = side.source.columns
        ds = read_dataset(side.source.files)
        if self.spec.max_rows:
            ds = ds.limit(self.spec.max_rows)
        if side.rule is not None:
            ds = keep_side(ds, columns[TEXT], side.rule)
        return tokenize(ds, self.tokenizer_dir, self.spec.max_length, columns, label2id, data_cpus)


def keep_side(ds: ray.data.Dataset, column: str, rule: SplitRule) -> ray.data.Dataset:
    """The rows of ``ds`` on ``rule``'s side of a split by fraction (hashing ``column``):
    streaming, the same on every run and node."""
    return ds.filter(lambda row: rule.keeps(str(row[column])), num_cpus=OP_CPUS)
