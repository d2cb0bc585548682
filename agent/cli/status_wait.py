"""`cvsync status --wait`: follow git's update target on the live cluster until it ends in an
answer, for a CI job after a merge. Prints each lifecycle transition as it happens.

Exits 0 at `completed`, 1 at `refused`, `failing` or `stalled`, 2 on errors or timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from agent.cli.options import EXIT_FINDINGS, EXIT_OK
from agent.engine.reconciler import select_policy, select_spec
from agent.errors import CvsyncError, UsageError
from agent.model.desired import DesiredState
from agent.model.lifecycle import LifecycleState, RecordedProgress, UpdateLifecycle
from agent.model.policy import Policy
from agent.model.revision import Revision, Snapshot
from agent.report.status_recorded import recorded_in, status_path
from agent.settings import DEFAULT_POLICY_PATH, DEFAULT_SPEC_PATH
from agent.spec.normalize import desired_state
from agent.upgrade.decision import check_upgrade
from agent.upgrade.lifecycle import (
    Target,
    git_target,
    observe_update,
    resume_progress,
    stall_deadline,
)

# A look at the object at least this often, also when no watch event comes: the clock alone
# moves a target into or out of a maintenance window.
_LOOK_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class WaitRequest:
    cluster: str | None
    kubeconfig: Path | None
    context: str | None
    timeout: timedelta
    spec_file: Path | None  # git's spec: the target to wait for (default: the checkout's)
    output: str  # text, or json for one JSON object per line


@dataclass(frozen=True, slots=True)
class GitSide:
    """What the checkout says: the desired state (None without a spec file), the policy, and
    the progress cvsync's status file recorded (None without one)."""

    desired: DesiredState | None
    policy: Policy
    recorded: RecordedProgress | None = None


def read_git_side(cluster: str | None, spec_file: Path | None, now: datetime) -> GitSide:
    """The cluster's spec and policy from the checkout; without a spec file, the target is the
    one the live object was asked for when the wait began."""
    if spec_file is None and cluster is None:
        return GitSide(None, Policy())
    path = spec_file or Path(DEFAULT_SPEC_PATH.format(cluster=cluster))
    if not path.is_file():
        if spec_file is not None:
            raise UsageError(f"{spec_file}: no such file")
        return GitSide(None, Policy())
    files = [(path.as_posix(), path.read_bytes())]
    candidates = [path.parent / "policy.yaml"]
    if cluster is not None:
        candidates.append(Path(DEFAULT_POLICY_PATH.format(cluster=cluster)))
    policy_path = next((p for p in candidates if p.is_file()), None)
    if policy_path is not None:
        files.append((policy_path.as_posix(), policy_path.read_bytes()))
    snapshot = Snapshot(Revision("file", path.as_posix()), tuple(files))
    document, findings = select_spec(snapshot, path.as_posix())
    if document is None:
        first = findings[0] if findings else None
        detail = f": {first.location}: {first.message}" if first else ""
        raise UsageError(f"{path} holds no valid ClusterVersion{detail}")
    policy = Policy()
    if policy_path is not None:
        found, problems = select_policy(snapshot, policy_path.as_posix(), now)
        if found is None:
            first = problems[0]
            raise UsageError(f"{first.location}: {first.rule}: {first.message}")
        policy = found
    return GitSide(desired_state(document), policy, _recorded_progress(cluster))


def _recorded_progress(cluster: str | None) -> RecordedProgress | None:
    """When the agent last saw git's target move, from its status file in the checkout: a
    stall then counts from there, not from the start of the wait."""
    if cluster is None:
        return None
    path = Path(status_path(cluster))
    return recorded_in(path.read_bytes()).progress if path.is_file() else None


async def wait_for_update(request: WaitRequest) -> int:
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    git = read_git_side(request.cluster, request.spec_file, datetime.now(UTC))
    cluster = await KubeCluster.connect(kubeconfig=request.kubeconfig, context=request.context)
    try:
        return await _follow(cluster, git, request)
    finally:
        await cluster.close()


class _Latest:
    """The newest object the watch delivered, and a flag raised on each delivery."""

    def __init__(self) -> None:
        self.object: dict[str, Any] | None = None
        self.seen = False
        self.changed = asyncio.Event()

    async def follow(self, cluster: Any) -> None:
        async for obj in cluster.watch():
            self.object, self.seen = obj, True
            self.changed.set()


async def _follow(cluster: Any, git: GitSide, request: WaitRequest) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.timeout.total_seconds()
    latest = _Latest()
    watching = asyncio.create_task(latest.follow(cluster), name="status-wait-watch")
    target: Target | None = None
    previous: UpdateLifecycle | None = None
    try:
        while True:
            pause = min(deadline - loop.time(), _LOOK_EVERY, _until_stall(previous, git.policy))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(latest.changed.wait(), max(pause, 0))
            latest.changed.clear()
            if watching.done():
                watching.result()  # raises the watch's error
            if loop.time() >= deadline:
                told = previous.describe() if previous else "nothing observed"
                raise CvsyncError(
                    f"timed out after {request.timeout}; last: {told}; wait longer with --timeout"
                )
            if not latest.seen:
                continue
            if latest.object is None:
                raise UsageError("the cluster has no ClusterVersion named version")
            live = latest.object
            now = datetime.now(UTC)
            if git.desired is not None:
                target = git_target(git.desired.spec)
            elif target is None:
                target = git_target(live.get("spec") or {})
            held = None
            if git.desired is not None:
                held = check_upgrade(git.desired, live, git.policy, now)
            lifecycle = observe_update(
                target, live, now=now, stall_after=git.policy.stall_after, held=held,
                previous=previous,
            )  # fmt: skip
            if previous is None and git.recorded is not None:
                dated = resume_progress(lifecycle, git.recorded)
                if dated is not lifecycle and dated is not None:
                    # Dated from the status file: observed again at once, it may be stalled.
                    lifecycle = observe_update(
                        target, live, now=now, stall_after=git.policy.stall_after, held=held,
                        previous=dated,
                    )  # fmt: skip
            if _news(lifecycle, previous):
                _print(lifecycle, now, request.output)
            previous = lifecycle
            if lifecycle.state in (LifecycleState.COMPLETED, LifecycleState.IDLE):
                return EXIT_OK
            if lifecycle.trouble:
                return EXIT_FINDINGS
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError, CvsyncError):
            await watching


def _until_stall(previous: UpdateLifecycle | None, policy: Policy) -> float:
    edge = None if previous is None else stall_deadline(previous, policy.stall_after)
    if edge is None:
        return _LOOK_EVERY
    return max((edge - datetime.now(UTC)).total_seconds(), 0.0)


def _news(lifecycle: UpdateLifecycle, previous: UpdateLifecycle | None) -> bool:
    """A transition, or (while it progresses) a new percentage."""
    if not lifecycle.same_answer(previous):
        return True
    assert previous is not None
    return lifecycle.percent != previous.percent


def _print(lifecycle: UpdateLifecycle, now: datetime, output: str) -> None:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    if output == "json":
        line = {
            "at": stamp,
            "state": lifecycle.state.value,
            "target": lifecycle.target or None,
            "reason": lifecycle.reason,
            "message": lifecycle.message,
            "percent": lifecycle.percent,
            "waitingOn": lifecycle.waiting_on,
            "durationSeconds": lifecycle.duration_seconds,
        }
        click.echo(json.dumps(line, separators=(",", ":")))
    else:
        click.echo(f"{stamp} {lifecycle.describe()}")
