"""Write-back when pushes keep failing, against real bare remotes whose pre-receive hook refuses:
jittered backoff between give-ups (its random source and clock are WriteBack's own
parameters), the newest status taking the place of any that waited, and the run loop waking
when a backoff ends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gitrepo import Remote, git

from agent.adapters.git_writer import StatusWriter
from agent.engine.writeback import WriteBack
from agent.model.lifecycle import LifecycleState, UpdateLifecycle
from agent.model.revision import Revision
from agent.model.status import AgentState
from agent.sandbox.operator.scenarios import load_scenario

STATUS = "status/east.yaml"
APPLIED = Revision.parse("main@sha1:" + "a" * 40)
STARTED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("git_without_identity")


@pytest.fixture
def live() -> dict[str, Any]:
    found: dict[str, Any] = load_scenario("idle-4.15").cluster_version
    return found


class ManualClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def view(number: int, step: LifecycleState | None = None) -> AgentState:
    update = None if step is None else UpdateLifecycle(step, "4.15.13", STARTED)
    return AgentState(
        cluster="east", last_applied=APPLIED, last_message=f"view {number}", update=update
    )


class RefusingHook:
    """A pre-receive hook that refuses every push while installed, and counts the pushes."""

    def __init__(self, bare: Path, calls: Path) -> None:
        self.hook = bare / "hooks" / "pre-receive"
        self.calls = calls

    def install(self) -> None:
        self.hook.write_text(
            f'#!/bin/sh\ncat >/dev/null\necho push >> "{self.calls}"\n'
            'echo "protected branch" >&2\nexit 1\n'
        )
        self.hook.chmod(0o755)

    def remove(self) -> None:
        self.hook.unlink()

    def pushes(self) -> int:
        return self.calls.read_text().count("push") if self.calls.exists() else 0


@pytest.fixture
def refusing(remote: Remote, tmp_path: Path) -> RefusingHook:
    hook = RefusingHook(remote.bare, tmp_path / "hook-calls")
    hook.install()
    return hook


def writer(remote: Remote, tmp_path: Path, attempts: int) -> StatusWriter:
    return StatusWriter(
        remote.url, "main", tmp_path / "w", max_attempts=attempts, backoff_base=0.001
    )


def retry_at(writeback: WriteBack) -> float:
    assert writeback.retry_at is not None, "not backing off"
    return writeback.retry_at


def status_file(remote: Remote) -> str:
    return git(remote.bare, "show", f"main:{STATUS}")


async def test_after_each_give_up_write_back_waits_a_random_share_of_a_doubling_ceiling(
    remote: Remote, tmp_path: Path, refusing: RefusingHook, live: dict[str, Any]
) -> None:
    clock = ManualClock()
    draws = iter([0.5, 1.0, 0.25, 0.9])
    sink = writer(remote, tmp_path, attempts=2)
    writeback = WriteBack(
        "east", sink, retry_base=10, retry_max=25, clock=clock, draw=lambda: next(draws)
    )
    try:
        await writeback.observe(live, view(1))
        assert (refusing.pushes(), writeback.give_ups) == (2, 1)
        waits = [retry_at(writeback) - clock.now]
        for _ in range(3):
            clock.now = retry_at(writeback) - 0.01
            await writeback.flush()  # the wait has not passed: nothing is pushed
            assert refusing.pushes() == 1 + len(waits)
            clock.now = retry_at(writeback)
            await writeback.flush()  # it has: after a give-up, a round is a single push
            assert refusing.pushes() == 2 + len(waits)
            waits.append(retry_at(writeback) - clock.now)
        # Ceilings 10, 20, 25 (the cap), 25; each wait is its draw's share of the ceiling.
        assert waits == pytest.approx([5.0, 20.0, 6.25, 22.5])
        assert (writeback.give_ups, writeback.failures, writeback.commits) == (4, 4, 0)
        assert refusing.pushes() == 5  # 2 in the first round, then 1 per round

        refusing.remove()  # the remote takes pushes again: the status lands when the wait ends
        clock.now = retry_at(writeback)
        await writeback.flush()
    finally:
        await sink.close()
    assert (writeback.give_ups, writeback.retry_at, writeback.commits) == (0, None, 1)
    assert "lastMessage: view 1" in status_file(remote)


async def test_the_newest_status_replaces_those_that_waited_behind_a_give_up(
    remote: Remote, tmp_path: Path, refusing: RefusingHook, live: dict[str, Any]
) -> None:
    refusing.remove()
    clock = ManualClock()
    sink = writer(remote, tmp_path, attempts=2)
    writeback = WriteBack("east", sink, retry_base=60, clock=clock, draw=lambda: 0.5)
    try:
        writeback.offer(live, view(1))
        await writeback.step()
        landed = git(remote.bare, "rev-parse", "main")
        assert "lastMessage: view 1" in status_file(remote)

        # Three steps of git's target in a row: each would be a commit of its own, but the
        # first one's publish gives up; the two behind it never wait in a queue.
        refusing.install()
        writeback.offer(live, view(2, LifecycleState.REQUESTED))
        writeback.offer(live, view(3, LifecycleState.ACCEPTED))
        writeback.offer(live, view(4, LifecycleState.PROGRESSING))
        await writeback.step()
        assert (refusing.pushes(), writeback.give_ups) == (2, 1)
        # While it backs off, newer views replace the one waiting; nothing is pushed.
        writeback.offer(live, view(5, LifecycleState.PROGRESSING))
        await writeback.step()
        writeback.offer(live, view(6, LifecycleState.PROGRESSING))
        await writeback.step()
        assert refusing.pushes() == 2
        assert writeback.pending is not None
        assert writeback.pending.agent.last_message == "view 6"

        refusing.remove()
        clock.now = retry_at(writeback)
        await writeback.step()
    finally:
        await sink.close()
    assert writeback.pending is None
    assert writeback.commits == 2
    # One commit after view 1's, holding the newest view; no other view ever reached git.
    assert git(remote.bare, "rev-list", "--count", f"{landed}..main") == "1"
    assert "lastMessage: view 6" in status_file(remote)
    history = git(remote.bare, "log", "-p", "main", "--", STATUS)
    for skipped in range(2, 6):
        assert f"view {skipped}\n" not in history
    assert git(remote.bare, "log", "-1", "--format=%s", "main") == (
        "status(east): 4.15.13 progressing"
    )


@pytest.mark.timeout(60)
async def test_the_run_loop_retries_when_the_backoff_ends_not_at_its_next_interval_tick(
    remote: Remote, tmp_path: Path, live: dict[str, Any]
) -> None:
    marker = tmp_path / "refuse-once"
    marker.touch()
    hook = remote.bare / "hooks" / "pre-receive"
    hook.write_text(f'#!/bin/sh\ncat >/dev/null\n[ -e "{marker}" ] && rm "{marker}" && exit 1\n:\n')
    hook.chmod(0o755)
    sink = writer(remote, tmp_path, attempts=1)
    # An hour between status commits: its tick (20 minutes) would never retry in time.
    writeback = WriteBack("east", sink, min_interval=3600, retry_base=0.3, draw=lambda: 1.0)
    task = asyncio.create_task(writeback.run())
    try:
        writeback.offer(live, view(1))
        async with asyncio.timeout(20):
            while writeback.commits == 0:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()
    assert not marker.exists()
    assert (writeback.failures, writeback.give_ups) == (1, 0)
    assert "lastMessage: view 1" in status_file(remote)
