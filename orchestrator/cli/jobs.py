"""`orch jobs list|show|logs|cancel|why`."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.common import (
    emit,
    emit_one,
    format_option,
    info,
    iso,
    registry,
    settings,
    short_time,
)

STATUSES = ["QUEUED", "STARTING", "RUNNING", "RETRYING", "SUCCEEDED", "FAILED", "CANCELLED"]
LIST_COLUMNS = ["id", "kind", "name", "status", "priority", "created_at", "duration_s", "summary"]


def job_row(job: Any) -> dict[str, Any]:
    from orchestrator.registry.store import as_utc

    start, end = as_utc(job.started_at), as_utc(job.finished_at)
    summary = (
        (job.error or "").splitlines()[0][:80]
        if job.error
        else (
            ", ".join(f"{k}={v}" for k, v in (job.result or {}).items() if k != "artifact_uri")
            or (job.progress or "")
        )
    )
    return {
        "id": job.id,
        "kind": job.kind,
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "duration_s": round((end - start).total_seconds(), 1) if start and end else None,
        "summary": summary,
    }


@click.group()
def jobs() -> None:
    """Inspect and control jobs."""


@jobs.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES, case_sensitive=False),
    help="Only jobs in this state (repeatable).",
)
@click.option("--kind", "kinds", multiple=True, help="Only jobs of this kind (repeatable).")
@click.option("--limit", type=int, default=50, show_default=True)
@format_option
def list_jobs(statuses: tuple[str, ...], kinds: tuple[str, ...], limit: int, fmt: str) -> None:
    """Newest jobs first."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        rows = [
            job_row(j)
            for j in store.list_jobs(session, [s.upper() for s in statuses], kinds, limit)
        ]
    emit(
        rows,
        LIST_COLUMNS,
        fmt,
        cell=lambda c, v: (
            short_time_str(v) if c == "created_at" else ("-" if v is None else str(v))
        ),
    )


def short_time_str(value: str | None) -> str:
    from datetime import datetime

    return short_time(datetime.fromisoformat(value)) if value else "-"


@jobs.command("show")
@click.argument("job_id", type=int)
@format_option
def show(job_id: int, fmt: str) -> None:
    """Everything about one job: spec, state history, result or error."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        job = store.get_job(session, job_id)
        out = {
            **job_row(job),
            "ray_job_id": job.ray_job_id,
            "attempts": job.attempts,
            "progress": job.progress,
            "error": job.error,
            "result": job.result,
            "resources": job.resources,
            "code_version": job.code_version,
            "submitted_by": job.submitted_by,
            "spec": job.spec,
            "events": [
                {"at": iso(e.at), "from": e.from_status, "to": e.to_status, "reason": e.reason}
                for e in job.events
            ],
        }
    if fmt == "json":
        emit_one(out, fmt)
        return
    events, error, spec = out.pop("events"), out.pop("error"), out.pop("spec")
    out.pop("summary")
    emit_one(out, fmt)
    click.echo("spec      " + _compact(spec))
    click.echo("events")
    for e in events:
        arrow = f"{e['from']} -> " if e["from"] else ""
        click.echo(f"  {short_time_str(e['at'])}  {arrow}{e['to']}: {e['reason']}")
    if error:
        click.echo("error")
        click.echo("\n".join(f"  {line}" for line in error.splitlines()))


def _compact(spec: dict[str, Any]) -> str:
    import json

    return json.dumps(spec, separators=(", ", ": "))


@jobs.command("logs")
@click.argument("job_id", type=int)
@click.option(
    "-f", "--follow", is_flag=True, help="Stream until the job ends; exit with its outcome."
)
def logs(job_id: int, follow: bool) -> None:
    """The driver's log (stdout and stderr), from the Ray cluster."""
    import time

    from orchestrator.errors import JobFailedError
    from orchestrator.ray_client.connection import resolve_cluster
    from orchestrator.ray_client.logs import follow_logs, job_logs
    from orchestrator.registry import store

    s = settings()
    reg = registry(s)
    waiting_said = False
    while True:  # with -f, wait for a queued job's driver to start
        with reg.session() as session:
            job = store.get_job(session, job_id)
            ray_id, status, error = job.ray_job_id, job.status, job.error
        if ray_id is not None or not follow or status in ("CANCELLED", "FAILED"):
            break
        if not waiting_said:
            info(f"job {job_id} is {status}; waiting for it to start ...")
            waiting_said = True
        time.sleep(0.5)
    if ray_id is None:
        if follow:
            raise JobFailedError(f"job {job_id} {status} before it started: {error or ''}")
        info(
            f"job {job_id} is {status} and has not started: no log yet "
            f"(`orch jobs why {job_id}` says why it waits)"
        )
        return
    cluster = resolve_cluster(s)
    if follow:
        for chunk in follow_logs(cluster, ray_id):
            click.echo(chunk, nl=False)
        with reg.session() as session:
            job = store.get_job(session, job_id)
            final, error = job.status, job.error
        if final != "SUCCEEDED":
            raise JobFailedError(f"job {job_id} {final}: {error or ''}")
    else:
        click.echo(job_logs(cluster, ray_id), nl=False)


