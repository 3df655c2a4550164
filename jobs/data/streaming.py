"""Ray Data's side of a streaming pipeline: lazy reads of a split's checked files, and the pool
of tokenizer actors a dataset streams through. Rows never pass through the driver.

Every operator asks for a fraction of a CPU: with the default of 1 CPU a task cannot start
beside the training workers on a small machine, and the job hangs."""

from __future__ import annotations

import math
from typing import Any

import ray

from jobs.data.files import SplitFiles, check_files
from jobs.data.readers import Fingerprint, csv_parse_options
from orchestrator.specs.training import Files

READ_CPUS = 0.25
OP_CPUS = 0.125


def read_args() -> dict[str, Any]:
    """Read tasks take a fraction of a CPU so that they fit beside the training workers."""
    return {"num_cpus": READ_CPUS}  # `ray_remote_args=` is deprecated in Ray 2.60


def read_dataset(files: SplitFiles) -> ray.data.Dataset:
    """A lazy dataset over a split's checked files."""
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


def read_files(spec: Files, what: str) -> tuple[ray.data.Dataset, Fingerprint, list[str]]:
    """A lazy dataset over a split's files after ``check_files``, with their fingerprint and
    the column names of the first file."""
    files = check_files(spec, what)
    return read_dataset(files), files.fingerprint, files.columns


def tokenizer_pool(
    ds: ray.data.Dataset,
    udf: type,
    kwargs: dict[str, Any],
    data_cpus: float,
    batch_size: int,
    actors: int | None,
) -> ray.data.Dataset:
    """``ds`` through a pool of ``udf(**kwargs)`` actors sized from the CPUs set aside for the
    input pipeline (a pool that would not fit would stall the job); ``actors`` fixes the
    pool's size instead. The CPUs left after the read tasks are shared between them."""
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
