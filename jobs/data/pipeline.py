"""Input pipelines: read dataset files, map columns, split, check labels and tokenise
(batches are collated in the training workers: ``jobs.data.collate``).

Streaming (``data.pipeline``): rows never pass through the driver's memory; the driver builds
lazy ``ray.data.Dataset``s and hands them to the ``TorchTrainer``, whose workers pull their
shards through Ray Data's read tasks and tokenizer actors. Tagged sentences (token
classification) are checked and counted by the driver streaming each file once; Ray tasks
then parse the files again with the same parser.

In memory (one worker, small data): the driver reads the same rows with the same parsers and
tokenises them with the same UDFs itself, before training, into ``TokenizedRows``; a
one-worker job trains in its driver, so no Ray Data process starts at all. On a 2-core
machine those processes cost seconds of start-up and a share of the cores beside the
training step (README, *Benchmarks*).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import ray

from jobs.data.in_memory import TokenizedRows
from jobs.data.readers import (
    TAGGED_FORMATS,
    Fingerprint,
    TagScan,
    check_not_empty,
    check_utf8,
    column_batches,
    csv_parse_options,
    default_tag_names,
    fingerprint_files,
    header_columns,
    read_sentences,
    resolve_files,
    scan_sentences,
    single_format,
    tag_ids,
)
from jobs.errors import JobInputError
from orchestrator.specs.training import Columns, DataSpec, Files, ScalingSpec

TEXT, PAIR, LABEL = "text", "text_pair", "label"


@dataclass
class SplitInfo:
    rows: int
    fingerprint: Fingerprint


@dataclass
class PreparedData:
    """Tokenised splits (lazy Ray Data datasets, or rows in memory) plus what the driver learnt
    about them on the way."""

    train: ray.data.Dataset | TokenizedRows
    eval: ray.data.Dataset | TokenizedRows
    splits: dict[str, SplitInfo] = field(default_factory=dict)
    label_names: list[str] | None = None

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, TokenizedRows)

    @property
    def pipeline(self) -> str:
        """``data.pipeline`` as it ran: in-memory or streaming."""
        return "in-memory" if self.in_memory else "streaming"


# --- reading ------------------------------------------------------------------------------


class SplitFiles(NamedTuple):
    """A split's files after the checks every job makes before reading them."""

    paths: list[str]
    format: str
    fingerprint: Fingerprint
    columns: list[str]  # of the first file
    hf: Any = None  # the loaded `save_to_disk` dataset (format hf)


def check_files(spec: Files, what: str) -> SplitFiles:
    """A split's files, after checking they exist, are not empty and are valid UTF-8 text."""
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


def read_files(spec: Files, what: str) -> tuple[ray.data.Dataset, Fingerprint, list[str]]:
    """A lazy dataset over a split's checked files (``check_files``), with the column names
    of the first file."""
    files = check_files(spec, what)
    return _ray_dataset(files), files.fingerprint, files.columns


def _ray_dataset(files: SplitFiles) -> ray.data.Dataset:
    paths, fmt = files.paths, files.format
    if fmt == "hf":
        return ray.data.from_huggingface(files.hf)
    if fmt in ("csv", "tsv"):
        return ray.data.read_csv(paths, parse_options=csv_parse_options(fmt), **read_args())
    if fmt == "jsonl":
        return ray.data.read_json(paths, lines=True, **read_args())
    if fmt == "parquet":
        return ray.data.read_parquet(paths, **read_args())
    return ray.data.read_text(paths, **read_args())


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


def read_args() -> dict[str, Any]:
    """Read tasks take a fraction of a CPU so that they fit beside the training workers."""
    return {"num_cpus": READ_CPUS}  # `ray_remote_args=` is deprecated in Ray 2.60


# Every Ray Data operator asks for a fraction of a CPU: with the default of 1 CPU a task
# cannot start beside the training workers on a small machine, and the job hangs.
READ_CPUS = 0.25
OP_CPUS = 0.125


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


