"""The `cvsync` command line: subcommands, output formats and exit codes.

Exit codes: 0 success, 1 findings (errors, or warnings with --strict), 2 usage or I/O errors.
Bad input never produces a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from agent import __version__
from agent.adapters.files import collect_spec_files
from agent.errors import CvsyncError
from agent.model import findings as rules
from agent.pipeline.check import check_files
from agent.pipeline.findings_render import render_json, render_text
from agent.sandbox.scenarios import scenario_names

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cvsync")
def cvsync() -> None:
    """GitOps for OpenShift's ClusterVersion: validate specs from git."""


@cvsync.command()
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
    report = check_files(collected.contents, collected.problems)
    if strict:
        report = report.promoted()
    click.echo(render_json(report) if output == "json" else render_text(report), nl=False)
    if any(f.rule == rules.FILE_UNREADABLE.id for f in report.findings):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if report.errors else EXIT_OK)


@cvsync.command()
@click.option(
    "--port", type=int, default=0, show_default=True, help="API port; 0 picks a free one."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep objects and resourceVersions here across restarts (default: memory only).",
)
@click.option(
    "--kubeconfig",
    "kubeconfig_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the kubeconfig (default: in the state or a temporary directory).",
)
@click.option("--plain-http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option(
    "--admin-port", type=int, default=None, help="Serve the fault-injection endpoint here."
)
@click.option(
    "--scenario",
    type=click.Choice([*scenario_names(), "none"]),
    default="idle-4.15",
    show_default=True,
    help="The cluster to simulate; none serves the API with no ClusterVersion and no operator.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001),
    default=60.0,
    show_default=True,
    help="Simulated seconds per real second (60: an hour-long update takes a minute).",
)
def sandbox(
    *,
    port: int,
    state_dir: Path | None,
    kubeconfig_path: Path | None,
    plain_http: bool,
    admin_port: int | None,
    scenario: str,
    time_scale: float,
) -> None:
    """Run a simulated OpenShift control plane on 127.0.0.1 until Ctrl-C: an API server
    for ClusterVersion, Lease and Event, and a cluster-version-operator simulator."""
    # Imported here: aiohttp and cryptography are needed by this command only.
    from agent.sandbox.runner import serve_until_stopped  # noqa: PLC0415
    from agent.sandbox.server import SandboxOptions  # noqa: PLC0415

    options = SandboxOptions(
        port=port,
        tls=not plain_http,
        state_dir=state_dir,
        work_dir=state_dir,
        admin_port=admin_port,
        scenario=None if scenario == "none" else scenario,
        time_scale=time_scale,
    )
    asyncio.run(serve_until_stopped(options, kubeconfig_path, click.echo))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; cvsync's own errors become a one-line message and exit 2."""
    try:
        cvsync.main(args=list(argv) if argv is not None else None, prog_name="cvsync")
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