@jobs.command("cancel")
@click.argument("job_id", type=int)
def cancel(job_id: int) -> None:
    """Cancel a queued job at once, or stop a running one."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        outcome = store.request_cancel(session, job_id)
    messages = {
        "CANCELLED": f"job {job_id} cancelled",
        "CANCEL_REQUESTED": f"job {job_id}: stop requested; the scheduler stops its "
        "driver within seconds",
    }
    info(messages.get(outcome, f"job {job_id} already ended ({outcome}); nothing to cancel"))


@jobs.command("why")
@click.argument("job_id", type=int)
@format_option
def why(job_id: int, fmt: str) -> None:
    """Why a job is still queued: what it asks for against what is free."""
    from orchestrator.registry import store
    from orchestrator.scheduler.admission import fmt as fmt_res
    from orchestrator.scheduler.admission import total
    from orchestrator.submission import scheduler_heartbeat

    s = settings()
    reg = registry(s)
    with reg.session() as session:
        job = store.get_job(session, job_id)
        status, bundles = job.status, job.resources.get("bundles", [])
    beat = scheduler_heartbeat(s, reg)
    out: dict[str, Any] = {"id": job_id, "status": status, "asks": fmt_res(total(bundles))}
    if status != "QUEUED":
        out["reason"] = f"not waiting: the job is {status}"
    elif beat is None or beat[1] > 30:
        age = "never" if beat is None else f"{beat[1]:.0f}s ago"
        out["reason"] = (
            f"no scheduler is running for this registry (last seen: {age}); "
            "start one with `orch cluster up`"
        )
    else:
        view = beat[0]
        free = {k: view["total"].get(k, 0) - view["in_use"].get(k, 0) for k in view["total"]}
        out["free"] = fmt_res(free)
        out["cluster"] = fmt_res(view["total"])
        out["reason"] = view["waiting"].get(str(job_id), "about to start")
    emit_one(out, fmt)


@jobs.command("metrics")
@click.argument("job_id", type=int)
@click.option("--name", default=None, help="Only this metric (loss, accuracy, ...).")
@format_option
def metrics(job_id: int, name: str | None, fmt: str) -> None:
    """Every value a job logged: step, split (train, eval, final), name, value."""
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        store.get_job(session, job_id)
        rows = [
            {"step": m.step, "epoch": m.epoch, "split": m.split, "name": m.name, "value": m.value}
            for m in store.job_metrics(session, job_id, name)
        ]
    emit(
        rows,
        ["step", "epoch", "split", "name", "value"],
        fmt,
        cell=lambda c, v: "-" if v is None else (f"{v:.6g}" if isinstance(v, float) else str(v)),
    )


@jobs.command("plot")
@click.argument("job_id", type=int)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the PNG."
)
def plot(job_id: int, output: str) -> None:
    """Training loss and eval curves of a job, drawn with matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orchestrator.errors import UsageError
    from orchestrator.registry import store

    with registry(settings()).session() as session:
        rows = [
            (m.split, m.name, m.step, m.value)
            for m in store.job_metrics(session, job_id)
            if m.step is not None and m.split in ("train", "eval")
        ]
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for split, name, step, value in rows:
        series.setdefault((split, name), []).append((step, value))
    losses = [k for k in series if k[1] == "loss"]
    scores = [k for k in series if k[0] == "eval" and k[1] not in ("loss", "perplexity")]
    if not losses:
        raise UsageError(f"job {job_id} logged no loss yet: nothing to plot")
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(11 if scores else 6, 4), squeeze=False)
    for key in losses:
        steps, values = zip(*sorted(series[key]), strict=True)
        axes[0][0].plot(
            steps, values, marker="o" if key[0] == "eval" else None, label=f"{key[0]} loss"
        )
    axes[0][0].set(xlabel="step", ylabel="loss", title=f"job {job_id}: loss")
    axes[0][0].legend()
    for key in scores:
        steps, values = zip(*sorted(series[key]), strict=True)
        axes[0][1].plot(steps, values, marker="o", label=key[1])
    if scores:
        axes[0][1].set(xlabel="step", title=f"job {job_id}: eval metrics")
        axes[0][1].legend()
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    info(f"wrote {output}")