@functools.lru_cache(maxsize=8)  # train and eval share it
def tokenizer_core(folder: str, max_length: int, words: bool = False) -> str | None:
    """The tokenizer's Rust core as transformers builds it from ``folder`` (``tokenizer.json``
    with ``tokenizer_config.json`` applied: lower-casing, prefix space, truncation side, added
    tokens), set to truncate as ``tokenizer(..., truncation=True, max_length=...)`` does and
    never to pad, serialised; None for a slow (Python) tokenizer. Built once, by the driver:
    the tokenizer actors load it with ``tokenizers.Tokenizer.from_str`` and never import
    transformers, which imports torch (2.1 s and 240 MB more per actor, measured)."""
    from transformers import AutoTokenizer

    loaded = AutoTokenizer.from_pretrained(folder)
    if words and getattr(loaded, "add_prefix_space", None) is False:  # byte-level BPE
        loaded = AutoTokenizer.from_pretrained(folder, add_prefix_space=True)
    if not loaded.is_fast:
        return None
    core = loaded.backend_tokenizer
    core.no_padding()  # tokenizer.json may carry a padding (MiniLM's: to 128)
    core.enable_truncation(max_length, direction=loaded.truncation_side)
    return str(core.to_str())


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
        out: dict[str, Any] = {"input_ids": _ragged(ids)}
        if segments is not None:
            out["token_type_ids"] = _ragged(segments)
        if LABEL in batch:
            labels = batch[LABEL]
            if self.label2id is not None and labels.dtype.kind not in "iu":
                labels = np.array([self.label2id[str(v)] for v in labels])
            out["labels"] = labels.astype(np.int64)
        return out


def _ragged(rows: list[list[int]], dtype: Any = np.int32) -> np.ndarray:
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=dtype) for r in rows]
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
    return _tokenizer_pool(
        ds,
        Tokenize,
        {
            "tokenizer_dir": tokenizer_dir,
            "core": tokenizer_core(tokenizer_dir, max_length),
            "max_length": max_length,
            "columns": columns,
            "label2id": label2id,
        },
        data_cpus,
        batch_size,
        actors,
    )


def _tokenizer_pool(
    ds: ray.data.Dataset,
    udf: type,
    kwargs: dict[str, Any],
    data_cpus: float,
    batch_size: int,
    actors: int | None,
) -> ray.data.Dataset:
    budget = max(data_cpus - READ_CPUS, OP_CPUS)
    actors = actors or max(1, math.floor(budget))
    return ds.map_batches(
        udf,
        fn_constructor_kwargs=kwargs,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=budget / actors,
    )


# --- the whole pipeline, as the driver builds it ----------------------------------------------


IN_MEMORY_MAX_BYTES = 64 * 2**20  # data.pipeline auto: at most this much input in memory
IN_MEMORY_BLOCK = 1024  # rows tokenised at a time by an in-memory pipeline


def in_memory(spec: DataSpec, num_workers: int) -> bool:
    """Whether the driver reads and tokenises the whole dataset itself (``data.pipeline``):
    for one worker (it trains in the driver) and at most 64 MiB of files with ``auto``."""
    if spec.pipeline != "auto":
        return spec.pipeline == "in-memory"
    if num_workers != 1:
        return False
    size = 0
    for what, files in (("train", spec.train), ("eval", spec.eval)):
        if files is None:
            continue
        if files.format == "hf":
            paths = _hf_files(files.files[0])
        else:
            paths = resolve_files(files.files, f"data.{what}")
        size += sum(Path(p).stat().st_size for p in paths)
    return size <= IN_MEMORY_MAX_BYTES


def _batches(files: Files, what: str, columns: list[str]) -> Iterator[dict[str, list[Any]]]:
    """The split's ``columns`` a block at a time, in file order, read in the driver."""
    if files.format == "hf":
        import datasets

        loaded = datasets.load_from_disk(files.files[0])
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded[files.hf_split]
        for table in loaded.select_columns(columns).with_format("arrow").iter(batch_size=4096):
            yield {c: table.column(c).to_pylist() for c in columns}
        return
    paths = resolve_files(files.files, f"data.{what}")
    fmt = single_format(paths, files.format, f"data.{what}")
    for path in paths:
        yield from column_batches(path, fmt, columns)


