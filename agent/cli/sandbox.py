"""`cvsync sandbox`: run the simulated control plane in the foreground."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from agent.cli.options import EXIT_INTERRUPTED, PORT, listen_problem
from agent.errors import UsageError
from agent.sandbox.operator.scenarios import load_scenario, scenario_names


@click.command()
@click.option(
    "--port", type=PORT, default=0, show_default=True, help="API port; 0 picks a free one."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep objects, resourceVersions, the CA and every user's token and rules here across "
    "restarts, even a kill -9 (default: memory only, new credentials at every start).",
)
@click.option(
    "--kubeconfig",
    "kubeconfig_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the kubeconfig (default: in the state or a temporary directory).",
)
@click.option("--plain-http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option(
    "--admin-port",
    type=PORT,
    default=None,
    help="Serve the admin endpoint (fault injection, request counts) on this port.",
)
@click.option(
    "--scenario",
    type=click.Choice([*scenario_names(), "none"]),
    default="idle-4.15",
    show_default=True,
    help="The cluster to simulate (served with the feature set it names); none serves the API "
    "with no ClusterVersion and no operator.",
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
    """Run a simulated OpenShift control plane on 127.0.0.1: an API server for
    ClusterVersion, Lease and Event, and a cluster-version-operator simulator. Runs until
    SIGTERM (exit 0) or Ctrl-C (exit 130)."""
    # Imported here: aiohttp and cryptography are needed by this command only.
    from agent.sandbox.runner import serve_until_stopped  # noqa: PLC0415
    from agent.sandbox.server import ListenError, SandboxOptions  # noqa: PLC0415

    chosen = None if scenario == "none" else load_scenario(scenario)
    options = SandboxOptions(
        port=port,
        tls=not plain_http,
        state_dir=state_dir,
        work_dir=state_dir,
        feature_set=chosen.feature_set if chosen else "Default",
        admin_port=admin_port,
        scenario=chosen.name if chosen else None,
        time_scale=time_scale,
    )
    try:
        stopped_by = asyncio.run(serve_until_stopped(options, kubeconfig_path, click.echo))
    except ListenError as exc:
        problem = listen_problem(exc.errno)
        if problem is None:
            raise
        flag = "--port" if exc.listener == "API" else "--admin-port"
        raise UsageError(f"cannot listen on {exc.host}:{exc.port} ({flag}): {problem}") from None
    if stopped_by == signal.SIGINT:
        sys.exit(EXIT_INTERRUPTED)
