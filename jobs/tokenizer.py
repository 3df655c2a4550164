"""The ``tokenizer`` job: train WordPiece, byte-level BPE or Unigram with `tokenizers` on a
streamed corpus, save a folder ``AutoTokenizer`` loads, and register it as NAME version N."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers import trainers as tk_trainers

from jobs.data.corpus import LineCounter, batched, iter_texts
from jobs.data.readers import fingerprint_files, resolve_files
from jobs.errors import JobInputError
from jobs.runtime.context import DatasetFacts, JobContext
from orchestrator.specs.tokenizer import TokenizerJobSpec, TokenizerParams, special_token_roles


def build_tokenizer(p: TokenizerParams) -> tuple[Tokenizer, Any]:
    """An untrained tokenizer pipeline and its trainer for the chosen algorithm."""
    specials = list(p.special_tokens or [])
    roles = special_token_roles(specials)
    if p.algorithm == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=roles["unk_token"]))
        tok.normalizer = normalizers.BertNormalizer(
            lowercase=p.lowercase, strip_accents=p.lowercase
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece(prefix="##")
        trainer = tk_trainers.WordPieceTrainer(
            vocab_size=p.vocab_size,
            special_tokens=specials,
            min_frequency=p.min_frequency,
            continuing_subword_prefix="##",
        )
    elif p.algorithm == "bpe":
        tok = Tokenizer(models.BPE())
        if p.lowercase:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tok.decoder = decoders.ByteLevel()
        trainer = tk_trainers.BpeTrainer(
            vocab_size=p.vocab_size,
            special_tokens=specials,
            min_frequency=p.min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        tok = Tokenizer(models.Unigram())
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if p.lowercase else [])
        tok.normalizer = normalizers.Sequence(steps)
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = tk_trainers.UnigramTrainer(
            vocab_size=p.vocab_size, special_tokens=specials, unk_token=roles["unk_token"]
        )
    return tok, trainer


def add_post_processor(tok: Tokenizer, p: TokenizerParams) -> None:
    """[CLS] A [SEP] (B [SEP]) framing, so models get sentence pairs the usual way."""
    roles = special_token_roles(list(p.special_tokens or []))
    cls, sep = roles.get("cls_token"), roles.get("sep_token")
    if not (cls and sep):
        return
    ids = {t: tok.token_to_id(t) for t in (cls, sep)}
    if p.algorithm == "bpe":
        tok.post_processor = processors.RobertaProcessing(
            (sep, ids[sep]), (cls, ids[cls]), add_prefix_space=True
        )
    else:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=list(ids.items()),
        )


def to_transformers(tok: Tokenizer, p: TokenizerParams) -> Any:
    """Wrap for `save_pretrained`, with special-token roles and a real max length."""
    from transformers import PreTrainedTokenizerFast

    roles = special_token_roles(list(p.special_tokens or []))
    if p.algorithm == "bpe":
        roles.setdefault("bos_token", roles.get("cls_token", ""))
        roles.setdefault("eos_token", roles.get("sep_token", ""))
    extra = [t for t in (p.special_tokens or []) if t not in roles.values()]
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        model_max_length=p.model_max_length,
        extra_special_tokens=extra,
        **{k: v for k, v in roles.items() if v},
    )


def vocab_hash(tok: Tokenizer) -> str:
    vocab = sorted(tok.get_vocab(with_added_tokens=True).items(), key=lambda kv: kv[1])
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()


def run(spec: TokenizerJobSpec, ctx: JobContext) -> dict[str, Any]:
    files = resolve_files(spec.data.files)
    ctx.progress(f"fingerprinting {len(files)} file(s)")
    fp = fingerprint_files(files)
    counter = LineCounter(on_progress=lambda n: ctx.progress(f"training: {n:,} lines read"))
    texts = iter_texts(files, spec.data.format, spec.data.column, spec.data.max_lines, counter)
    tok, trainer = build_tokenizer(spec.tokenizer)
    ctx.progress(f"training {spec.tokenizer.algorithm} (vocab {spec.tokenizer.vocab_size:,})")
    started = time.perf_counter()
    tok.train_from_iterator(batched(texts), trainer=trainer)
    seconds = time.perf_counter() - started
    if counter.lines == 0:
        raise JobInputError(
            f"the corpus is empty: {', '.join(files)} hold no non-blank text"
            + (
                f" in column {spec.data.column!r}"
                if spec.data.format not in ("text", "auto")
                else ""
            )
        )
    add_post_processor(tok, spec.tokenizer)
    hf = to_transformers(tok, spec.tokenizer)
    staging = ctx.staging_dir()
    hf.save_pretrained(str(staging))
    size, digest = tok.get_vocab_size(with_added_tokens=True), vocab_hash(tok)
    ctx.progress(f"trained on {counter.lines:,} lines in {seconds:.1f}s; vocab {size:,}")

    row = ctx.publish_tokenizer(
        staging,
        spec.name,
        DatasetFacts(fp, spec.data.format, {"train": counter.lines}),
        algorithm=spec.tokenizer.algorithm,
        vocab_size=size,
        vocab_hash=digest,
        params=spec.tokenizer.model_dump(),
        training_seconds=round(seconds, 3),
    )
    return {"tokenizer": row.ref, "path": row.artifact_uri}
