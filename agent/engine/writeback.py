"""Write-back: turn each cycle's view of the cluster into status files and commit them to
git only when their meaning changed, at most once per interval, except that an update
starting, completing or failing is committed at once; after a publish gave up, wait with
jittered backoff, and let the newest status take the place of any that waited.

Orchestration over a StatusSink port (adapters/git_writer.StatusWriter); decisions are the
pure summarize stage's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from agent.adapters.git_writer import status_commit_message
from agent.engine.reconciler import CycleOutcome
from agent.errors import SourceError
from agent.model.status import AgentState, FieldConflict, StatusSummary
from agent.report.status_markdown import render_drift_report_markdown, render_markdown
from agent.report.status_recorded import RecordedStatus, recorded_in, status_path
from agent.report.status_render import render_yaml
from agent.report.summarize import drift_entries, meaning, summarize, transition

_LOG = logging.getLogger("cvsync.writeback")


class StatusSink(Protocol):
    async def publish(self, files: Mapping[str, bytes], message: str) -> Any: ...

    async def read(self, path: str) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class Published:
    meaning: str
    summary: StatusSummary
    at: float


def agent_state(cluster: str, outcome: CycleOutcome, last_applied: Any) -> AgentState:
    return AgentState(
        cluster=cluster,
        last_attempted=outcome.attempted,
        last_applied=last_applied,
        last_result=outcome.result.value,
        last_reason=outcome.reason,
        last_message=outcome.message,
        last_cycle_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        last_cycle_seconds=round(outcome.seconds, 3),
        conflicts=tuple(FieldConflict(field, owner) for field, owner in outcome.conflicts),
        drift=drift_entries(outcome.drift.items, outcome.corrected),
        upgrade=outcome.upgrade if outcome.upgrade and outcome.upgrade.pending else None,
        update=outcome.update,
    )


def status_files(cluster: str, summary: StatusSummary) -> dict[str, bytes]:
    return {
        status_path(cluster): render_yaml(summary).encode(),
        f"status/{cluster}.md": render_markdown(summary).encode(),
        f"status/{cluster}-drift.md": render_drift_report_markdown(summary).encode(),
    }


def commit_subject_state(summary: StatusSummary) -> tuple[str, str]:
    """(version, state) for `status(<cluster>): <version> <state>`."""
    update = summary.update
    if update.updating and summary.desired is not None:
        version = summary.desired.version or summary.desired.image
    else:
        version = summary.current.version if summary.current else "unknown"
    state = update.state.value
    lifecycle = summary.lifecycle
    if lifecycle is not None and lifecycle.target:
        version, state = lifecycle.target, lifecycle.state.value
    if update.updating and update.percent is not None:
        state = f"{state} {update.percent}%"
    return version or "unknown", state


def _lifecycle_key(state: AgentState) -> tuple[str, str] | None:
    found = state.update
    return None if found is None else (found.state.value, found.target)


class WriteBack:
    """Publishes one cluster's status through `sink`. A publish that gives up (every push of
    its round rejected, or the remote unreachable) is tried again after a wait drawn from
    [0, min(retry_max, retry_base * 2 ** (give-ups in a row - 1))] ("full jitter": writers
    that failed together spread out); meanwhile at most one status waits, the newest.
    `draw` gives numbers in [0, 1), `clock` seconds (tests pass their own)."""

    def __init__(
        self,
        cluster: str,
        sink: StatusSink,
        *,
        min_interval: float = 30.0,
        retry_base: float = 10.0,
        retry_max: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self.cluster = cluster
        self.sink = sink
        self.min_interval = min_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.clock = clock
        self.draw = draw
        self.published: Published | None = None
        self.pending: StatusSummary | None = None
        self.failures = 0  # publishes that gave up, in all
        self.give_ups = 0  # publishes that gave up since the last one that landed
        self.retry_at: float | None = None  # no publish before this clock() reading
        self.commits = 0
        self._latest: tuple[Mapping[str, Any] | None, AgentState] | None = None
        # Views that end a lifecycle state of git's target: each is committed, never
        # replaced by a newer view before git has it.
        self._steps: list[tuple[Mapping[str, Any] | None, AgentState]] = []
        self._wake = asyncio.Event()
        self._recorded: RecordedStatus | None = None  # the status file in git, read once
        self._reading = asyncio.Lock()
        self._refused: str | None = None  # the last refusal no retry changes, logged once

    @property
    def backing_off(self) -> bool:
        """A publish gave up and its wait has not passed: nothing is pushed meanwhile."""
        return self.retry_at is not None and self.clock() < self.retry_at

    def offer(self, live: Mapping[str, Any] | None, state: AgentState) -> None:
        """Hand over a cycle's view without waiting for git: the newest view wins, except
        that a view is kept when the next one moves git's target to another state (not while
        backing off: then only the newest counts)."""
        latest = self._latest
        if (
            latest is not None
            and not self.backing_off
            and _lifecycle_key(latest[1]) != _lifecycle_key(state)
        ):
            self._steps.append(latest)
        self._latest = (live, state)
        self._wake.set()

    async def run(self) -> None:
        """Publish offered views one at a time; flush waiting ones when they come due."""
        while True:
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout is cancellable, unlike wait_for.
                async with asyncio.timeout(self._until_next()):
                    await self._wake.wait()
            self._wake.clear()
            await self.step()

    async def step(self) -> None:
        """Steps kept while earlier ones were published go first, then the newest view, then
        what waited. A give-up drops the steps not yet published: the newest view replaces
        them, so that a cluster never has more than one status waiting."""
        while self._steps and not self.backing_off:
            await self.observe(*self._steps.pop(0))
        if self.backing_off:
            self._steps.clear()
        if self._latest is not None:
            latest, self._latest = self._latest, None
            await self.observe(*latest)
        await self.flush()

    def _until_next(self) -> float:
        """Seconds to sleep unless woken: until a waiting status comes due or its backoff
        ends, and at least every third of the interval; the floor keeps 0 from spinning."""
        wait = self.min_interval / 3
        if self.pending is not None and self.retry_at is not None:
            wait = min(wait, self.retry_at - self.clock())
        elif self.pending is not None and self.published is not None:
            wait = min(wait, self.published.at + self.min_interval - self.clock())
        return max(wait, 0.05)

    async def observe(self, live: Mapping[str, Any] | None, state: AgentState) -> None:
        """Consider the status after a cycle; publish now, later, or not at all."""
        if live is None:
            return
        if state.last_applied is None:
            state = replace(state, last_applied=(await self.recorded()).last_applied)
        summary = summarize(live, state)
        key = meaning(summary)
        if self.published is not None and key == self.published.meaning:
            self.pending = None
            return
        if self.backing_off:
            self.pending = summary  # replaces whatever waited: the newest status wins
            return
        moved = transition(self.published.summary if self.published else None, summary)
        due = self.published is None or self.clock() - self.published.at >= self.min_interval
        if moved is not None or due:
            await self._publish(summary, key)
        else:
            self.pending = summary

    async def recorded(self) -> RecordedStatus:
        """What the status file already in git says, read once: after a restart the agent has
        applied nothing yet, and its own record of the last apply must not turn into null;
        how long git's target has gone without progress counts from before the restart."""
        async with self._reading:
            if self._recorded is None:
                try:
                    data = await self.sink.read(status_path(self.cluster))
                except SourceError as exc:
                    _LOG.warning(
                        "status file not read: %s", exc.message, extra={"reason": exc.reason}
                    )
                    data = None
                self._recorded = recorded_in(data)
        return self._recorded

    async def flush(self) -> None:
        """Publish what waited: for the interval, or (at once) for the backoff after a give-up."""
        if self.pending is None or self.backing_off:
            return
        if (
            self.give_ups
            or self.published is None
            or self.clock() - self.published.at >= self.min_interval
        ):
            summary, self.pending = self.pending, None
            await self._publish(summary, meaning(summary))

    async def _publish(self, summary: StatusSummary, key: str) -> None:
        version, state = commit_subject_state(summary)
        source = str(summary.agent.last_applied or summary.agent.last_attempted or "unknown")
        message = status_commit_message(
            self.cluster, version, state, summary.cluster_id or "unknown", source
        )
        try:
            result = await self.sink.publish(status_files(self.cluster, summary), message)
        except SourceError as exc:
            self.failures += 1
            self.give_ups += 1
            self.pending = summary
            doublings = min(self.give_ups - 1, 64)  # 2.0 ** 1024 would overflow
            ceiling = min(self.retry_max, self.retry_base * 2.0**doublings)
            wait = self.draw() * ceiling
            self.retry_at = self.clock() + wait
            if exc.retryable:
                _LOG.warning(
                    "status not pushed: %s; trying again in %.1f s",
                    exc.message,
                    wait,
                    extra={"reason": exc.reason, "give_ups": self.give_ups},
                )
            elif exc.message != self._refused:  # the user must act: said once, not per retry
                _LOG.error("status not pushed: %s", exc.message, extra={"reason": exc.reason})
            self._refused = None if exc.retryable else exc.message
            return
        self._refused = None
        self.give_ups, self.retry_at = 0, None
        self.published = Published(key, summary, self.clock())
        if getattr(result, "committed", True):
            self.commits += 1