def _first_rows(
    files: Files, what: str, columns: list[str], max_rows: int | None
) -> Iterator[dict[str, list[Any]]]:
    """``_batches`` of the first ``max_rows`` rows (all rows if None), as the pipeline's
    ``limit``."""
    left = max_rows
    for batch in _batches(files, what, columns):
        if left is not None:
            size = min(len(batch[columns[0]]), left)
            left -= size
            batch = {c: values[:size] for c, values in batch.items()}
        yield batch
        if left == 0:
            return


class Tally(NamedTuple):
    rows: int
    labels: Counter[Any]


def tally(
    files: Files,
    what: str,
    columns: dict[str, str],
    max_rows: int | None,
    split: tuple[float, int] | None = None,
) -> list[Tally]:
    """Rows and rows per label of a split (the first ``max_rows`` rows, as the pipeline's
    ``limit``), or of both sides of a split by fraction (``split``: fraction, seed; the same
    content hash as ``split_by_fraction``): ``[kept]`` or ``[train, held out]``.

    Read in the driver with pyarrow, the parser Ray Data uses: on SST-2 (67k rows) this takes
    0.1 s where two Ray Data passes took 3 s on 2 cores (README, *Benchmarks*); label and
    parse errors surface here, before any worker starts."""
    label, text = columns.get(LABEL), columns[TEXT]
    read = list(dict.fromkeys(c for c in (label, text if split else None) if c)) or [text]
    counts: list[Counter[Any]] = [Counter(), Counter()]  # kept (or train), held out
    for batch in _first_rows(files, what, read, max_rows):
        labels = batch[label] if label else [None] * len(batch[read[0]])
        if split:
            held = [_in_eval(str(t), split[1], split[0]) for t in batch[text]]
            for value, out in zip(labels, held, strict=True):
                counts[out][value] += 1
        else:
            counts[0].update(labels)
    tallies = [Tally(sum(c.values()), c if label else Counter()) for c in counts]
    return tallies if split else tallies[:1]


def collect(
    files: Files,
    what: str,
    columns: dict[str, str],
    max_rows: int | None,
    split: tuple[float, int] | None = None,
) -> list[dict[str, list[Any]]]:
    """The rows ``tally`` counts, read into memory (the columns ``columns`` names):
    ``[kept]`` or ``[train, held out]``."""
    names = list(dict.fromkeys(columns.values()))
    sides: list[dict[str, list[Any]]] = [{c: [] for c in names}, {c: [] for c in names}]
    for batch in _first_rows(files, what, names, max_rows):
        texts = batch[columns[TEXT]]
        held = [_in_eval(str(t), split[1], split[0]) for t in texts] if split else [0] * len(texts)
        for c in names:
            for value, out in zip(batch[c], held, strict=True):
                sides[out][c].append(value)
    return sides if split else sides[:1]


def _counted(rows: dict[str, list[Any]], columns: dict[str, str]) -> Tally:
    label = columns.get(LABEL)
    return Tally(len(rows[columns[TEXT]]), Counter(rows[label]) if label else Counter())


def tokenize_in_memory(rows: dict[str, list[Any]], udf: Any) -> TokenizedRows:
    """Rows read into memory, tokenised by ``udf`` (the Ray Data UDF a streaming pipeline
    runs in its actors) a block at a time, in the calling process."""
    count = len(next(iter(rows.values())))
    return TokenizedRows.concat(
        [
            udf({c: objects(values[i : i + IN_MEMORY_BLOCK]) for c, values in rows.items()})
            for i in range(0, count, IN_MEMORY_BLOCK)
        ]
    )


