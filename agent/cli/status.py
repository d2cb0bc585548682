"""`cvsync status` and `cvsync drift`: the live ClusterVersion summarized (or, with --wait,
followed to its answer: status_wait), and its drift report.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from agent.cli.diff_plan import show_drift
from agent.cli.options import EXIT_OK, context_option, kubeconfig_option, target_options
from agent.cli.status_wait import WaitRequest, wait_for_update
from agent.errors import CvsyncError
from agent.model.status import AgentState
from agent.report import status_render
from agent.report.status_markdown import render_markdown
from agent.report.summarize import summarize
from agent.upgrade.policy import parse_short_duration


@click.command()
@click.option(
    "--cluster",
    envvar="CVSYNC_CLUSTER",
    show_envvar=True,
    help="The cluster's name in the output and its directory in git (default: the "
    "kubeconfig's name for the cluster).",
)
@kubeconfig_option
@context_option
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "yaml", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text for people; yaml or json for machines; markdown for a page.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Follow git's update target until it completes (exit 0), is refused, fails or "
    "stalls (exit 1); print each transition.",
)
@click.option(
    "--timeout",
    default="2h",
    show_default=True,
    help="With --wait: give up after this long (exit 2), e.g. 90m, 2h, 45s.",
)
@click.option(
    "--file",
    "spec_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --wait: git's spec (default: clusters/<cluster>/clusterversion.yaml when it "
    "exists, else the target the cluster was asked for).",
)
def status(
    *,
    cluster: str | None,
    kubeconfig: Path | None,
    context: str | None,
    output: str,
    wait: bool,
    timeout: str,
    spec_file: Path | None,
) -> None:
    """Print the live ClusterVersion's status summary; writes nothing anywhere. With --wait,
    follow git's update target to its answer instead."""
    if not wait:
        sys.exit(asyncio.run(_status(cluster, kubeconfig, context, output)))
    try:
        limit = parse_short_duration(timeout)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timeout") from None
    request = WaitRequest(cluster, kubeconfig, context, limit, spec_file, output)
    sys.exit(asyncio.run(wait_for_update(request)))


async def _status(
    cluster: str | None, kubeconfig: Path | None, context: str | None, output: str
) -> int:
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    client = await KubeCluster.connect(kubeconfig=kubeconfig, context=context)
    try:
        live = await client.get()
    finally:
        await client.close()
    if live is None:
        raise CvsyncError(f"{client.name} has no ClusterVersion named version")
    name = cluster or client.name
    summary = summarize(live, AgentState(cluster=name), now=datetime.now(UTC))
    renderers = {
        "text": status_render.render_text,
        "yaml": status_render.render_yaml,
        "json": status_render.render_json,
        "markdown": render_markdown,
    }
    click.echo(renderers[output](summary), nl=False)
    return EXIT_OK


@click.command()
@target_options
def drift(**options: Any) -> None:
    """Print the drift report: each drifted field, its git and live values, and who changed
    it when (-o markdown: the report cvsync commits). Exits 0 when nothing drifted, 1 when
    something did, 2 on errors."""
    options["report"] = True
    sys.exit(asyncio.run(show_drift(options)))
