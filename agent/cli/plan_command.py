"""`cvsync plan`: what `cvsync run` would do with a spec, under its cluster's upgrade policy.

Against the live cluster (a server-side dry run) or offline from a saved object (`--live`,
which may be the status file cvsync committed), optionally with update-graph data for the
path to the target. `--pr` prints the Markdown comment a CI job posts on a pull request.

I/O wiring over pure stages; exit codes are the command line's.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.engine.reconciler import apply_taking_back, select_spec
from agent.errors import UsageError
from agent.model.drift import DriftItem, DriftKind
from agent.model.findings import Severity
from agent.model.gates import UpgradeCheck
from agent.model.plan import ApplyPlan, PullRequestPlan
from agent.model.policy import Policy
from agent.model.revision import Revision, Snapshot
from agent.model.versions import parse_version
from agent.report.drift_render import render_plan, spec_changes
from agent.report.pr_plan import plan_verdict, render_pr_json, render_pr_markdown
from agent.report.status_live import load_live_object
from agent.spec.normalize import desired_state, keyed_overrides, requested_update
from agent.sync.diff import DESIRED_UPDATE
from agent.sync.diff import diff as diff_specs
from agent.sync.plan import Mode, plan_apply
from agent.upgrade.decision import accepted_risk_names, check_upgrade, with_accepted_risks
from agent.upgrade.graph import UpdateGraph
from agent.upgrade.policy import parse_policy
from agent.upgrade.status_read import mapping, mappings, shows_accept_risks, text

EXIT_APPLIES = 0
EXIT_HELD = 1
EXIT_ERROR = 2


@dataclass(frozen=True, slots=True)
class PlanRequest:
    cluster: str | None  # None: the kubeconfig's name for the cluster, or the spec file's
    spec_file: Path
    policy_file: Path | None  # None: the default policy
    live_file: Path | None  # None: read the live object from the cluster
    graph_dir: Path | None
    kubeconfig: Path | None
    context: str | None
    output: str
    pull_request: bool
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Planned:
    """Everything one plan worked out, before it is rendered."""

    plan: ApplyPlan
    upgrade: UpgradeCheck | None
    changes: list[dict[str, Any]]
    live_label: str
    findings: tuple[str, ...]
    live: dict[str, Any] | None
    channel: str  # the channel after merge: git's, else the live one
    held: list[dict[str, Any]]  # drifted fields git declares that the merge leaves as they are
    cluster: str = ""  # the kubeconfig's name for the live cluster, when one was asked


async def run_plan(request: PlanRequest, echo: Any) -> int:
    """Print the plan; 0 when merging would apply (or change nothing), 1 when git's target
    would be blocked or wait (only with --pr), 2 on errors."""
    now = request.at or datetime.now(UTC)
    document, findings = _spec(request.spec_file, echo)
    policy, policy_label = _policy(request.policy_file, now, echo)
    planned = await _plan(request, document, policy, now, findings)
    label = request.spec_file.as_posix()
    cluster = request.cluster or planned.cluster or label
    if not request.pull_request:
        echo(render_plan(cluster, label, planned.plan, planned.changes, request.output))
        return EXIT_APPLIES if planned.plan.stalled is None else EXIT_ERROR
    path, path_source = _path(planned, request.graph_dir)
    pr = PullRequestPlan(
        cluster=cluster,
        spec_label=label,
        live_label=planned.live_label,
        policy_label=policy_label,
        evaluated_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        verdict=plan_verdict(planned.plan, planned.upgrade),
        stalled=planned.plan.stalled,
        message=planned.plan.message,
        changes=planned.changes,
        reported=planned.plan.reported,
        held=planned.held,
        upgrade=planned.upgrade,
        path=path,
        path_source=path_source,
        findings=planned.findings,
    )
    echo(render_pr_json(pr) if request.output == "json" else render_pr_markdown(pr))
    return EXIT_APPLIES if pr.verdict in ("apply", "none") else EXIT_HELD


async def _plan(
    request: PlanRequest, document: Any, policy: Policy, now: datetime, findings: tuple[str, ...]
) -> Planned:
    if request.live_file is not None:
        saved = _live_file(request.live_file)
        label = request.live_file.as_posix()
        return _offline(
            document, saved, policy, now, label=label, findings=findings,
            accept_risks=shows_accept_risks(saved),
        )  # fmt: skip
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    cluster = await KubeCluster.connect(kubeconfig=request.kubeconfig, context=request.context)
    try:
        live = await cluster.get()
        accept_risks = live is not None and (await cluster.served_schema()).accept_risks
        offline = _offline(
            document, live, policy, now, label="the cluster", findings=findings,
            accept_risks=accept_risks,
        )  # fmt: skip
        changes: list[dict[str, Any]] = []
        plan = offline.plan
        if plan.body is not None and plan.stalled is None:
            after, taken = await apply_taking_back(cluster, plan.body, force=False, dry_run=True)
            changes = spec_changes(live, after)
            for field, owner in taken:
                plan = replace(plan, message=f'{plan.message}; takes over {field} from "{owner}"')
        context = f"context {request.context}" if request.context else "the current context"
        return replace(
            offline,
            plan=plan,
            changes=changes,
            live_label=f"the cluster ({context})",
            cluster=cluster.name,
        )
    finally:
        await cluster.close()


def _offline(
    document: Any,
    live: dict[str, Any] | None,
    policy: Policy,
    now: datetime,
    *,
    label: str,
    findings: tuple[str, ...],
    accept_risks: bool = False,
) -> Planned:
    """The plan against `live`. `accept_risks`: the cluster's schema declares acceptRisks (its
    server says so, or a saved object holds such a field), so the policy's accepted risks go
    there."""
    desired = desired_state(document)
    if accept_risks:
        desired = with_accepted_risks(desired, accepted_risk_names(policy, now))
    upgrade = None if live is None else check_upgrade(desired, live, policy, now)
    drift = diff_specs(desired.spec, live)
    mode: Mode = "observe" if policy.mode == "observe" else "enforce"
    plan = plan_apply(desired, live, drift, mode=mode, upgrade=upgrade, drift_actions=policy.drift)
    changes = []
    if plan.body is not None and plan.stalled is None and live is not None:
        changes = spec_changes(live, _applied(live, plan.body))
    channel = desired.spec.get("channel") or mapping((live or {}).get("spec")).get("channel")
    held = [
        {
            "path": item.path,
            "before": _asked(item.path, item.live),
            "after": item.desired,
            "why": _why(item, upgrade),
        }
        for item in drift.items
        if item.path in plan.reported
    ]
    return Planned(plan, upgrade, changes, label, findings, live, text(channel), held)


def _asked(path: str, live: Any) -> Any:
    """A live desiredUpdate as what it asks for: the cluster stores whichever fields its
    writer sent, a status file records only the ones that ask something."""
    if path == f".spec.{DESIRED_UPDATE}" and isinstance(live, dict):
        return requested_update(live)
    return live


def _why(item: DriftItem, upgrade: UpgradeCheck | None) -> str:
    if item.path == ".spec.desiredUpdate" and upgrade is not None and upgrade.pending:
        return "waits for a window" if upgrade.decision.action == "wait" else "blocked"
    if item.kind is DriftKind.FORWARD:
        return "kept: the cluster is ahead of git"
    if item.kind is DriftKind.EXTRA:
        return "kept: git no longer declares it"
    return f'reported, not corrected: set by "{item.owner}"' if item.owner else "reported"


def _applied(live: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The live object after a server-side apply of `body`, for an offline plan: each field
    git declares replaces the live one; override entries merge by their key."""
    spec = dict(mapping(live.get("spec")))
    for key, value in body.get("spec", {}).items():
        if key == "overrides":
            merged = keyed_overrides(spec.get(key))
            merged.update(keyed_overrides(value))
            spec[key] = list(merged.values())
        elif key == "capabilities" and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return {**live, "spec": spec}


