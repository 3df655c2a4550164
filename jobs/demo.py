"""The end of `make demo`: load what the demo's job registered and show how to use it.

Reads everything from the registry (no hard-coded paths), so it shows what a user gets.
"""

from __future__ import annotations

import sys

from orchestrator.config import load_settings
from orchestrator.registry import Registry, store

TOKENIZER = "mars-wordpiece"
SENTENCE = "Dejah Thoris, the princess of Helium, smiled at John Carter."


def main() -> int:
    from transformers import AutoTokenizer

    settings = load_settings()
    registry = Registry(settings.resolved_registry_url)
    with registry.session() as session:
        tok = store.get_tokenizer(session, TOKENIZER)
        job = store.get_job(session, tok.job_id) if tok.job_id else None
    tokenizer = AutoTokenizer.from_pretrained(tok.artifact_uri)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(SENTENCE)["input_ids"])
    took = f"{(job.finished_at - job.started_at).total_seconds():.1f}s" if job else "?"
    print("\n== demo summary ==")
    print(f"registry   {settings.resolved_registry_url}")
    if job:
        print(f"job        #{job.id} {job.kind} {job.status} (ran {took})")
    print(
        f"tokenizer  {tok.name}:{tok.version}  {tok.algorithm}, {len(tokenizer):,} tokens,"
        f" trained in {tok.training_seconds:.1f}s"
    )
    print(f"artifact   {tok.artifact_uri}")
    print(f"encode     {SENTENCE!r}\n        -> {' '.join(tokens)}")
    print(f"use it     AutoTokenizer.from_pretrained({tok.artifact_uri!r})")
    print(
        "next       orch jobs list | orch tokenizers list | orch cluster status | orch cluster down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
