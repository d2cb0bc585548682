"""`cvsync validate`: check ClusterVersion specs and policies in files and directories."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date

import click

from agent.cli.options import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from agent.errors import UsageError

OUTPUTS = ("text", "json", "yaml")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Choice(OUTPUTS),
    default="text",
    show_default=True,
    help="text for people (path:line:col lines); json or yaml for machines.",
)
@click.option("--strict", is_flag=True, help="Count warnings as errors.")
def validate(paths: Sequence[str], output: str, strict: bool) -> None:
    """Validate ClusterVersion specs in PATHS (files, or directories searched for
    *.yaml, *.yml and *.json).

    Prints `path:line:col: severity[rule]: message` with a hint for every problem.
    Exits 0 when there are no errors, 1 when there are, 2 on usage or I/O errors (a path
    with nothing to validate among them)."""
    # Imported here, so that `cvsync validate --help` loads none of the checks.
    from agent.adapters.files import collect_spec_files  # noqa: PLC0415
    from agent.model import findings as rules  # noqa: PLC0415
    from agent.report.check import check_files  # noqa: PLC0415
    from agent.report.findings_render import render_json, render_text, render_yaml  # noqa: PLC0415

    renderers = {"text": render_text, "json": render_json, "yaml": render_yaml}
    collected = collect_spec_files(paths)
    report = check_files(collected.contents, collected.problems, today=date.today())
    if report.files == 0 and not report.findings:
        # A mistyped path must not pass CI as "ok: 0 files".
        named = ", ".join(paths)
        if collected.contents:
            raise UsageError(
                f"nothing to validate in {named}: only status files cvsync writes, which are "
                "not specs; give the specs' paths, such as clusters/"
            )
        raise UsageError(
            f"nothing to validate in {named}: no *.yaml, *.yml or *.json file; check the path"
        )
    if strict:
        report = report.promoted()
    click.echo(renderers[output](report), nl=False)
    if any(f.rule == rules.FILE_UNREADABLE.id for f in report.findings):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if report.errors else EXIT_OK)
