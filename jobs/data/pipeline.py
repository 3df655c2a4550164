"""Ray Data pipelines: read dataset files, map columns, split, check labels and tokenise as
a stream (batches are collated in the training workers: ``jobs.data.collate``).

Rows never pass through the driver's memory: the driver builds lazy ``ray.data.Dataset``s
and hands them to the ``TorchTrainer``, whose workers pull their shards.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import ray

from jobs.data.readers import (
    Fingerprint,
    check_not_empty,
    check_utf8,
    fingerprint_files,
    resolve_files,
    single_format,
)
from jobs.errors import JobInputError
from jobs.specs.training import DataSpec, Files

TEXT, PAIR, LABEL = "text", "text_pair", "label"


@dataclass
class SplitInfo:
    rows: int
    fingerprint: Fingerprint


@dataclass
class PreparedData:
    """Lazy tokenised datasets plus what the driver learnt about them on the way."""

    train: ray.data.Dataset
    eval: ray.data.Dataset
    splits: dict[str, SplitInfo] = field(default_factory=dict)
    label_names: list[str] | None = None


# --- reading ------------------------------------------------------------------------------


def read_files(spec: Files, what: str) -> tuple[ray.data.Dataset, Fingerprint]:
    """A lazy dataset over a split's files, after checking they exist, are not empty and
    are valid UTF-8 text."""
    if spec.format == "hf":
        return _read_hf(spec, what)
    paths = resolve_files(spec.files, f"data.{what}")
    fmt = single_format(paths, spec.format, f"data.{what}")
    check_not_empty(paths)
    if fmt != "parquet":
        check_utf8(paths)
    fingerprint = fingerprint_files(paths)
    if fmt in ("csv", "tsv"):
        import pyarrow.csv as pacsv

        parse = pacsv.ParseOptions(
            delimiter="\t" if fmt == "tsv" else ",", quote_char=False if fmt == "tsv" else '"'
        )
        return ray.data.read_csv(paths, parse_options=parse, **read_args()), fingerprint
    if fmt == "jsonl":
        return ray.data.read_json(paths, lines=True, **read_args()), fingerprint
    if fmt == "parquet":
        return ray.data.read_parquet(paths, **read_args()), fingerprint
    return ray.data.read_text(paths, **read_args()), fingerprint


def _read_hf(spec: Files, what: str) -> tuple[ray.data.Dataset, Fingerprint]:
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
    files = sorted(str(p) for p in Path(folder).rglob("*") if p.is_file())
    return ray.data.from_huggingface(loaded), fingerprint_files(files)


def read_args() -> dict[str, Any]:
    """Read tasks take a fraction of a CPU so that they fit beside the training workers."""
    return {"num_cpus": READ_CPUS}  # `ray_remote_args=` is deprecated in Ray 2.60


# Every Ray Data operator asks for a fraction of a CPU: with the default of 1 CPU a task
# cannot start beside the training workers on a small machine, and the job hangs.
READ_CPUS = 0.25
OP_CPUS = 0.125


def check_columns(ds: ray.data.Dataset, spec: DataSpec, task: str, source: str) -> dict[str, str]:
    """Which file column plays which role (text / text_pair / label); names what is missing.

    Columns are not renamed in the pipeline (a projection stage would need a CPU of its own);
    the tokenizer reads them under their own names."""
    names = ds.schema().names
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


# --- splitting and labels -------------------------------------------------------------------


def _in_eval(text: str, seed: int, fraction: float) -> bool:
    digest = hashlib.blake2b(f"{seed}:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


def split_by_fraction(
    ds: ray.data.Dataset, column: str, fraction: float, seed: int
) -> tuple[ray.data.Dataset, ray.data.Dataset]:
    """A deterministic split by content hash: streaming, the same on every run and node."""
    train = ds.filter(lambda row: not _in_eval(str(row[column]), seed, fraction), num_cpus=OP_CPUS)
    held = ds.filter(lambda row: _in_eval(str(row[column]), seed, fraction), num_cpus=OP_CPUS)
    return train, held


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


# --- tokenising -------------------------------------------------------------------------------


class Tokenize:
    """Ray Data UDF: one tokenizer per actor, truncation, no padding (that is per batch)."""

    def __init__(
        self,
        tokenizer_dir: str,
        max_length: int,
        columns: dict[str, str],
        label2id: dict[str, int] | None,
    ) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.max_length = max_length
        self.columns = columns
        self.label2id = label2id

    def __call__(self, raw: dict[str, np.ndarray]) -> dict[str, Any]:
        batch = {role: raw[column] for role, column in self.columns.items()}
        texts = [str(t) for t in batch[TEXT]]
        pairs = [str(t) for t in batch[PAIR]] if PAIR in batch else None
        enc = self.tokenizer(
            texts, pairs, truncation=True, max_length=self.max_length, return_attention_mask=False
        )
        out: dict[str, Any] = {"input_ids": _ragged(enc["input_ids"])}
        if pairs is not None and "token_type_ids" in enc:
            out["token_type_ids"] = _ragged(enc["token_type_ids"])
        if LABEL in batch:
            labels = batch[LABEL]
            if self.label2id is not None and labels.dtype.kind not in "iu":
                labels = np.array([self.label2id[str(v)] for v in labels])
            out["labels"] = labels.astype(np.int64)
        return out


def _ragged(rows: list[list[int]]) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=np.int32) for r in rows]
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
    """Stream ``ds`` through a pool of tokenizer actors sized from the CPUs set aside for
    the input pipeline (a pool that would not fit would stall the job). ``actors`` fixes the
    pool's size instead; the CPUs left after the read tasks are shared between them."""
    budget = max(data_cpus - READ_CPUS, OP_CPUS)
    actors = actors or max(1, math.floor(budget))
    return ds.map_batches(
        Tokenize,
        fn_constructor_kwargs={
            "tokenizer_dir": tokenizer_dir,
            "max_length": max_length,
            "columns": columns,
            "label2id": label2id,
        },
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=budget / actors,
    )


