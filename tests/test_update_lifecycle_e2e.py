"""The update lifecycle end to end on the sandbox: every merged target ends in an answer the
user can trust, in the cycle outcome, the status file commits, Events, the metric and
`cvsync status --wait` (a real process).

An accepted conditional update goes requested -> accepted -> progressing -> completed, one
status commit each; a payload the operator cannot verify ends `refused` with its reason and
words; an update held at "waiting on machine-config" ends `stalled` after the policy's
stallAfter and clears when progress resumes (the agent's clock is stepped, the operator's runs).
"""

from __future__ import annotations

import asyncio
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent_support import (
    POLICY_HEAD,
    POLICY_PATH,
    SPEC_PATH,
    Agent,
    agent_on,
    running_agent,
    seeded_cluster,
    spec,
    until,
)
from conftest import REPO_ROOT
from gitrepo import git
from ruamel.yaml import YAML

from agent.clock import SteppedClock
from agent.engine.reconciler import Result
from agent.model.lifecycle import LifecycleState

ACCEPT_AZURE = POLICY_HEAD + (
    "  acceptedRisks:\n"
    "    - {name: AzureNodeBootDelay, reason: nodes boot in time on this pool, "
    "approvedBy: platform-team, expires: 2099-12-31}\n"
)


def status_subjects(agent: Agent) -> list[str]:
    """The status commits' subjects on the remote, oldest first."""
    git(agent.remote.work, "fetch", "-q", "origin", "main")
    log = git(agent.remote.work, "log", "--reverse", "--format=%s", "origin/main")
    return [line for line in log.splitlines() if line.startswith("status(")]


def states_for(subjects: list[str], target: str) -> list[str]:
    """The lifecycle states the commits name for `target`, each run of one state once."""
    states: list[str] = []
    for subject in subjects:
        found = re.match(rf"status\(east\): {re.escape(target)} (\w+)", subject)
        if found and (not states or states[-1] != found.group(1)):
            states.append(found.group(1))
    return states


def lifecycle_state(agent: Agent) -> LifecycleState | None:
    found = agent.runtime.reconciler.lifecycle
    return None if found is None else found.state