def _spec(path: Path, echo: Any) -> tuple[Any, tuple[str, ...]]:
    """The spec, and its findings as lines; without a valid spec the findings go to stdout
    and the error names the file."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give the spec with --file")
    snapshot = Snapshot(Revision("file", str(path)), ((path.as_posix(), path.read_bytes()),))
    document, findings = select_spec(snapshot, path.as_posix())
    lines = tuple(f"{f.location}: {f.severity}[{f.rule}]: {f.message}" for f in findings)
    if document is None:
        echo("".join(f"{line}\n" for line in lines))
        errors = [f for f in findings if f.severity is Severity.ERROR]
        first = f" (first: {errors[0].location}: {errors[0].message})" if errors else ""
        raise UsageError(f"{path} holds no valid ClusterVersion{first}; fix the findings above")
    return document, lines


def _policy(path: Path | None, now: datetime, echo: Any) -> tuple[Policy, str]:
    if path is None:
        return Policy(), "none (the defaults)"
    if not path.is_file():
        raise UsageError(f"{path}: no such policy file; give the policy with --policy")
    policy, findings = parse_policy(path.read_bytes(), path.as_posix(), today=now.date())
    if policy is None:
        errors = [f for f in findings if f.severity is Severity.ERROR]
        echo("".join(f"{f.location}: {f.severity}[{f.rule}]: {f.message}\n" for f in errors))
        first = f" (first: {errors[0].location}: {errors[0].message})" if errors else ""
        raise UsageError(f"{path} is not a valid policy{first}; fix the findings above")
    return policy, path.as_posix()


def _live_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(
            f"{path}: no such file; save one with `oc get clusterversion version -o yaml`"
        )
    try:
        return load_live_object(path.read_bytes(), path.as_posix())
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _current(live: dict[str, Any] | None) -> str:
    status = mapping((live or {}).get("status"))
    completed = [e for e in mappings(status.get("history")) if e.get("state") == "Completed"]
    return text(completed[0].get("version")) if completed else ""


def _path(planned: Planned, graph_dir: Path | None) -> tuple[tuple[str, ...], str]:
    """current → … → target: from the update graph when given, else the direct hop."""
    upgrade = planned.upgrade
    if upgrade is None or upgrade.decision.action == "none" or not upgrade.target:
        return (), ""
    current, target, channel = _current(planned.live), upgrade.target, planned.channel
    if not current:
        return (), ""
    if graph_dir is not None:
        hops = graph_path(_load_graph(graph_dir), channel, current, target)
        if hops:
            return hops, f"shortest path on {channel} in the update graph data"
        return (), f"the update graph data has no path from {current} to {target} on {channel}"
    return (current, target), "the direct hop; give --graph for a path through the graph data"


def _load_graph(graph_dir: Path) -> UpdateGraph:
    channels, blocked = graph_dir / "channels", graph_dir / "blocked-edges"
    if not channels.is_dir():
        raise UsageError(f"{graph_dir}: no channels/ directory (a cincinnati-graph-data checkout)")
    try:
        return UpdateGraph.load(channels, blocked)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{graph_dir}: cannot read the update graph data: {exc}") from None


def graph_path(graph: UpdateGraph, channel: str, current: str, target: str) -> tuple[str, ...]:
    """The fewest hops from `current` to `target` over the channel's edges (a z-stream or
    the next minor each), preferring the newest release at each step."""
    if parse_version(current) is None or parse_version(target) is None:
        return ()
    previous: dict[str, str] = {}
    queue = deque([current])
    while queue:
        here = queue.popleft()
        if here == target:
            steps = [here]
            while steps[-1] != current:
                steps.append(previous[steps[-1]])
            return tuple(reversed(steps))
        for version, _ in graph.edges(here, channel):
            if version not in previous and version != current:
                previous[version] = here
                queue.append(version)
    return ()