def objects(values: list[Any]) -> np.ndarray:
    """A column as Ray Data hands it to a UDF: numbers as a numeric array, anything else (str,
    lists of words) as an object array, one element per row."""
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return np.asarray(values)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def prepare(
    spec: DataSpec,
    task: str,
    tokenizer_dir: str,
    label_names: list[str] | None,
    scaling: ScalingSpec,
) -> PreparedData:
    """The train/eval splits, streaming (lazy Ray Data pipelines) or in memory (tokenised here,
    ``data.pipeline``); rows counted and labels checked on the way. ``task``: classification,
    mlm or token-classification."""
    ray.data.DataContext.get_current().enable_progress_bars = False  # they flood job logs
    memory = in_memory(spec, scaling.num_workers)
    if task == "token-classification":
        return _prepare_tagged(spec, tokenizer_dir, label_names, scaling.data_cpus, memory)
    train_files = check_files(spec.train, "train")
    columns = check_columns(train_files.columns, spec, task, ", ".join(spec.train.files))
    eval_files, eval_columns = train_files, columns
    if spec.eval is not None:
        eval_files = check_files(spec.eval, "eval")
        eval_columns = check_columns(eval_files.columns, spec, task, ", ".join(spec.eval.files))
    split = None if spec.eval is not None else (spec.eval_fraction, spec.split_seed)
    rows: list[dict[str, list[Any]]] = []
    if memory:
        rows = collect(spec.train, "train", columns, spec.max_rows, split)
        if spec.eval is not None:
            rows += collect(spec.eval, "eval", eval_columns, spec.max_rows)
        (train_rows, train_labels), (eval_rows, eval_labels) = (
            _counted(rows[0], columns),
            _counted(rows[1], eval_columns),
        )
    elif spec.eval is not None:
        [(train_rows, train_labels)] = tally(spec.train, "train", columns, spec.max_rows)
        [(eval_rows, eval_labels)] = tally(spec.eval, "eval", eval_columns, spec.max_rows)
    else:
        [(train_rows, train_labels), (eval_rows, eval_labels)] = tally(
            spec.train, "train", columns, spec.max_rows, split
        )
    names, label2id = None, None
    if task == "classification":  # label problems first: they say more than a missing split
        names = resolve_labels([*train_labels, *eval_labels], label_names)
        label2id = {n: i for i, n in enumerate(names)}
    for name, count in (("train", train_rows), ("eval", eval_rows)):
        if count == 0:
            raise JobInputError(
                f"the {name} split has no rows"
                + (" (data.eval_fraction too small?)" if name == "eval" else "")
            )
    splits = {
        "train": SplitInfo(train_rows, train_files.fingerprint),
        "eval": SplitInfo(eval_rows, eval_files.fingerprint),
    }
    if memory:
        core = tokenizer_core(tokenizer_dir, spec.max_length)
        train, held = (
            tokenize_in_memory(side, Tokenize(tokenizer_dir, core, spec.max_length, cols, label2id))
            for side, cols in ((rows[0], columns), (rows[1], eval_columns))
        )
        return PreparedData(train, held, splits, names)
    train_ds, held_ds = _ray_dataset(train_files), _ray_dataset(eval_files)
    if spec.max_rows:
        train_ds, held_ds = train_ds.limit(spec.max_rows), held_ds.limit(spec.max_rows)
    if split is not None:
        train_ds, held_ds = split_by_fraction(train_ds, columns[TEXT], *split)
    cpus = max(scaling.data_cpus / 2, READ_CPUS + OP_CPUS)  # each split's pool: in turn
    return PreparedData(
        train=tokenize(train_ds, tokenizer_dir, spec.max_length, columns, label2id, cpus),
        eval=tokenize(held_ds, tokenizer_dir, spec.max_length, eval_columns, label2id, cpus),
        splits=splits,
        label_names=names,
    )


# --- token classification: tagged sentences --------------------------------------------------

TOKENS, TAGS = "tokens", "tags"  # the columns of parsed sentences (words, tag ids)
IGNORED = -100  # the label of sub-tokens and special tokens: no loss, no metric


class SplitRule(NamedTuple):
    """Which sentences of a split by fraction a dataset keeps: a hash of the joined words."""

    fraction: float
    seed: int
    held_out: bool  # keep the held-out (eval) sentences, else the others

    def holds_out(self, tokens: list[str]) -> bool:
        return _in_eval(" ".join(tokens), self.seed, self.fraction)

    def keeps(self, tokens: list[str]) -> bool:
        return self.holds_out(tokens) == self.held_out


