"""The end of `make demo`: what the demo's jobs registered and served, and how to use it.

Reads everything from the registry (no hard-coded paths), so it shows what a user gets.
"""

from __future__ import annotations

import sys

from orchestrator import endpoints
from orchestrator.config import load_settings
from orchestrator.registry import Registry, store

TOKENIZER, MLM, CLASSIFIER = "mars-wordpiece", "mars-distilbert", "sst2-minilm"
SENTENCES = [
    "Dejah Thoris, the princess of Helium, smiled at John Carter.",
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate.",
]


def _took(job: object) -> str:
    start, end = getattr(job, "started_at", None), getattr(job, "finished_at", None)
    return f"{(end - start).total_seconds():.0f}s" if start and end else "?"


def main() -> int:
    from transformers import AutoTokenizer, pipeline

    settings = load_settings()
    registry = Registry(settings.resolved_registry_url)
    with registry.session() as s:
        tok = store.get_tokenizer(s, TOKENIZER)
        mlm = store.get_model_version(s, MLM)
        clf = store.get_model_version(s, CLASSIFIER, alias="production")
        jobs = {
            key: store.get_job(s, row.job_id)
            for key, row in ((TOKENIZER, tok), (MLM, mlm), (CLASSIFIER, clf))
            if row.job_id
        }
        mlm_name, clf_name = f"{MLM}:{mlm.version}", f"{CLASSIFIER}:{clf.version}"
    tokenizer = AutoTokenizer.from_pretrained(tok.artifact_uri)
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(SENTENCES[0])["input_ids"])
    fill = pipeline("fill-mask", model=mlm.artifact_uri)
    guesses = [g["token_str"] for g in fill("the princess of [MASK] smiled.")[:3]]
    with registry.session() as s:
        endpoint = store.get_deployment(s, CLASSIFIER)
        url = endpoint.url
    answers, answered_by = endpoints.post(
        url, {"inputs": SENTENCES[1:]}, settings.serve_api_key, timeout=60
    )
    print("\n== demo summary ==")
    print(f"registry    {settings.resolved_registry_url}")
    print(
        f"tokenizer   {tok.name}:{tok.version}  {tok.algorithm}, {len(tokenizer):,} tokens "
        f"(job #{tok.job_id}, {_took(jobs.get(TOKENIZER))})"
    )
    print(f"            {' '.join(tokens)}")
    print(
        f"masked LM   {mlm_name}  perplexity {mlm.metrics.get('perplexity', 0):.1f} after "
        f"{mlm.metrics.get('global_step')} steps (job #{mlm.job_id}, {_took(jobs.get(MLM))})"
    )
    print(f"            'the princess of [MASK] smiled.' -> {guesses}")
    print(
        f"classifier  {clf_name}@production  SST-2 dev accuracy "
        f"{clf.metrics.get('accuracy', 0):.3f}, f1 {clf.metrics.get('f1', 0):.3f} "
        f"(job #{clf.job_id}, {_took(jobs.get(CLASSIFIER))})"
    )
    print(f"endpoint    {url}  (Ray Serve, answered by {answered_by})")
    for text, answer in zip(SENTENCES[1:], answers, strict=True):
        print(f"            {text!r} -> {answer[0]['label']} ({answer[0]['score']:.2f})")
    print(
        f"            curl -s {url} -H 'Content-Type: application/json' "
        """-d '{"inputs": "what a lovely film"}'"""
    )
    print(f"artifacts   {settings.resolved_artifact_root}")
    print(
        "next        orch jobs list | orch models list --sort accuracy | orch endpoints list | "
        f"orch jobs plot {clf.job_id} -o curves.png | orch cluster down"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
