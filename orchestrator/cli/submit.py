"""`orch validate` and `orch submit`."""

from __future__ import annotations

import json

import click

from orchestrator.cli.common import address_option, code_version, info, registry, settings

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec value, e.g. --set tokenizer.vocab_size=8000.",
)


@click.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
@set_option
def validate(spec_file: str, overrides: tuple[str, ...]) -> None:
    """Check a job spec: every problem is reported at once (exit 2 if any)."""
    from jobs.specs import load_spec

    spec = load_spec(spec_file, list(overrides))
    click.echo(f"valid {spec.kind} spec: {spec.name}")


@click.command()
@click.argument("spec_file", type=click.Path(dir_okay=False))
@set_option
@click.option(
    "--priority",
    type=int,
    default=0,
    show_default=True,
    help="Higher starts first; equal priorities start in submission order.",
)
@click.option(
    "--wait", is_flag=True, help="Follow the job to its end; exit 0 only if it succeeded."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@address_option
def submit(
    spec_file: str,
    overrides: tuple[str, ...],
    priority: int,
    wait: bool,
    fmt: str,
    address: str | None,
) -> None:
    """Queue a job from a spec file and print its id.

    Starts the local cluster and its scheduler when none is running.
    """
    from jobs.specs import load_spec
    from orchestrator import submission
    from orchestrator.errors import OrchestratorError

    spec = load_spec(spec_file, list(overrides))
    s = settings(cluster_address=address)
    reg = registry(s)
    submission.check_fits(s, reg, spec)
    job_id = submission.submit_spec(reg, spec, priority, code_version())
    click.echo(json.dumps({"id": job_id, "status": "QUEUED"}) if fmt == "json" else job_id)
    info(f"queued job {job_id}: {spec.kind} {spec.name!r}")
    try:
        submission.ensure_scheduler(s, reg)
    except OrchestratorError as exc:
        raise type(exc)(
            f"job {job_id} is queued, but no scheduler could be started: {exc.message}", exc.hint
        ) from None
    if wait:
        follow_to_end(reg, job_id)
    else:
        info(f"follow it with `orch jobs show {job_id}` or `orch submit ... --wait`")


def follow_to_end(reg, job_id: int) -> None:  # type: ignore[no-untyped-def]
    """Print events and progress to stderr; exit with the job's outcome."""
    import time

    from orchestrator import submission
    from orchestrator.cli.common import short_time
    from orchestrator.errors import JobFailedError

    started = time.monotonic()

    def on_event(event) -> None:  # type: ignore[no-untyped-def]
        arrow = f"{event.from_status} -> " if event.from_status else ""
        info(f"[{short_time(event.at)}] job {job_id} {arrow}{event.to_status}: {event.reason}")

    def on_progress(message: str) -> None:
        info(f"  ... {message} ({time.monotonic() - started:.0f}s)")

    outcome = submission.follow(reg, job_id, on_event, on_progress)
    if outcome.status != "SUCCEEDED":
        raise JobFailedError(
            f"job {job_id} {outcome.status}: {outcome.error or 'no reason given'}",
            hint=f"`orch jobs show {job_id}` and `orch jobs logs {job_id}`",
        )
    for key, value in (outcome.result or {}).items():
        info(f"  {key}: {value}")