# --- the whole pipeline, as the driver builds it ----------------------------------------------


def _load_split(
    files: Files, spec: DataSpec, task: str, what: str
) -> tuple[Any, dict[str, str], Fingerprint]:
    ds, fingerprint = read_files(files, what)
    columns = check_columns(ds, spec, task, ", ".join(files.files))
    return (ds.limit(spec.max_rows) if spec.max_rows else ds), columns, fingerprint


def _count_labels(
    ds: ray.data.Dataset, label: str | None, where: str
) -> tuple[int, dict[Any, int]]:
    """Rows (and rows per label) in one pass; a read error names the split's files. Only the
    label column streams through the driver (Ray's ``groupby().count()`` spread a few hundred
    rows over 200 shuffle partitions: 7-13 s a split on 2 cores)."""
    try:
        if label is None:
            return ds.count(), {}
        counts: Counter[Any] = Counter()
        for batch in ds.select_columns([label]).iter_batches(
            batch_size=4096,
            batch_format="pyarrow",  # ints stay ints, nulls stay None
        ):
            counts.update(batch[label].to_pylist())
        return sum(counts.values()), dict(counts)
    except JobInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow parse errors surface wrapped by Ray
        cause = str(exc).strip().splitlines()[-1][:300]
        raise JobInputError(f"could not read {where}: {cause}") from None


def prepare(
    spec: DataSpec, task: str, tokenizer_dir: str, label_names: list[str] | None, data_cpus: float
) -> PreparedData:
    """Build the lazy train/eval pipelines; count rows and check labels on the way."""
    ray.data.DataContext.get_current().enable_progress_bars = False  # they flood job logs
    train, columns, train_fp = _load_split(spec.train, spec, task, "train")
    if spec.eval is not None:
        held, eval_columns, eval_fp = _load_split(spec.eval, spec, task, "eval")
    else:
        train, held = split_by_fraction(train, columns[TEXT], spec.eval_fraction, spec.split_seed)
        eval_columns, eval_fp = columns, train_fp
    train_rows, train_labels = _count_labels(
        train, columns.get(LABEL), f"data.train ({spec.train.files[0]})"
    )
    eval_rows, eval_labels = _count_labels(held, eval_columns.get(LABEL), "data.eval")
    names, label2id = None, None
    if task == "classification":  # label problems first: they say more than a missing split
        names = resolve_labels([*train_labels, *eval_labels], label_names)
        label2id = {n: i for i, n in enumerate(names)}
    for name, rows in (("train", train_rows), ("eval", eval_rows)):
        if rows == 0:
            raise JobInputError(
                f"the {name} split has no rows"
                + (" (data.eval_fraction too small?)" if name == "eval" else "")
            )
    cpus = max(data_cpus / 2, READ_CPUS + OP_CPUS)  # each split's pool: they run in turn
    return PreparedData(
        train=tokenize(train, tokenizer_dir, spec.max_length, columns, label2id, cpus),
        eval=tokenize(held, tokenizer_dir, spec.max_length, eval_columns, label2id, cpus),
        splits={"train": SplitInfo(train_rows, train_fp), "eval": SplitInfo(eval_rows, eval_fp)},
        label_names=names,
    )
