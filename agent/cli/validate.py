"""`cvsync validate`: check ClusterVersion specs and policies in files and directories."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import date

import click

from agent.adapters.files import collect_spec_files
from agent.cli.options import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE
from agent.model import findings as rules
from agent.report.check import check_files
from agent.report.findings_render import render_json, render_text


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines or one JSON document.",
)
@click.option("--strict", is_flag=True, help="Count warnings as errors.")
def validate(paths: Sequence[str], output: str, strict: bool) -> None:
    """Validate ClusterVersion specs in PATHS (files, or directories searched for
    *.yaml, *.yml and *.json).

    Prints `path:line:col: severity[rule]: message` with a hint for every problem.
    Exits 0 when there are no errors, 1 when there are, 2 on usage or I/O errors.
    """
    collected = collect_spec_files(paths)
    report = check_files(collected.contents, collected.problems, today=date.today())
    if strict:
        report = report.promoted()
    click.echo(render_json(report) if output == "json" else render_text(report), nl=False)
    if any(f.rule == rules.FILE_UNREADABLE.id for f in report.findings):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if report.errors else EXIT_OK)
