"""A storm of simultaneous `orch submit` through the API on PostgreSQL: every job recorded,
every job run, no client dying with a traceback, and how many database connections it took.

    python -m bench.storm                  # 100 submits, a fresh PostgreSQL database
    python -m bench.storm --submits 20 --registry-url postgresql://...

Clients that each open a database connection of their own can exceed PostgreSQL's limit
and die ("FATAL: sorry, too many clients already"). Through the API, clients open no database
connection; the server's pool does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO, machine, save

ADMIN_URL = os.environ.get("ORCH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ORCH = [str(Path(sys.executable).parent / "orch")]
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def fresh_database() -> tuple[str, str]:
    import psycopg

    name = f"orch_storm_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{ADMIN_URL.rpartition('/')[0]}/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ConnectionPeak:
    """Samples the connections PostgreSQL holds open to one database."""

    def __init__(self, database: str) -> None:
        self.database, self.peak, self._stop = database, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            while not self._stop.wait(0.2):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchone()
                self.peak = max(self.peak, int(row[0]) if row else 0)

    def __enter__(self) -> ConnectionPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def orch(args: list[str], env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(
        [*ORCH, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"orch {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


def storm(env: dict[str, str], submits: int) -> dict[str, Any]:
    spec = [
        "submit", "jobs/configs/tokenizer-unigram.yaml",
        "--set", "data.files=[jobs/sample_data/mars.txt]", "--set", "data.max_lines=300",
        "--set", "tokenizer.vocab_size=400", "--set", "resources.cpus=0.5",
    ]  # fmt: skip
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [*ORCH, *spec, "--set", f"name=storm-{i}"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(submits)
    ]
    outputs = [p.communicate(timeout=900) for p in procs]
    submitted_s = time.monotonic() - started
    codes = [p.returncode for p in procs]
    ids = sorted(
        int(out.strip()) for (out, _), code in zip(outputs, codes, strict=True) if code == 0
    )
    tracebacks = sum("Traceback" in err for _, err in outputs)
    while True:
        rows = json.loads(orch(["jobs", "list", "--limit", "1000", "--format", "json"], env))
        mine = {r["id"]: r["status"] for r in rows if r["name"].startswith("storm-")}
        if mine and set(mine.values()) <= TERMINAL and len(mine) >= len(ids):
            break
        time.sleep(2)
    return {
        "submits": submits,
        "exit_0": codes.count(0),
        "tracebacks": tracebacks,
        "distinct_ids": len(set(ids)),
        "recorded": len(mine),
        "succeeded": sum(s == "SUCCEEDED" for s in mine.values()),
        "submit_wall_s": round(submitted_s, 1),
        "all_done_wall_s": round(time.monotonic() - started, 1),
        "errors": sorted(
            {err.strip().splitlines()[-1] for (_, err), c in zip(outputs, codes, strict=True) if c}
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submits", type=int, default=100)
    parser.add_argument("--registry-url", default=None, help="default: a fresh database")
    args = parser.parse_args()
    name, url = (None, args.registry_url) if args.registry_url else fresh_database()
    home = Path(tempfile.mkdtemp(prefix="orch-storm-")) / "home"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ORCH_", "RAY_"))},
        "ORCH_HOME": str(home),
        "ORCH_CONFIG": str(home / "none.yaml"),
        "ORCH_REGISTRY_URL": url,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    try:
        orch(["cluster", "up", "--num-cpus", "2"], env)
        with ConnectionPeak(url.rpartition("/")[2]) as peak:
            result = storm(env, args.submits)
        result["peak_db_connections"] = peak.peak
    finally:
        subprocess.run([*ORCH, "cluster", "down"], env=env, cwd=REPO, capture_output=True)
        if name:
            drop_database(name)
    result["machine"] = machine()
    print(json.dumps(result, indent=2))
    save("storm", result)
    ok = result["recorded"] == result["succeeded"] == args.submits and not result["tracebacks"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
