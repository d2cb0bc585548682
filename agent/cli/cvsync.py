"""The `cvsync` command group: every command, and the one error path for cvsync's own
errors (a line `cvsync: error: ...`, exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from agent import __version__
from agent.cli import demo, diff_plan, run, sandbox, status, validate
from agent.cli.options import EXIT_USAGE
from agent.errors import CvsyncError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cvsync")
def cvsync() -> None:
    """GitOps for OpenShift's ClusterVersion: validate specs from git."""


for _command in (
    validate.validate,
    sandbox.sandbox,
    run.run,
    demo.demo,
    diff_plan.diff,
    diff_plan.plan,
    status.status,
    status.drift,
):
    cvsync.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; cvsync's own errors become a one-line message and exit 2."""
    try:
        cvsync.main(args=list(argv) if argv is not None else None, prog_name="cvsync")
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
