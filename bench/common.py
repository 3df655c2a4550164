"""Shared pieces of the benchmarks: a private local cluster, running one of our jobs, peak
memory of a job's processes, baselines in subprocesses, and the results table."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
JOB_PROCESS_MARKERS = (
    "RayTrainWorker",
    "MapWorker",
    "SplitCoordinator",
    "jobs.runtime.driver",
    "TrainController",
    "jobs.runtime.warm run",  # the driver's launcher (jobs/runtime/warm/)
)
# A driver forked by a warm driver host shows the host's command line: a job process when it
# appeared during the job (the host itself was there before, and is reported on its own).
NEW_PROCESS_MARKERS = ("jobs.runtime.warm serve",)


@contextmanager
def private_cluster(num_cpus: float, num_gpus: float | None = None) -> Any:
    """Our own cluster and registry in a temp home, stopped afterwards."""
    from orchestrator.config import Settings
    from orchestrator.ray_client import local, scheduler_host
    from orchestrator.registry import Registry

    home = Path(tempfile.mkdtemp(prefix="orch-bench-")) / "home"
    settings = Settings(home=home)
    info, _ = local.start_local_cluster(settings, num_cpus=num_cpus, num_gpus=num_gpus)
    try:
        scheduler_host.ensure_scheduler(settings, info)
        yield settings, Registry(settings.resolved_registry_url)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        local.stop_local_cluster(settings)


class PeakMemory:
    """Samples the summed RSS of a job's processes (driver, train workers, data actors):
    ``peak``. ``peak_new`` also counts every other process that appeared while it ran (the
    job's Ray Jobs supervisor, Ray's pooled task workers and helper actors): what the job
    cost the machine, beyond the processes the markers name."""

    def __init__(
        self,
        interval: float = 0.5,
        markers: tuple[str, ...] = JOB_PROCESS_MARKERS,
        include_self: bool = False,
    ) -> None:
        self.markers, self.include_self = markers, include_self
        self.peak = 0
        self.peak_new = 0
        self._before = set(psutil.pids())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        """Finds new processes every 2 s (a full process scan is not free), and reads only
        their RSS in between, so that measuring does not slow the job."""
        tracked: dict[int, tuple[psutil.Process, bool]] = {}  # pid -> (process, a job marker)
        last_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() - last_scan > 2:
                last_scan = time.monotonic()
                for proc in psutil.process_iter(["cmdline"]):
                    try:
                        line = " ".join(proc.info["cmdline"] or [])
                    except psutil.NoSuchProcess:
                        continue
                    new = proc.pid not in self._before
                    marked = any(m in line for m in self.markers) or (
                        new and any(m in line for m in NEW_PROCESS_MARKERS)
                    )
                    known = tracked.get(proc.pid)
                    if marked or (new and proc.pid != os.getpid()):
                        tracked[proc.pid] = (proc, marked or bool(known and known[1]))
            own = psutil.Process().memory_info().rss if self.include_self else 0
            total, total_new = own, own
            for pid, (proc, marked) in list(tracked.items()):
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    tracked.pop(pid)
                    continue
                total += rss if marked else 0
                total_new += rss if pid not in self._before else 0
            self.peak = max(self.peak, total)
            self.peak_new = max(self.peak_new, total_new)
            time.sleep(interval)

    @staticmethod
    def warm_hosts() -> int:
        """Summed RSS of the warm driver hosts running now (``jobs/runtime/warm/``): what a node
        holds between jobs so that drivers start without importing torch."""
        total = 0
        for proc in psutil.process_iter(["cmdline", "ppid"]):
            try:
                line = " ".join(proc.info["cmdline"] or [])
                parent = psutil.Process(proc.info["ppid"]).cmdline() if proc.info["ppid"] else []
                if "jobs.runtime.warm serve" in line and "jobs.runtime.warm" not in " ".join(
                    parent
                ):
                    total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_job(registry: Any, spec: dict[str, Any], timeout: float = 3600) -> tuple[int, Any, float]:
    """Submit one of our jobs and wait; returns (job id, outcome, wall seconds)."""
    from orchestrator import submission
    from orchestrator.specs import parse_spec

    started = time.perf_counter()
    job_id = submission.submit_spec(registry, parse_spec(spec))
    outcome = submission.follow(
        registry,
        job_id,
        lambda e: None,
        lambda p: print(f"  [ours] {p}", file=sys.stderr),
        timeout=timeout,
    )
    if outcome.status != "SUCCEEDED":
        raise RuntimeError(f"our job {job_id} {outcome.status}: {outcome.error}")
    return job_id, outcome, time.perf_counter() - started


def run_baseline(args: list[str]) -> dict[str, Any]:
    """A plain Hugging Face recipe in its own process (so its peak memory is its own)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench.hf_baselines", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"baseline {args[:3]} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(line.removeprefix("RESULT ")))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    grid = [columns] + [[cell(r.get(c, "-")) for c in columns] for r in rows]
    widths = [max(len(r[i]) for r in grid) for i in range(len(columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in grid)


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME.json``: the figures with the command, date, commit and
    machine that measured them (the docs' benchmark tables are generated from these files)."""
    out = REPO / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps({**provenance(), **payload}, indent=2, default=str))
    return out


def provenance() -> dict[str, str]:
    """How this run was made: its command line, UTC date, commit (``+changes`` when tracked
    files other than results differ from it) and machine."""
    main = sys.modules["__main__"]
    module = main.__spec__.name if main.__spec__ else Path(sys.argv[0]).name
    return {
        "command": " ".join(["python", "-m", module, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit(),
        "machine": machine(),
    }


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    # results written by an earlier benchmark of the same run are not changes to the code
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
    return head + ("+changes" if changed else "")


def cpu_model() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "unknown CPU"


def machine() -> str:
    """CPU model, cores, memory and GPU of this machine."""
    cpu = cpu_model()
    gpu = "no GPU"
    with contextlib.suppress(ImportError):
        import torch

        if torch.cuda.is_available():
            gpu = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    memory = psutil.virtual_memory().total / 2**30
    return f"{cpu}, {os.cpu_count()} CPU cores, {memory:.0f} GiB RAM, {gpu}"
