"""The ``pretrain`` job: a DistilBERT, BERT or RoBERTa masked LM from scratch around a
registered tokenizer, 15% of tokens masked; registers a fill-mask model version."""

from __future__ import annotations

from typing import Any

from jobs.data.pipeline import prepare
from jobs.errors import JobInputError
from jobs.runtime.context import JobContext
from jobs.train.fit import Lineage, train_and_register
from orchestrator.specs.models import ArchitectureSpec, PretrainJobSpec


def model_config(
    arch: ArchitectureSpec, vocab_size: int, pad_id: int, special: dict[str, int]
) -> dict[str, Any]:
    """``AutoConfig.for_model`` arguments for the architecture, in its own field names."""
    if arch.architecture == "distilbert":
        return {
            "model_type": "distilbert",
            "vocab_size": vocab_size,
            "dim": arch.hidden,
            "n_layers": arch.layers,
            "n_heads": arch.heads,
            "hidden_dim": arch.intermediate,
            "max_position_embeddings": arch.max_positions,
            "dropout": arch.dropout,
            "attention_dropout": arch.dropout,
            "pad_token_id": pad_id,
        }
    common = {
        "vocab_size": vocab_size,
        "hidden_size": arch.hidden,
        "num_hidden_layers": arch.layers,
        "num_attention_heads": arch.heads,
        "intermediate_size": arch.intermediate,
        "hidden_dropout_prob": arch.dropout,
        "attention_probs_dropout_prob": arch.dropout,
        "pad_token_id": pad_id,
    }
    if arch.architecture == "bert":
        return {"model_type": "bert", "max_position_embeddings": arch.max_positions, **common}
    return {
        "model_type": "roberta",
        "max_position_embeddings": arch.max_positions + 2,
        "type_vocab_size": 1,
        **special,
        **common,
    }


def run(spec: PretrainJobSpec, ctx: JobContext) -> dict[str, Any]:
    from transformers import AutoTokenizer

    registered = ctx.tokenizer(spec.tokenizer)
    tokenizer_dir, tokenizer_ref = registered.artifact_uri, registered.ref
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tokenizer.mask_token is None or tokenizer.pad_token is None:
        raise JobInputError(
            f"tokenizer {tokenizer_ref} has no mask or pad token: masked-LM "
            "pretraining needs both (train it with the default special tokens)"
        )
    special = {
        "bos_token_id": tokenizer.bos_token_id or tokenizer.cls_token_id,
        "eos_token_id": tokenizer.eos_token_id or tokenizer.sep_token_id,
    }
    config = model_config(spec.model, len(tokenizer), tokenizer.pad_token_id, special)
    ctx.progress(f"reading the corpus; tokenizer {tokenizer_ref} ({len(tokenizer):,} tokens)")
    data = prepare(spec.data, "mlm", tokenizer_dir, None, spec.scaling)
    ctx.progress(f"{data.splits['train'].rows:,} train / {data.splits['eval'].rows:,} eval rows")
    return train_and_register(
        spec,
        ctx,
        {
            "task": "fill-mask",
            "model_dir": None,
            "model_config": config,
            "tokenizer_dir": tokenizer_dir,
            "mlm_probability": spec.mlm_probability,
            "best_metric": "loss",
        },
        data,
        Lineage(tokenizer_id=registered.id),
    )
