"""The asyncio supervisor behind `cvsync run`: named tasks for the git source, the live
watch, the resync timer and the HTTP endpoints, feeding one coalescing trigger queue that
runs reconcile cycles one at a time; stops cleanly on request.

I/O orchestration only: decisions stay in the reconciler and the pure packages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from agent.adapters.git import redact
from agent.adapters.http import HttpState, http_application, serve
from agent.clock import Clock, SystemClock
from agent.engine.ports import Cluster
from agent.engine.reconciler import CycleOutcome, Reconciler, Result
from agent.engine.writeback import WriteBack, agent_state
from agent.errors import KubeError
from agent.metrics import Metrics
from agent.model.lifecycle import LifecycleState, UpdateLifecycle
from agent.settings import Settings
from agent.upgrade.lifecycle import stall_deadline

_LOG = logging.getLogger("cvsync")
_QUIET_REASONS = frozenset({"InSync"})


class EventSink(Protocol):
    async def record(
        self, reason: str, message: str, *, warning: bool, involved: dict[str, Any] | None
    ) -> None: ...


class Leadership(Protocol):
    """Leader election as the runtime sees it (adapters/elector.LeaderElector)."""

    elected: asyncio.Event

    @property
    def leading(self) -> bool: ...


SHUTDOWN_GRACE = 4.0
# A failed cycle that a retry can help (a 5xx, a dropped connection, an unreachable remote) is
# tried again after RETRY_BASE seconds, doubling per consecutive failure up to RETRY_CAP: no
# new trigger may come (a failed apply changes nothing the watch would see).
RETRY_BASE = 0.5
RETRY_CAP = 60.0


def retry_delay(failures: int, *, base: float, cap: float) -> float:
    """Seconds before retrying after `failures` consecutive retryable failures (1, 2, ...)."""
    return min(cap, base * 2.0 ** min(max(failures - 1, 0), 30))


class Runtime:
    def __init__(
        self,
        settings: Settings,
        reconciler: Reconciler,
        cluster: Cluster,
        *,
        metrics: Metrics | None = None,
        webhook_secret: bytes | None = None,
        events: EventSink | None = None,
        writeback: WriteBack | None = None,
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
        leadership: Leadership | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self._window_timer: asyncio.Task[None] | None = None
        self._window_edge: datetime | None = None
        self._update_told: UpdateLifecycle | None = None  # the last lifecycle announced
        self._last_logged: tuple[Result, str] | None = None  # the last cycle's result, reason
        self.events = events
        self.writeback = writeback
        self.settings = settings
        self.reconciler = reconciler
        self.cluster = cluster
        self.metrics = metrics or Metrics()
        # A standby serves /healthz, /readyz (ready: healthy and waiting) and /metrics, but
        # runs no cycle and no write-back until elected.
        self.leadership = leadership
        self._standing_by = leadership is not None
        if leadership is not None:
            self.metrics.leader.set_function(lambda: float(leadership.leading))
        self.webhook_secret = webhook_secret
        self.ready = False
        self.http_port: int | None = None
        self.last_outcome: CycleOutcome | None = None
        self.recent_outcomes: deque[CycleOutcome] = deque(maxlen=50)  # newest last
        self._wake = asyncio.Event()
        self._reasons: set[str] = set()
        self._refresh = True
        self._cycles_done = asyncio.Condition()
        self._stopping = False
        self.cycles = 0
        self.started = asyncio.Event()  # set once the HTTP endpoints listen
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._failures = 0  # consecutive retryable failures
        self._retry: asyncio.TimerHandle | None = None
        self._retry_refresh = False  # the pending retry refreshes the source

    def trigger(self, reason: str, *, refresh_source: bool) -> None:
        """Ask for a cycle; requests that arrive while one waits or runs coalesce into one."""
        self._reasons.add(reason)
        self._refresh = self._refresh or refresh_source
        self._wake.set()

    async def run(self, stop: asyncio.Event, extra_tasks: tuple[Awaitable[Any], ...] = ()) -> None:
        http = HttpState(
            self.metrics,
            lambda: self.ready or self._standing_by,
            lambda: self.trigger("webhook", refresh_source=True),
            self.webhook_secret,
            self.settings.http_limits,
        )
        runner, self.http_port = await serve(
            http_application(http),
            self.settings.http_host,
            self.settings.http_port,
            self.settings.http_limits,
        )
        self.started.set()
        _LOG.info("cvsync %s", self._plan_line(), extra=self._plan_fields())
        self.trigger("startup", refresh_source=True)
        worker = asyncio.create_task(self._worker(), name="reconcile")
        helpers = [
            asyncio.create_task(self._watch_live(), name="live-watch"),
            asyncio.create_task(
                self._every(self.settings.resync_interval, "resync"), name="resync"
            ),
            *(asyncio.create_task(_awaited(task)) for task in extra_tasks),
        ]
        if self.writeback is not None:
            helpers.append(
                asyncio.create_task(self._once_elected(self.writeback.run), name="write-back")
            )
            helpers.append(
                asyncio.create_task(
                    self._once_elected(self._resume_progress), name="resume-progress"
                )
            )
        if self.settings.git.repo is not None:
            helpers.append(
                asyncio.create_task(
                    self._every(self.settings.git.interval, "interval"), name="fetch"
                )
            )
        try:
            await stop.wait()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            # Let an in-flight cycle finish (no half-done apply); cancel only past the grace.
            self._stopping = True
            self._wake.set()
            if self._standing_by:
                worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(worker, SHUTDOWN_GRACE)
            self._cancel_retry()
            if self._window_timer is not None:
                self._window_timer.cancel()
            await runner.cleanup()

    def _plan_fields(self) -> dict[str, Any]:
        """What this agent will do, for the one start-up line; no credential in any value."""
        settings = self.settings
        git = settings.git
        source = redact(git.repo, ()) if git.repo else f"git-sync tree {git.local_path}"
        target = None
        if settings.write_back:
            status_repo = settings.status_repo or git.repo
            where = redact(status_repo, ()) if status_repo else "(no repository)"
            target = f"{where} branch {settings.status_branch or git.ref}"
        return {
            "source": source,
            "ref": git.ref if git.repo else None,
            "cluster": settings.cluster,
            "mode": settings.mode,
            "write_back": target,
            "http": f"{settings.http_host}:{self.http_port}",
            "leader_election": settings.leader.enabled,
        }

    def _plan_line(self) -> str:
        fields = self._plan_fields()
        ref = f" ({fields['ref']})" if fields["ref"] else ""
        writes = f"; status to {fields['write_back']}" if fields["write_back"] else ""
        return (
            f"{fields['mode']}s cluster {fields['cluster']} from {fields['source']}{ref}"
            f"{writes}; listening on http://{fields['http']}"
        )

    async def wait_for_cycles(self, count: int, timeout: float) -> CycleOutcome | None:
        """For tests and `demo`: wait until `count` cycles have completed in total."""
        async with self._cycles_done, asyncio.timeout(timeout):
            await self._cycles_done.wait_for(lambda: self.cycles >= count)
        return self.last_outcome

    async def _resume_progress(self) -> None:
        """After a restart or a change of leader, an update without progress is stalled
        stallAfter from when its progress last moved, as the status file in git recorded it,
        not stallAfter from now. Once, after the first cycle has observed git's target."""
        assert self.writeback is not None
        recorded = (await self.writeback.recorded()).progress
        if recorded is None:
            return
        async with self._cycles_done:
            await self._cycles_done.wait_for(lambda: self.cycles >= 1)
        if self.reconciler.resume_progress(recorded):
            _LOG.info(
                "progress of %s last moved at %s, before this agent started",
                recorded.target,
                f"{recorded.progress_at:%Y-%m-%dT%H:%M:%SZ}",
                extra={"reason": "ProgressResumed"},
            )
            self.trigger("resumed", refresh_source=False)

    async def _once_elected(self, body: Callable[[], Awaitable[None]]) -> None:
        if self.leadership is not None:
            await self.leadership.elected.wait()
        await body()

    async def _worker(self) -> None:
        if self.leadership is not None:
            await self.leadership.elected.wait()
            self._standing_by = False
            self.trigger("elected", refresh_source=True)
        while True:
            await self._wake.wait()
            if self._stopping:
                return
            if self.leadership is not None and not self.leadership.leading:
                return  # leadership lost: no cycle may start; the agent is exiting
            self._wake.clear()
            reasons, self._reasons = self._reasons, set()
            refresh, self._refresh = self._refresh, False
            outcome = await self.reconciler.cycle(refresh_source=refresh)
            self._record(outcome, reasons)
            self._schedule_retry(outcome, refresh)
            self._schedule_edge(outcome)
            # A watch event may have moved git's target on while the cycle ran: the newest
            # observation is what is written and told, never the cycle's older one.
            self._offer(outcome)
            await self._announce(outcome)
            await self._follow_update(self.reconciler.lifecycle)
            async with self._cycles_done:
                self.cycles += 1
                self._cycles_done.notify_all()

    def _record(self, outcome: CycleOutcome, reasons: set[str]) -> None:
        self.last_outcome = outcome
        self.recent_outcomes.append(outcome)
        self.ready = self.ready or outcome.result is not Result.FAILED
        metrics = self.metrics
        metrics.cycles.labels(result=outcome.result.value).inc()
        metrics.cycle_seconds.observe(outcome.seconds)
        if outcome.fetch_seconds is not None:
            metrics.fetch_seconds.observe(outcome.fetch_seconds)
        metrics.drifted_fields.set(len(outcome.drift.items))
        if outcome.result is Result.APPLIED:
            metrics.applies.inc()
            metrics.last_applied.info({"revision": str(outcome.revision)})
        if outcome.reason == "ApplyConflict":
            metrics.conflicts.inc()
        held = outcome.upgrade.decision.action if outcome.upgrade else "none"
        for state, action in (("blocked", "block"), ("waiting", "wait")):
            metrics.upgrade_held.labels(state=state).set(1 if held == action else 0)
        metrics.watch_restarts.set(getattr(self.cluster, "watch_restarts", 0))
        level = (
            logging.WARNING if outcome.result in (Result.STALLED, Result.FAILED) else logging.INFO
        )
        previous = self._last_logged
        self._last_logged = (outcome.result, outcome.reason)
        if outcome.result is Result.IN_SYNC and previous == self._last_logged:
            level = logging.DEBUG  # an idle cycle like the one before says nothing new
        _LOG.log(
            level,
            "cycle %s: %s",
            outcome.result.value,
            outcome.message,
            extra={
                "result": outcome.result.value,
                "reason": outcome.reason,
                "revision": str(outcome.revision) if outcome.revision else None,
                "attempted": str(outcome.attempted) if outcome.attempted else None,
                "drift": list(outcome.drift.paths),
                "findings": [str(f.location) + f" {f.rule}" for f in outcome.findings],
                "triggers": sorted(reasons),
                "update": outcome.update.describe() if outcome.update else None,
                "seconds": round(outcome.seconds, 4),
            },
        )

    async def _observe_live(self, live: dict[str, Any] | None) -> None:
        """A watch event moves git's target between cycles: tell it, and hand the view to
        write-back, so that no step of the lifecycle goes unrecorded."""
        told = self._update_told
        lifecycle = self.reconciler.observe_live(live)
        if lifecycle is None or lifecycle.same_answer(told) or self.last_outcome is None:
            return
        self._offer(self.last_outcome)  # before any await: the next event may move it on
        await self._follow_update(lifecycle)

    def _offer(self, outcome: CycleOutcome) -> None:
        """Hand write-back the newest view: the newest object observed and where git's target
        stands on it. Called with no await since the observation, so no state is skipped."""
        if self.writeback is None:
            return
        live = self.reconciler.newest_live or self.reconciler.last_live
        current = replace(outcome, update=self.reconciler.lifecycle)
        self.writeback.offer(
            live, agent_state(self.settings.cluster, current, self.reconciler.last_applied)
        )

    async def _follow_update(self, lifecycle: UpdateLifecycle | None) -> None:
        """A log line, an Event and the metric for each move of git's target to another state;
        refused, stalled and failing are Warnings."""
        if lifecycle is None:
            return
        for state in LifecycleState:
            self.metrics.update_state.labels(state=state.value).set(
                1 if state is lifecycle.state else 0
            )
        told, self._update_told = self._update_told, lifecycle
        if lifecycle.same_answer(told):
            return
        if told is None and lifecycle.state in (LifecycleState.IDLE, LifecycleState.COMPLETED):
            return  # found so at start: nothing moved
        _LOG.log(
            logging.WARNING if lifecycle.trouble else logging.INFO,
            "update %s",
            lifecycle.describe(),
            extra={"state": lifecycle.state.value, "target": lifecycle.target},
        )
        if self.events is not None:
            await self.events.record(
                lifecycle.event_reason,
                lifecycle.describe(),
                warning=lifecycle.trouble,
                involved=self.reconciler.last_live,
            )

    async def _announce(self, outcome: CycleOutcome) -> None:
        """An Event for everything a person should see; repeats are deduplicated."""
        if self.events is None or outcome.reason in _QUIET_REASONS:
            return
        if outcome.update is not None and outcome.reason == outcome.update.event_reason:
            return  # the update's own Event says it
        warning = outcome.result in (Result.STALLED, Result.FAILED)
        await self.events.record(
            outcome.reason, outcome.message, warning=warning, involved=self.reconciler.last_live
        )
        upgrade = outcome.upgrade
        if upgrade is not None and upgrade.pending and upgrade.reason != outcome.reason:
            # The rest of the spec applied; the held target deserves an Event of its own.
            await self.events.record(
                upgrade.reason,
                f"{upgrade.target}: {upgrade.summary()}",
                warning=upgrade.decision.action == "block",
                involved=self.reconciler.last_live,
            )

    def _schedule_retry(self, outcome: CycleOutcome, refresh: bool) -> None:
        """Retry a retryable failure, as the failed cycle ran (refreshing the source or not);
        any other outcome ends the series, except one that did not refresh the source while
        a failed refresh waits for its retry. A trigger that comes first runs it sooner."""
        if outcome.result is Result.FAILED and outcome.retryable:
            refresh = refresh or self._retry_refresh
            self._cancel_retry()
            self._failures += 1
            delay = retry_delay(self._failures, base=self.retry_base, cap=self.retry_cap)
            self._retry_refresh = refresh
            self._retry = asyncio.get_running_loop().call_later(
                delay, lambda: self.trigger("retry", refresh_source=refresh)
            )
        elif refresh or not self._retry_refresh:
            self._cancel_retry()
            self._failures = 0

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._retry_refresh = False

    def _schedule_edge(self, outcome: CycleOutcome) -> None:
        """Look again the moment something may change without the cluster or git saying so:
        a window opening or a blackout ending for a waiting target, or an update in progress
        reaching its stallAfter without progress. Not at the next resync."""
        edges = []
        upgrade = outcome.upgrade
        if upgrade is not None and upgrade.decision.action == "wait":
            edges.append(upgrade.window.next_change)
        desired = self.reconciler.last_good
        if outcome.update is not None and desired is not None:
            edges.append(stall_deadline(outcome.update, desired.policy.stall_after))
        edge = min((e for e in edges if e is not None), default=None)
        if edge == self._window_edge:
            return
        if self._window_timer is not None:
            self._window_timer.cancel()
            self._window_timer = None
        self._window_edge = edge
        if edge is not None:
            self._window_timer = asyncio.create_task(self._trigger_at(edge), name="edge")

    async def _trigger_at(self, edge: datetime) -> None:
        await self.clock.sleep_until(edge)
        self._window_edge = None
        _LOG.info("a timed edge was reached: re-evaluating", extra={"edge": str(edge)})
        self.trigger("edge", refresh_source=False)

    async def _watch_live(self) -> None:
        """Follow the live object. The watch heals itself from what a retry can fix (a 401
        too, re-reading rotated credentials); what it cannot (403) is logged and the watch is
        tried again later, never given up."""
        failures = 0
        while True:
            try:
                # Closed when this task ends, so the cluster stops answering cycles from it.
                async with contextlib.aclosing(self.cluster.watch()) as changes:
                    async for live in changes:
                        failures = 0
                        await self._observe_live(live)
                        self.trigger("live", refresh_source=False)
            except KubeError as exc:
                failures += 1
                _LOG.warning(
                    "the ClusterVersion watch stopped: %s",
                    exc.message,
                    extra={"reason": exc.reason},
                )
                await asyncio.sleep(retry_delay(failures, base=1.0, cap=self.retry_cap))

    async def _every(self, seconds: float, reason: str) -> None:
        refresh = reason == "interval" or self.settings.git.repo is None
        while True:
            await asyncio.sleep(seconds * random.uniform(0.9, 1.1))
            self.trigger(reason, refresh_source=refresh)


async def _awaited(awaitable: Awaitable[Any]) -> None:
    await awaitable


def on_loop(loop: asyncio.AbstractEventLoop, call: Callable[[], None]) -> Callable[[], None]:
    """Wrap `call` so a watchdog thread can invoke it safely on the event loop."""

    def invoke() -> None:
        loop.call_soon_threadsafe(call)

    return invoke
