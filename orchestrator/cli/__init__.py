"""``orch``: submit and follow jobs, query the registry, run the local cluster.

Command modules import only click at load time, so ``orch --help`` starts fast; the
registry, specs and Ray are imported inside the commands that need them.
"""

from __future__ import annotations

import sys

import click

from orchestrator.cli import admin, cluster, datasets, jobs, models, serve, submit, tokenizers


class OrchGroup(click.Group):
    """Turns our errors (a bad spec, a missing job, an unreachable cluster...) into a one-line
    message and their exit code (1 or 2); anything else stays a traceback (a bug)."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except Exception as exc:
            from orchestrator.errors import USER_ERRORS  # imported late: `orch --help` stays fast

            if not isinstance(exc, USER_ERRORS):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=OrchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ray-nlp-orchestrator", prog_name="orch")
def cli() -> None:
    """Job orchestration for Hugging Face NLP training on Ray.

    Commands talk to the API server: ORCH_SERVER_URL with your token in ORCH_TOKEN (or a
    token_file), else the local one `orch cluster up` starts (you are its admin). Settings
    come from ORCH_* environment variables or ~/.config/orch/config.yaml; the server's own:
    ORCH_REGISTRY_URL (default: SQLite under ORCH_HOME), ORCH_ARTIFACT_ROOT,
    ORCH_CLUSTER_ADDRESS (default: the local cluster of `orch cluster up`).
    """


cli.add_command(submit.validate)
cli.add_command(submit.submit)
cli.add_command(jobs.jobs)
cli.add_command(tokenizers.tokenizers)
cli.add_command(models.models)
cli.add_command(datasets.datasets)
cli.add_command(cluster.cluster)
cli.add_command(serve.serve)
cli.add_command(serve.predict)
cli.add_command(serve.endpoints)
cli.add_command(admin.users)
cli.add_command(admin.audit)
cli.add_command(admin.server)


def main() -> None:
    cli()
