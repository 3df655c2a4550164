"""A training job's input pipelines: ``prepare`` resolves and checks each split's files once,
counts rows and labels, then builds the tokenised train/eval splits (batches are collated in
the training workers: ``jobs.data.collate``). The steps are the same for every kind of data;
what differs (readers, tokenizer UDF, label names) is the kind's: ``TabularData``
(classification, masked LM) or ``TaggedData`` (token classification).

Streaming (``data.pipeline``): rows never pass through the driver's memory; the driver builds
lazy ``ray.data.Dataset``s and hands them to the ``TorchTrainer``, whose workers pull their
shards through Ray Data's read tasks and tokenizer actors (``jobs.data.streaming``).

In memory (one worker, small data): the driver reads the same rows with the same parsers and
tokenises them with the same UDFs itself, before training, into ``TokenizedRows``; a
one-worker job trains in its driver, so no Ray Data process starts at all. On a small
machine those processes cost seconds of start-up and a share of the cores beside the
training step (docs/benchmarks.md, *Start-up*).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import ray

from jobs.data.in_memory import TokenizedRows
from jobs.data.readers import Fingerprint
from jobs.data.split import Side, SplitRule
from jobs.data.streaming import OP_CPUS, READ_CPUS
from jobs.data.tabular import TabularData
from jobs.data.tagged import TaggedData
from jobs.errors import JobInputError
from orchestrator.specs.training import DataSpec, Files, ScalingSpec

IN_MEMORY_MAX_BYTES = 64 * 2**20  # data.pipeline auto: at most this much input in memory

Dataset = ray.data.Dataset
Label2Id = dict[str, int] | None


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


class DataKind(Protocol):
    """The parts of ``prepare`` that differ between kinds of data. A source is one set of
    checked files (its ``.files``: their ``SplitFiles``); each source gives one side, or
    both sides of a split by fraction."""

    noun: str  # what a split holds: rows, sentences

    def check(self, files: Files, what: str, split: SplitRule | None) -> Any:
        """The source: ``data.<what>``'s files resolved and checked (columns or tags)."""

    def count(self, source: Any, memory: bool) -> list[Side[Any]]:
        """The source's sides, counted (and read, for an in-memory pipeline)."""

    def label_names(self, train: Side[Any], held: Side[Any]) -> list[str] | None:
        """Label names in id order, checked against the labels the sides hold."""

    def in_memory(self, side: Side[Any], label2id: Label2Id) -> TokenizedRows: ...

    def streaming(self, side: Side[Any], label2id: Label2Id, data_cpus: float) -> Dataset: ...


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
    kind_of = TaggedData if task == "token-classification" else TabularData
    kind: DataKind = kind_of(spec, task, tokenizer_dir, label_names)
    train, held, memory = _counted_sides(kind, spec, scaling.num_workers)
    names = kind.label_names(train, held)  # label problems first: they say more than no rows
    _check_not_empty(train, held, kind.noun)
    label2id = {n: i for i, n in enumerate(names)} if names is not None else None
    splits = {
        "train": SplitInfo(train.rows, train.source.files.fingerprint),
        "eval": SplitInfo(held.rows, held.source.files.fingerprint),
    }
    if memory:
        return PreparedData(
            kind.in_memory(train, label2id), kind.in_memory(held, label2id), splits, names
        )
    cpus = max(scaling.data_cpus / 2, READ_CPUS + OP_CPUS)  # each split's pool: in turn
    return PreparedData(
        kind.streaming(train, label2id, cpus), kind.streaming(held, label2id, cpus), splits, names
    )


def _counted_sides(
    kind: DataKind, spec: DataSpec, num_workers: int
) -> tuple[Side[Any], Side[Any], bool]:
    """Train and eval, counted, and whether they are read into memory. Each split's files are
    resolved and checked once; with no eval files, both sides come from the train files."""
    split = None if spec.eval is not None else SplitRule(spec.eval_fraction, spec.split_seed)
    sources = [kind.check(spec.train, "train", split)]
    if spec.eval is not None:
        sources.append(kind.check(spec.eval, "eval", None))
    size = sum(source.files.fingerprint.size_bytes for source in sources)
    memory = in_memory(spec.pipeline, num_workers, size)
    train, held = [side for source in sources for side in kind.count(source, memory)]
    return train, held, memory


def in_memory(pipeline: str, num_workers: int, size_bytes: int) -> bool:
    """Whether the driver reads and tokenises the whole dataset itself (``data.pipeline``):
    for one worker (it trains in the driver) and at most 64 MiB of files with ``auto``."""
    if pipeline != "auto":
        return pipeline == "in-memory"
    return num_workers == 1 and size_bytes <= IN_MEMORY_MAX_BYTES


def _check_not_empty(train: Side[Any], held: Side[Any], noun: str) -> None:
    for name, side in (("train", train), ("eval", held)):
        if side.rows == 0:
            raise JobInputError(
                f"the {name} split has no {noun}"
                + (" (data.eval_fraction too small?)" if name == "eval" else "")
            )