async def cvsync_wait(agent: Agent, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`cvsync status --wait` as a CI job runs it: a process in a checkout of the repo."""
    checkout = tmp_path / "ci-checkout"
    if not checkout.exists():
        git(tmp_path, "clone", "-q", agent.remote.url, str(checkout))
    git(checkout, "pull", "-q", "origin", "main")
    kubeconfig = agent.sandbox.kubeconfig(tmp_path / "ci.kubeconfig", user="cvsync")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "status", "--wait", "--cluster", "east",
        "--kubeconfig", str(kubeconfig), *args,
        cwd=checkout,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_an_accepted_conditional_update_commits_each_step_to_completed(
    tmp_path: Path,
) -> None:
    # One simulated tick is 0.2 s: long enough for the agent to see the operator's first
    # "Working towards 4.16.3" (accepted) before the first manifests are done.
    async with running_agent(tmp_path, "conditional-risks", time_scale=600) as agent:
        applied = await agent.commit(
            {
                POLICY_PATH: ACCEPT_AZURE,
                SPEC_PATH: spec(agent.cluster_id, "stable-4.16", "4.16.3"),
            },
            "update to 4.16.3, accepting AzureNodeBootDelay",
        )
        assert applied.result is Result.APPLIED, applied.message
        assert applied.update is not None
        assert applied.update.state is LifecycleState.REQUESTED
        await until(lambda: lifecycle_state(agent) is LifecycleState.COMPLETED, 60)
        await until(lambda: "completed" in " ".join(status_subjects(agent)), 30)
        subjects = status_subjects(agent)
        assert states_for(subjects, "4.16.3") == [
            "requested",
            "accepted",
            "progressing",
            "completed",
        ], subjects
        status = agent.status_file()
        assert "state: completed" in status
        assert "target: 4.16.3" in status
        assert re.search(r"durationSeconds: \d+", status)
        assert agent.events("UpdateCompleted")
        assert agent.runtime.metrics.update_state.labels(state="completed")._value.get() == 1
        # In sync at the target: the answer is InSync again, and `status --wait` says 0.
        quiet = await agent.commit({"README.md": "unrelated\n"}, "docs")
        assert quiet.result is Result.IN_SYNC, quiet.message
        code, out, err = await cvsync_wait(agent, tmp_path, "--timeout", "60s")
        assert code == 0, err
        assert "completed 4.16.3" in out


async def test_a_payload_the_operator_cannot_verify_ends_refused_everywhere(
    tmp_path: Path,
) -> None:
    async with running_agent(tmp_path, "unverified-release", time_scale=600) as agent:
        await agent.commit(
            {SPEC_PATH: spec(agent.cluster_id, agent.channel, "4.15.15")}, "update to 4.15.15"
        )
        await until(lambda: lifecycle_state(agent) is LifecycleState.REFUSED, 30)
        refused = agent.runtime.reconciler.lifecycle
        assert refused is not None
        assert refused.reason == "RetrievePayload"
        assert "The update cannot be verified" in (refused.message or "")
        # Never InSync while the cluster neither runs nor moves to git's target.
        outcome = await agent.commit({"README.md": "unrelated\n"}, "docs")
        assert outcome.result is Result.STALLED
        assert outcome.reason == "UpdateRefused"
        assert "desiredUpdate" in agent.live()["spec"]  # applied, and refused by the operator
        await until(lambda: "state: refused" in agent.status_file(), 30)
        status = agent.status_file()
        assert "reason: RetrievePayload" in status
        assert "The update cannot be verified" in status
        events = agent.events("UpdateRefused")
        assert events
        assert events[0]["type"] == "Warning"
        assert "RetrievePayload" in events[0]["message"]
        assert len(agent.events("UpdateRefused")) == 1  # one Event, counted, not one per cycle
        code, out, err = await cvsync_wait(agent, tmp_path, "--timeout", "60s")
        assert code == 1, (out, err)
        assert "refused 4.15.15 (RetrievePayload)" in out
        assert "The update cannot be verified" in out


async def test_an_update_without_progress_for_stall_after_is_stalled_until_it_moves(
    tmp_path: Path,
) -> None:
    start = datetime.now(UTC)
    clock = SteppedClock(start)
    # One tick is 0.4 s: the pools hold progress for 30 ticks (12 s of real time), while the
    # agent's clock is stepped past stallAfter.
    async with running_agent(tmp_path, "slow-worker-pools", clock=clock, time_scale=300) as agent:
        target = agent.live()["status"]["availableUpdates"][0]["version"]
        await agent.commit(
            {
                POLICY_PATH: POLICY_HEAD + "  stallAfter: 20s\n",
                SPEC_PATH: spec(agent.cluster_id, agent.channel, target),
            },
            f"update to {target}",
        )

        def waiting_on_pools() -> bool:
            found = agent.runtime.reconciler.lifecycle
            return found is not None and found.waiting_on == "machine-config"

        await until(waiting_on_pools, 60)
        assert lifecycle_state(agent) is LifecycleState.PROGRESSING
        # The policy's 20 s pass on the agent's clock with no change from the operator.
        await clock.move_to(datetime.now(UTC) + timedelta(seconds=21))
        await until(lambda: lifecycle_state(agent) is LifecycleState.STALLED, 10)
        stalled = agent.runtime.reconciler.lifecycle
        assert stalled is not None
        assert stalled.waiting_on == "machine-config"
        assert "waiting on machine-config" in stalled.describe()
        assert agent.events("UpdateStalled")[0]["type"] == "Warning"
        await until(lambda: "state: stalled" in agent.status_file(), 30)
        assert "waitingOn: machine-config" in agent.status_file()
        # The pools finish: progress resumes and clears the stall.
        await until(lambda: lifecycle_state(agent) is not LifecycleState.STALLED, 60)
        assert lifecycle_state(agent) in (LifecycleState.PROGRESSING, LifecycleState.COMPLETED)
        await until(lambda: lifecycle_state(agent) is LifecycleState.COMPLETED, 60)


async def test_a_restarted_agent_counts_a_stall_from_the_progress_its_predecessor_recorded(
    tmp_path: Path,
) -> None:
    """A restart (or a new leader) does not put a stall off by stallAfter: the progress time
    comes back from the status file the agent before it committed."""
    start = datetime.now(UTC).replace(microsecond=0)
    async with seeded_cluster(tmp_path, "slow-worker-pools", time_scale=300) as seeded:
        # One tick is 0.4 s: the pools hold progress for 30 ticks (12 s of real time).
        async with agent_on(seeded, tmp_path / "first", SteppedClock(start)) as first:
            target = first.live()["status"]["availableUpdates"][0]["version"]
            await first.commit(
                {
                    POLICY_PATH: POLICY_HEAD + "  stallAfter: 20s\n",
                    SPEC_PATH: spec(first.cluster_id, first.channel, target),
                },
                f"update to {target}",
            )
            await until(lambda: "waitingOn: machine-config" in first.status_file(), 60)
            update = YAML(typ="safe").load(first.status_file())["update"]
        recorded = datetime.fromisoformat(update["progressAt"].replace("Z", "+00:00"))
        assert recorded == start  # the first agent's clock stood still
        # The next agent starts 10 s later by its clock: counting from its own start, the
        # update would not be stalled before start + 30 s.
        clock = SteppedClock(start + timedelta(seconds=10))
        async with agent_on(seeded, tmp_path / "second", clock) as second:

            def progress_resumed() -> bool:
                found = second.runtime.reconciler.lifecycle
                return found is not None and found.progress_at == recorded

            await until(progress_resumed, 20)
            await clock.move_to(start + timedelta(seconds=21))
            await until(lambda: lifecycle_state(second) is LifecycleState.STALLED, 10)
            stalled = second.runtime.reconciler.lifecycle
            assert stalled is not None
            assert f"no progress since {update['progressAt']}" in (stalled.message or "")
            assert second.events("UpdateStalled")[0]["type"] == "Warning"


async def test_status_wait_in_a_checkout_counts_a_stall_from_the_committed_status_file(
    tmp_path: Path,
) -> None:
    """A CI job started long after progress stopped says `stalled` at once: the status file
    in its checkout dates the progress, the wait does not start counting from zero."""
    hour_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    # The agent's clock stands an hour back, so its status file says progress last moved
    # then; by its own clock nothing has stalled.
    clock = SteppedClock(hour_ago)
    async with running_agent(tmp_path, "slow-worker-pools", clock=clock, time_scale=300) as agent:
        target = agent.live()["status"]["availableUpdates"][0]["version"]
        await agent.commit(
            {
                POLICY_PATH: POLICY_HEAD + "  stallAfter: 20m\n",
                SPEC_PATH: spec(agent.cluster_id, agent.channel, target),
            },
            f"update to {target}",
        )
        await until(lambda: "waitingOn: machine-config" in agent.status_file(), 60)
        assert lifecycle_state(agent) is LifecycleState.PROGRESSING
        code, out, err = await cvsync_wait(agent, tmp_path, "--timeout", "8s")
        assert code == 1, (out, err)
        assert f"stalled {target}" in out
        assert f"no progress since {hour_ago:%Y-%m-%dT%H:%M:%SZ}" in out
