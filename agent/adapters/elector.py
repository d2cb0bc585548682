"""Leader election for `cvsync run --leader-elect`: the elector loop that acquires and
renews the Lease, and guards that refuse applies and pushes once this replica is not the
leader, so that replicas > 1 never act at the same time.

I/O orchestration over adapters/lease.LeaseStore; decisions are engine.leadership's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

from agent.adapters.lease import LeaseStore, LostRaceError, StoredLease, micro_time
from agent.engine.leadership import (
    Observed,
    Step,
    Timings,
    decide,
    observe,
    released,
    still_leading,
)
from agent.engine.ports import Cluster, JsonObject
from agent.errors import CvsyncError, KubeError, SourceError
from agent.model.clusterversion_api import ServedSchema

_LOG = logging.getLogger("cvsync.leader")
RELEASE_TIMEOUT = 3.0  # a clean shutdown must not hang on an unreachable API server
JITTER = 1.2  # candidates retry after retry_period * [1, 1.2), as client-go does


class LeadershipLostError(CvsyncError):
    reason = "LeadershipLost"


class LeaderElector:
    """Campaign until elected (`elected` is set), then renew every retry_period; on losing
    the lease, `on_lost` is called once and `lost_reason` says why. Run it as a task."""

    def __init__(
        self,
        leases: LeaseStore,
        identity: str,
        timings: Timings,
        *,
        on_lost: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.leases = leases
        self.identity = identity
        self.timings = timings
        self.elected = asyncio.Event()
        self.lost_reason: str | None = None
        self._on_lost = on_lost
        self._clock = clock
        self._renewed_at: float | None = None  # when the last successful renew started
        self._observed: Observed | None = None
        self._current: StoredLease | None = None
        self._released = False
        self._last_news = ""  # the last wait or error logged, so each is logged once

    @property
    def lease(self) -> str:
        return f"{self.leases.namespace}/{self.leases.name}"

    @property
    def leading(self) -> bool:
        """True only while a renew succeeded within the renew deadline, even when this event
        loop was too busy to notice the deadline pass."""
        if self.lost_reason is not None or self._released:
            return False
        return still_leading(self._renewed_at, self._clock(), self.timings)

    async def run(self) -> None:
        try:
            while not await self._try(leading=False):
                await asyncio.sleep(self.timings.retry_period * random.uniform(1.0, JITTER))
            _LOG.info(
                "became the leader: lease %s held by %s",
                self.lease,
                self.identity,
                extra={"lease": self.lease, "identity": self.identity},
            )
            self.elected.set()
            await self._renew_until_lost()
        except Exception as exc:  # a broken elector must never leave this replica acting
            self._lose(f"the elector failed: {type(exc).__name__}: {exc}")

    async def _renew_until_lost(self) -> None:
        timings = self.timings
        while True:
            await asyncio.sleep(timings.retry_period)
            assert self._renewed_at is not None
            deadline = self._renewed_at + timings.renew_deadline
            while True:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    self._lose(f"no successful renew for {timings.renew_deadline:g} s")
                    return
                try:
                    async with asyncio.timeout(remaining):  # cancellable, unlike wait_for
                        renewed = await self._try(leading=True)
                except TimeoutError:
                    renewed = False
                if self.lost_reason is not None:
                    return
                if renewed:
                    break
                await asyncio.sleep(min(timings.retry_period, max(0.0, deadline - self._clock())))

    async def _try(self, *, leading: bool) -> bool:
        """One read and, when the rules say so, one write; True when the lease is ours."""
        started = self._clock()
        try:
            current = await self.leases.get()
            now = self._clock()
            self._current = current
            self._observed = (
                None if current is None else observe(self._observed, current.record, now)
            )
            decision = decide(
                self._observed,
                me=self.identity,
                leading=leading,
                now=now,
                stamp=micro_time(),
                timings=self.timings,
            )
            if decision.step is Step.LOST:
                self._lose(decision.reason)
                return False
            if decision.step is Step.WAIT or decision.record is None:
                self._news(logging.INFO, f"standing by: lease {self.lease} {decision.reason}")
                return False
            if current is None:
                written = await self.leases.create(decision.record)
            else:
                written = await self.leases.update(current, decision.record)
        except LostRaceError:
            return False  # the next read shows who won
        except KubeError as exc:
            self._news(logging.WARNING, f"lease {self.lease}: {exc.message}")
            return False
        self._current = written
        self._observed = Observed(written.record, self._clock())
        self._renewed_at = started
        self._last_news = ""
        return True

    def _news(self, level: int, message: str) -> None:
        if message != self._last_news:
            self._last_news = message
            _LOG.log(level, message, extra={"lease": self.lease, "identity": self.identity})

    def _lose(self, reason: str) -> None:
        if self.lost_reason is not None:
            return
        self.lost_reason = reason
        _LOG.error(
            "leadership lost: %s; %s stops acting and exits",
            reason,
            self.identity,
            extra={"lease": self.lease, "identity": self.identity, "reason": "LeadershipLost"},
        )
        self._on_lost()

    async def release(self) -> bool:
        """Give the lease up on a clean shutdown so a standby takes over at once; call it
        after the elector task was cancelled and the runtime stopped."""
        current = self._current
        if not self.leading or current is None or current.record.holder != self.identity:
            return False
        self._released = True
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await self.leases.update(current, released(current.record, micro_time()))
        except (KubeError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, KubeError) else "timed out"
            _LOG.warning("lease %s not released: %s", self.lease, message)
            return False
        _LOG.info("released lease %s (%s)", self.lease, self.identity, extra={"lease": self.lease})
        return True


class NotLeaderError(KubeError):
    reason = "NotLeader"


class LeaderOnlyCluster:
    """The Cluster port with applies refused unless this replica leads: a cycle already in
    flight when leadership is lost cannot start an apply."""

    def __init__(self, cluster: Cluster, elector: LeaderElector) -> None:
        self._cluster = cluster
        self._elector = elector

    async def live(self) -> JsonObject | None:
        return await self._cluster.live()

    async def get(self) -> JsonObject | None:
        return await self._cluster.get()

    async def answered(self, live: JsonObject, within: float) -> JsonObject:
        return await self._cluster.answered(live, within)

    async def apply(self, body: JsonObject, *, force: bool, dry_run: bool) -> JsonObject:
        if not self._elector.leading:
            raise NotLeaderError(
                f"not applied: {self._elector.identity} is not the leader", retryable=False
            )
        return await self._cluster.apply(body, force=force, dry_run=dry_run)

    async def served_schema(self) -> ServedSchema:
        return await self._cluster.served_schema()

    def watch(self) -> AsyncGenerator[JsonObject | None, None]:
        return self._cluster.watch()

    async def close(self) -> None:
        await self._cluster.close()


class LeaderOnlySink:
    """A StatusSink that pushes only while this replica leads; write-back keeps the summary
    pending otherwise."""

    def __init__(self, sink: Any, elector: LeaderElector) -> None:
        self._sink = sink
        self._elector = elector

    async def publish(self, files: Mapping[str, bytes], message: str) -> Any:
        if not self._elector.leading:
            raise SourceError(f"not pushed: {self._elector.identity} is not the leader")
        return await self._sink.publish(files, message)

    async def read(self, path: str) -> bytes | None:
        data: bytes | None = await self._sink.read(path)  # reading needs no leadership
        return data
