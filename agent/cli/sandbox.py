"""`cvsync sandbox`: run the simulated control plane in the foreground."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from agent.sandbox.operator.scenarios import load_scenario, scenario_names


@click.command()
@click.option(
    "--port", type=int, default=0, show_default=True, help="API port; 0 picks a free one."
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
    "--admin-port", type=int, default=None, help="Serve the fault-injection endpoint here."
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
    """Run a simulated OpenShift control plane on 127.0.0.1 until Ctrl-C: an API server
    for ClusterVersion, Lease and Event, and a cluster-version-operator simulator."""
    # Imported here: aiohttp and cryptography are needed by this command only.
    from agent.sandbox.runner import serve_until_stopped  # noqa: PLC0415
    from agent.sandbox.server import SandboxOptions  # noqa: PLC0415

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
    asyncio.run(serve_until_stopped(options, kubeconfig_path, click.echo))
