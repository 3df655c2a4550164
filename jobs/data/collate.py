"""Batches inside the training workers: dynamic padding per batch (and masking for MLM, or
per-token labels padded with -100 for token classification) with transformers' collators,
batches of similar length, and a count of the real tokens collated for tokens/s."""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.data.collate_fn import NumpyBatchCollateFn


class PadCollate(NumpyBatchCollateFn):
    """Dynamic padding per batch (and 15% masking for MLM) with transformers' collators;
    ``token_labels``: labels per token, padded with -100 like the inputs."""

    def __init__(
        self,
        tokenizer_dir: str,
        mlm_probability: float | None = None,
        multiple_of: int | None = None,
        token_labels: bool = False,
    ) -> None:
        self.tokenizer_dir = tokenizer_dir
        self.mlm_probability = mlm_probability
        self.multiple_of = multiple_of  # 8 on GPUs (tensor cores); on CPUs it only adds padding
        self.token_labels = token_labels
        self._collator: Any = None
        self.segments = True  # whether the model takes token_type_ids (its tokenizer says)

    def _build(self) -> Any:
        from transformers import (
            AutoTokenizer,
            DataCollatorForLanguageModeling,
            DataCollatorForTokenClassification,
            DataCollatorWithPadding,
        )

        tok = AutoTokenizer.from_pretrained(self.tokenizer_dir)
        self.segments = "token_type_ids" in tok.model_input_names
        if self.token_labels:
            return DataCollatorForTokenClassification(tok, pad_to_multiple_of=self.multiple_of)
        if self.mlm_probability is not None:
            return DataCollatorForLanguageModeling(
                tok, mlm_probability=self.mlm_probability, pad_to_multiple_of=self.multiple_of
            )
        return DataCollatorWithPadding(tok, pad_to_multiple_of=self.multiple_of)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        if self._collator is None:
            self._collator = self._build()
        wanted = (
            ("input_ids", "token_type_ids", "labels") if self.segments else ("input_ids", "labels")
        )
        keys = [k for k in wanted if k in batch]
        rows = [{k: batch[k][i] for k in keys} for i in range(len(batch["input_ids"]))]
        out = self._collator(rows)
        TokenCounter.add(int(out["attention_mask"].sum()), len(rows))
        return dict(out)


class TokenCounter:
    """Real (non-padding) tokens and rows collated in this process, for tokens/s."""

    tokens = 0
    rows = 0

    @classmethod
    def add(cls, tokens: int, rows: int) -> None:
        cls.tokens += tokens
        cls.rows += rows


class LengthGroupedBatches:
    """Batches of similar length: sort windows of 50 batches by length, then shuffle the
    batches (less padding, same randomness across the epoch as a whole). The shuffle is
    seeded by ``seed`` and the pass (epoch): a run is reproducible, and a resumed run skips
    the batches the interrupted one saw."""

    WINDOW = 50

    def __init__(self, shard: Any, batch_size: int, collate: PadCollate, seed: int = 0) -> None:
        self.shard, self.batch_size, self.collate = shard, batch_size, collate
        self.seed, self.passes = seed, 0

    def __iter__(self) -> Any:
        rng = np.random.default_rng([self.seed, self.passes])
        self.passes += 1
        for window in self.shard.iter_batches(
            batch_size=self.batch_size * self.WINDOW, batch_format="numpy"
        ):
            order = np.argsort([len(x) for x in window["input_ids"]], kind="stable")
            starts = list(range(0, len(order), self.batch_size))
            rng.shuffle(starts)
            for start in starts:
                idx = order[start : start + self.batch_size]
                yield self.collate({k: v[idx] for k, v in window.items()})
