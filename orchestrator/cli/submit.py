"""`orch validate` and `orch submit`."""

from __future__ import annotations

import json

import click

from orchestrator.cli.common import api, code_version, info, print_messages

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
    from orchestrator.specs import load_spec

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
def submit(spec_file: str, overrides: tuple[str, ...], priority: int, wait: bool, fmt: str) -> None:
    """Queue a job from a spec file and print its id.

    The spec is checked here first (errors name the file and line), then by the API server.
    On this machine, starts the local cluster, its scheduler and API server when none runs.
    """
    from orchestrator.specs import load_spec

    spec = load_spec(spec_file, list(overrides))
    answer = api().post(
        "/api/jobs",
        {
            "spec": spec.model_dump(mode="json"),
            "priority": priority,
            "code_version": code_version(),
        },
    )
    job_id = answer["id"]
    click.echo(json.dumps({"id": job_id, "status": "QUEUED"}) if fmt == "json" else job_id)
    print_messages(answer)
    if wait:
        follow_to_end(job_id)
    else:
        info(f"follow it with `orch jobs show {job_id}` or `orch submit ... --wait`")


def follow_to_end(job_id: int, poll: float = 0.5) -> None:
    """Print events and progress to stderr; exit with the job's outcome."""
    import time

    from orchestrator.cli.common import short_time
    from orchestrator.errors import JobFailedError

    started = time.monotonic()
    server = api()
    seen, last_progress = 0, None
    terminal = ("SUCCEEDED", "FAILED", "CANCELLED")
    while True:
        state = server.get(f"/api/jobs/{job_id}/events", after=seen)
        for e in state["events"]:
            arrow = f"{e['from']} -> " if e["from"] else ""
            info(f"[{short_time(e['at'])}] job {job_id} {arrow}{e['to']}: {e['reason']}")
        seen += len(state["events"])
        if state["progress"] and state["progress"] != last_progress:
            last_progress = state["progress"]
            info(f"  ... {last_progress} ({time.monotonic() - started:.0f}s)")
        if state["status"] in terminal:
            break
        time.sleep(poll)
    if state["status"] != "SUCCEEDED":
        raise JobFailedError(
            f"job {job_id} {state['status']}: {state['error'] or 'no reason given'}",
            hint=f"`orch jobs show {job_id}` and `orch jobs logs {job_id}`",
        )
    for key, value in (state["result"] or {}).items():
        info(f"  {key}: {value}")