@dataclass
class TaggedSplit:
    """One split's conll / jsonl files, checked and counted by the driver."""

    format: str
    scan: TagScan
    fingerprint: Fingerprint


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
    if files.format == "hf":
        raise JobInputError(f"{key}.format hf: token classification reads conll or jsonl files")
    paths = resolve_files(files.files, key)
    fmt = single_format(paths, files.format, key)
    if fmt not in TAGGED_FORMATS:
        raise JobInputError(
            f"{key}: {paths[0]} is read as {fmt}; token classification reads conll or "
            f"jsonl files (set {key}.format)"
        )
    check_utf8(paths)
    fingerprint = fingerprint_files(paths)
    scan = scan_sentences(
        paths,
        fmt,
        key,
        tokens=columns.tokens,
        tags=columns.tags,
        labels=labels,
        max_rows=max_rows,
        held_out=split.holds_out if split else None,
    )
    return TaggedSplit(fmt, scan, fingerprint)


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
            "fmt": tagged.format,
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
    for item in _sentence_files(tagged):
        for row in _sentence_rows(
            item, tagged.format, (columns.tokens, columns.tags), label2id, split
        ):
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
            "input_ids": _ragged([e.ids for e in encoded]),
            "labels": _ragged(labels, np.int64),
        }


def tokenize_tagged(
    ds: ray.data.Dataset,
    tokenizer_dir: str,
    max_length: int,
    data_cpus: float,
    batch_size: int = 256,
    actors: int | None = None,
) -> ray.data.Dataset:
    """Stream sentences through a pool of ``TokenizeTagged`` actors (sized as ``tokenize``)."""
    core = words_core(tokenizer_dir, max_length)
    return _tokenizer_pool(ds, TokenizeTagged, {"core": core}, data_cpus, batch_size, actors)


def words_core(tokenizer_dir: str, max_length: int) -> str:
    """``tokenizer_core`` for pre-split words; token classification needs a fast tokenizer."""
    core = tokenizer_core(tokenizer_dir, max_length, words=True)
    if core is None:
        raise JobInputError(
            f"the tokenizer in {tokenizer_dir} is not a fast tokenizer: token "
            "classification needs its word_ids() to align tags with sub-tokens"
        )
    return core


def _prepare_tagged(
    spec: DataSpec,
    tokenizer_dir: str,
    label_names: list[str] | None,
    data_cpus: float,
    memory: bool,
) -> PreparedData:
    """Token classification's train/eval splits: the driver checks and counts every sentence
    used (streaming each file once), then Ray tasks parse and tokenise them, or the driver
    does (``memory``)."""
    columns = spec.columns
    if spec.eval is not None:
        train = check_tagged_files(spec.train, "data.train", columns, label_names, spec.max_rows)
        held = check_tagged_files(spec.eval, "data.eval", columns, label_names, spec.max_rows)
        train_rule = eval_rule = None
        train_rows, eval_rows = train.scan.sentences, held.scan.sentences
    else:
        rule = SplitRule(spec.eval_fraction, spec.split_seed, held_out=True)
        train = held = check_tagged_files(
            spec.train, "data.train", columns, label_names, spec.max_rows, rule
        )
        train_rule, eval_rule = rule._replace(held_out=False), rule
        eval_rows = train.scan.held_out
        train_rows = train.scan.sentences - eval_rows
    names = label_names or default_tag_names(train.scan.tags | held.scan.tags)
    for name, rows in (("train", train_rows), ("eval", eval_rows)):
        if rows == 0:
            raise JobInputError(
                f"the {name} split has no sentences"
                + (" (data.eval_fraction too small?)" if name == "eval" else "")
            )
    label2id = {n: i for i, n in enumerate(names)}
    splits = {
        "train": SplitInfo(train_rows, train.fingerprint),
        "eval": SplitInfo(eval_rows, held.fingerprint),
    }
    if memory:
        words = TokenizeTagged(words_core(tokenizer_dir, spec.max_length))
        return PreparedData(
            sentences_in_memory(train, columns, label2id, train_rule, words),
            sentences_in_memory(held, columns, label2id, eval_rule, words),
            splits,
            names,
        )
    cpus = max(data_cpus / 2, READ_CPUS + OP_CPUS)  # each split's pool: they run in turn
    train_ds, held_ds = (
        tokenize_tagged(
            sentence_dataset(tagged, columns, label2id, rule), tokenizer_dir, spec.max_length, cpus
        )
        for tagged, rule in ((train, train_rule), (held, eval_rule))
    )
    return PreparedData(train_ds, held_ds, splits, names)
