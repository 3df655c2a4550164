"""`python -m bench.gpu`: its CPU smoke mode end to end (a real private cluster, a fine-tuning
job, an endpoint under load), and the real run where a GPU is present."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "ORCH_"))}
    return subprocess.run(
        [sys.executable, "-m", "bench.gpu", *args],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_gpu_benchmark_smoke_runs_end_to_end_on_cpu() -> None:
    proc = run_bench("--smoke", timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "bert-tiny  fp32" in out  # a fine-tuning row, with its tokens/s
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("float32 ")]
    assert [int(r[1]) for r in rows] == [1, 4]  # serving at both concurrencies
    assert all(float(r[3]) > 0 for r in rows), rows  # requests/s
    assert all(r[-1] == "0" for r in rows), out[-3000:]  # no errors (else the first is shown)


@pytest.mark.gpu
def test_the_gpu_benchmark_on_a_gpu() -> None:
    """fp32 / bf16 / bf16 + torch.compile fine-tuning and bf16 serving on the GPU."""
    proc = run_bench(timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "bf16+compile" in proc.stdout and "bfloat16" in proc.stdout
