"""`cvsync diff` and `cvsync plan`: what git would change on the cluster, and under which
upgrade policy.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from agent.cli.options import EXIT_FINDINGS, EXIT_OK, spec_file_of, target_options
from agent.engine.reconciler import select_spec
from agent.errors import CvsyncError, UsageError
from agent.model.revision import Revision, Snapshot
from agent.model.status import AgentState
from agent.report.drift_render import render_drift
from agent.report.status_markdown import render_drift_report_markdown
from agent.report.summarize import drift_entries, summarize
from agent.settings import DEFAULT_POLICY_PATH
from agent.spec.normalize import desired_state
from agent.sync.diff import diff as diff_specs
from agent.sync.plan import plan_apply


@click.command()
@target_options
def diff(**options: Any) -> None:
    """Compare the spec in git with the live ClusterVersion, like `kubectl diff`.

    Exits 0 when nothing drifted, 1 when something did, 2 on errors."""
    sys.exit(asyncio.run(show_drift(options)))


@click.command()
@target_options
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The upgrade policy (default: clusters/<cluster>/policy.yaml when it exists).",
)
@click.option(
    "--live",
    "live_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan offline against a saved ClusterVersion (oc get -o yaml) or a cvsync status file.",
)
@click.option(
    "--graph",
    "graph_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="With --pr: update graph data (channels/, blocked-edges/ as in "
    "cincinnati-graph-data) for the path to the target.",
)
@click.option("--pr", "pull_request", is_flag=True, help="Print a pull-request comment.")
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"]),
    help="Evaluate windows and expiries at this time (default: now), e.g. 2026-12-05T02:30:00Z.",
)
def plan(**options: Any) -> None:
    """Show what `cvsync run` would change under the cluster's upgrade policy, from a
    server-side dry run (dryRun=All) or offline from --live.

    Exits 0 when the plan was made; with --pr, 0 when merging would apply (or change
    nothing), 1 when git's target would be blocked or wait; 2 on errors."""
    sys.exit(asyncio.run(_plan(options)))


async def _plan(options: dict[str, Any]) -> int:
    from agent.cli.plan_command import PlanRequest, run_plan  # noqa: PLC0415 - loads the sandbox graph

    spec_file = spec_file_of(options)
    if options["graph_dir"] is not None and not options["pull_request"]:
        raise click.UsageError("--graph is used only with --pr: the path is part of the comment")
    policy_file = options["policy_file"]
    if policy_file is None:
        sibling = spec_file.parent / "policy.yaml"
        candidates = [sibling]
        if options["cluster"]:
            candidates.append(Path(DEFAULT_POLICY_PATH.format(cluster=options["cluster"])))
        policy_file = next((p for p in candidates if p.is_file()), None)
    at = options["at"]
    request = PlanRequest(
        cluster=options["cluster"],
        spec_file=spec_file,
        policy_file=policy_file,
        live_file=options["live_file"],
        graph_dir=options["graph_dir"],
        kubeconfig=options["kubeconfig"],
        context=options["context"],
        output=options["output"],
        pull_request=options["pull_request"],
        at=None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC),
    )
    return await run_plan(request, lambda text: click.echo(text, nl=False))


async def show_drift(options: dict[str, Any]) -> int:
    path = spec_file_of(options)
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give the spec with --file")
    snapshot = Snapshot(Revision("file", str(path)), ((path.as_posix(), path.read_bytes()),))
    document, findings = select_spec(snapshot, path.as_posix())
    if document is None:
        for finding in findings:
            click.echo(f"{finding.location}: {finding.severity}[{finding.rule}]: {finding.message}")
        raise UsageError(f"{path} holds no valid ClusterVersion; fix the findings above")
    # Only now that there is something to compare: kubernetes-asyncio loads ~1 s.
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415

    cluster = await KubeCluster.connect(
        kubeconfig=options["kubeconfig"], context=options["context"]
    )
    try:
        cluster_name = options["cluster"] or cluster.name
        live = await cluster.get()
        desired = desired_state(document)
        drift = diff_specs(desired.spec, live)
        plan_ = plan_apply(desired, live, drift, mode="enforce")
        # `diff` compares a file; `drift` reports a revision, as the agent's reports do.
        label = path.as_posix()
        if options.get("report"):
            from agent.adapters.checkout import checkout_revision  # noqa: PLC0415 - GitPython runs git on import

            label = checkout_revision(path).label()
        if options.get("report") and options["output"] == "markdown" and live is not None:
            state = AgentState(cluster=cluster_name, drift=drift_entries(drift.items))
            summary = summarize(live, state)
            click.echo(render_drift_report_markdown(summary, revision=label), nl=False)
        else:
            click.echo(render_drift(cluster_name, label, drift, options["output"]), nl=False)
        if plan_.stalled is not None:
            raise CvsyncError(f"{plan_.stalled}: {plan_.message}")
        return EXIT_FINDINGS if drift else EXIT_OK
    finally:
        await cluster.close()
