"""`orch jobs list|show|logs|cancel|why|metrics|plot`."""

from __future__ import annotations

from typing import Any

import click

from orchestrator.cli.common import (
    api,
    emit,
    emit_one,
    format_option,
    info,
    print_messages,
    short_time,
)
from orchestrator.specs.vocabulary import JOB_KINDS, JobStatus

LIST_COLUMNS = [
    "id",
    "kind",
    "name",
    "status",
    "priority",
    "submitted_by",
    "created_at",
    "duration_s",
    "summary",
]


@click.group()
def jobs() -> None:
    """Inspect and control jobs."""


@jobs.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus], case_sensitive=False),
    help="Only jobs in this state (repeatable).",
)
@click.option(
    "--kind",
    "kinds",
    type=click.Choice(JOB_KINDS),
    multiple=True,
    help="Only jobs of this kind (repeatable).",
)
@click.option("--user", "submitted_by", default=None, help="Only jobs this user submitted.")
@click.option("--limit", type=int, default=50, show_default=True)
@format_option
def list_jobs(
    statuses: tuple[str, ...],
    kinds: tuple[str, ...],
    submitted_by: str | None,
    limit: int,
    fmt: str,
) -> None:
    """Newest jobs first."""
    rows = api().get(
        "/api/jobs",
        status=[s.upper() for s in statuses],
        kind=list(kinds),
        submitted_by=submitted_by,
        limit=limit,
    )
    emit(
        rows,
        LIST_COLUMNS,
        fmt,
        cell=lambda c, v: short_time(v) if c == "created_at" else ("-" if v is None else str(v)),
    )


@jobs.command("show")
@click.argument("job_id", type=int)
@format_option
def show(job_id: int, fmt: str) -> None:
    """Everything about one job: spec, state history, result or error."""
    out = api().get(f"/api/jobs/{job_id}")
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
        click.echo(f"  {short_time(e['at'])}  {arrow}{e['to']}: {e['reason']}")
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

    server = api()
    waiting_said = False
    while True:  # with -f, wait for a queued job's driver to start
        job = server.get(f"/api/jobs/{job_id}")
        ray_id, status, error = job["ray_job_id"], job["status"], job["error"]
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
    if follow:
        for chunk in server.stream(f"/api/jobs/{job_id}/logs", follow="true"):
            click.echo(chunk, nl=False)
        job = server.get(f"/api/jobs/{job_id}")
        if job["status"] != "SUCCEEDED":
            raise JobFailedError(f"job {job_id} {job['status']}: {job['error'] or ''}")
    else:
        click.echo(server.text(f"/api/jobs/{job_id}/logs"), nl=False)


@jobs.command("cancel")
@click.argument("job_id", type=int)
def cancel(job_id: int) -> None:
    """Cancel a queued job at once, or stop a running one."""
    print_messages(api().post(f"/api/jobs/{job_id}/cancel"))


@jobs.command("why")
@click.argument("job_id", type=int)
@format_option
def why(job_id: int, fmt: str) -> None:
    """Why a job is still queued: what it asks for against what is free."""
    emit_one(api().get(f"/api/jobs/{job_id}/why"), fmt)


@jobs.command("metrics")
@click.argument("job_id", type=int)
@click.option("--name", default=None, help="Only this metric (loss, accuracy, ...).")
@format_option
def metrics(job_id: int, name: str | None, fmt: str) -> None:
    """Every value a job logged: step, split (train, eval, final), name, value."""
    rows = api().get(f"/api/jobs/{job_id}/metrics", name=name)
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

    rows = [
        (m["split"], m["name"], m["step"], m["value"])
        for m in api().get(f"/api/jobs/{job_id}/metrics")
        if m["step"] is not None and m["split"] in ("train", "eval")
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
