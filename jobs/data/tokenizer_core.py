"""What the tokenizer UDFs of both kinds of data share: the tokenizer's Rust core, built once
by the driver and loaded by every UDF (in a Ray actor or in the driver), and the ragged
arrays of ids they return."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from jobs.errors import JobInputError


@functools.lru_cache(maxsize=8)  # train and eval share it
def tokenizer_core(folder: str, max_length: int, words: bool = False) -> str | None:
    """The tokenizer's Rust core as transformers builds it from ``folder`` (``tokenizer.json``
    with ``tokenizer_config.json`` applied: lower-casing, prefix space, truncation side, added
    tokens), set to truncate as ``tokenizer(..., truncation=True, max_length=...)`` does and
    never to pad, serialised; None for a slow (Python) tokenizer. Built once, by the driver:
    the tokenizer actors load it with ``tokenizers.Tokenizer.from_str`` and never import
    transformers, which imports torch (seconds and hundreds of MB more per actor)."""
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


def words_core(tokenizer_dir: str, max_length: int) -> str:
    """``tokenizer_core`` for pre-split words; token classification needs a fast tokenizer."""
    core = tokenizer_core(tokenizer_dir, max_length, words=True)
    if core is None:
        raise JobInputError(
            f"the tokenizer in {tokenizer_dir} is not a fast tokenizer: token "
            "classification needs its word_ids() to align tags with sub-tokens"
        )
    return core


def ragged(rows: list[list[int]], dtype: Any = np.int32) -> np.ndarray:
    """One array per row, in an object array (rows of different lengths)."""
    out = np.empty(len(rows), dtype=object)
    out[:] = [np.asarray(r, dtype=dtype) for r in rows]
    return out
