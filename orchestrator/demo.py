"""The end of `make demo`: what the demo's jobs registered and served, and how to use it.

Reads everything through the API, as any client would (no hard-coded paths), so it shows
what a user gets, and ends with the web console's address and how to sign in. The masked
LM's guess comes from its own endpoint; the tokenizer is loaded with `tokenizers` alone.
"""

from __future__ import annotations

import sys
from datetime import datetime

import requests

from orchestrator.client import api
from orchestrator.config import load_settings

TOKENIZER, MLM, CLASSIFIER = "mars-wordpiece", "mars-distilbert", "sst2-minilm"
SENTENCES = [
    "Dejah Thoris, the princess of Helium, smiled at John Carter.",
    "a gorgeous, witty, seductive movie.",
    "the plot is nothing but boilerplate.",
]


def _took(job: dict | None) -> str:
    start, end = (job or {}).get("started_at"), (job or {}).get("finished_at")
    if not (start and end):
        return "?"
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.0f}s"


def main() -> int:
    from tokenizers import Tokenizer

    settings = load_settings()
    server = api()
    tok = server.get(f"/api/tokenizers/{TOKENIZER}")
    mlm = server.get(f"/api/models/{MLM}")
    clf = server.get(f"/api/models/{CLASSIFIER}@production")
    jobs = {
        key: server.get(f"/api/jobs/{row['job_id']}")
        for key, row in ((TOKENIZER, tok), (MLM, mlm), (CLASSIFIER, clf))
        if row["job_id"]
    }
    mlm_name, clf_name = f"{MLM}:{mlm['version']}", f"{CLASSIFIER}:{clf['version']}"
    tokenizer = Tokenizer.from_file(f"{tok['artifact_uri']}/tokenizer.json")
    tokens = tokenizer.encode(SENTENCES[0]).tokens
    fill = server.post(
        f"/api/endpoints/{MLM}/predict",
        {"body": {"inputs": "the princess of [MASK] smiled.", "parameters": {"top_k": 3}}},
    )
    guesses = [g["token_str"] for g in fill["result"]]
    url = server.get(f"/api/endpoints/{CLASSIFIER}", live="false")["url"]
    key = settings.serve_api_key
    resp = requests.post(
        url,
        json={"inputs": SENTENCES[1:]},
        headers={"Authorization": f"Bearer {key}"} if key else {},
        timeout=60,
    )
    resp.raise_for_status()
    answers, answered_by = resp.json(), resp.headers.get("x-model-version")
    print("\n== demo summary ==")
    print(f"registry    {settings.resolved_registry_url} (through {server.url})")
    print(
        f"tokenizer   {tok['name']}:{tok['version']}  {tok['algorithm']}, "
        f"{tokenizer.get_vocab_size():,} tokens "
        f"(job #{tok['job_id']}, {_took(jobs.get(TOKENIZER))})"
    )
    print(f"            {' '.join(tokens)}")
    print(
        f"masked LM   {mlm_name}  perplexity {mlm['metrics'].get('perplexity', 0):.1f} after "
        f"{mlm['metrics'].get('global_step')} steps (job #{mlm['job_id']}, "
        f"{_took(jobs.get(MLM))})"
    )
    print(f"            'the princess of [MASK] smiled.' -> {guesses}")
    print(
        f"classifier  {clf_name}@production  SST-2 dev accuracy "
        f"{clf['metrics'].get('accuracy', 0):.3f}, f1 {clf['metrics'].get('f1', 0):.3f} "
        f"(job #{clf['job_id']}, {_took(jobs.get(CLASSIFIER))})"
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
        f"orch jobs plot {clf['job_id']} -o curves.png | orch cluster down"
    )
    print(f"console     {server.url}/console/")
    print(
        f"            sign in with the admin token in {settings.local_token_path} "
        "(readable by you only); `orch users add NAME --role member` makes tokens for others"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
