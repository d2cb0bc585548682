"""How a simulated update advances: a schedule of ticks from the Partial entry's startedTime,
and the Progressing/Failing wording the cluster-version operator uses at each stage.

Pure: time arrives as a parameter; all arithmetic is in whole microseconds so that a status
asked for at exactly the instant next_change named is the changed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# One tick is two simulated minutes; an update takes an hour of them.
TICK_SIMULATED_SECONDS = 120
UPDATE_TICKS = 30
# With slow worker pools, progress holds at this tick while machine-config waits on the pools.
POOLS_AT = 26
POOLS_WAIT = 30
# A failing update stalls at this tick; the CVO gives an operator 40 minutes before Failing.
STALL_AT = 12
FAIL_AFTER = 20

RUNNING = "running"
WAITING_POOLS = "waiting-pools"
WAITING_DEGRADED = "waiting-degraded"
FAILED = "failed"
COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Clock:
    """Maps real time to ticks since the update started; time_scale simulated seconds per second."""

    start: datetime
    tick: timedelta

    @classmethod
    def for_update(cls, start: datetime, time_scale: float) -> Clock:
        micros = max(1, round(TICK_SIMULATED_SECONDS * 1_000_000 / time_scale))
        return cls(start, timedelta(microseconds=micros))

    def tick_at(self, moment: datetime) -> int:
        return max(0, (moment - self.start) // self.tick)

    def time_at(self, tick: int) -> datetime:
        return self.start + self.tick * tick


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The schedule of one update to one version."""

    total: int
    slow_pools: bool = False
    failing: bool = False

    @property
    def last_tick(self) -> int:
        """The tick after which this update never changes again (completion or failure)."""
        if self.failing:
            return STALL_AT + FAIL_AFTER
        return UPDATE_TICKS + (POOLS_WAIT if self.slow_pools else 0)

    def _done(self, ticks: int) -> int:
        return self.total * min(ticks, UPDATE_TICKS) // UPDATE_TICKS

    def at(self, tick: int) -> Progress:
        if self.failing and tick >= STALL_AT:
            phase = FAILED if tick >= STALL_AT + FAIL_AFTER else WAITING_DEGRADED
            return Progress(phase, self._done(STALL_AT), self.total)
        if tick >= self.last_tick:
            return Progress(COMPLETED, self.total, self.total)
        if self.slow_pools and tick >= POOLS_AT:
            if tick < POOLS_AT + POOLS_WAIT:
                return Progress(WAITING_POOLS, self._done(POOLS_AT), self.total)
            return Progress(RUNNING, self._done(tick - POOLS_WAIT), self.total)
        return Progress(RUNNING, self._done(tick), self.total)

    def next_change(self, tick: int) -> int | None:
        """The first tick after `tick` at which the progress differs, if any."""
        now = self.at(tick)
        return next((k for k in range(tick + 1, self.last_tick + 1) if self.at(k) != now), None)


def _counts(version: str, progress: Progress) -> str:
    percent = progress.done * 100 // progress.total
    return (
        f"Working towards {version}: {progress.done} of {progress.total} done ({percent}% complete)"
    )


def progressing(version: str, progress: Progress, operator: str) -> tuple[str, str]:
    """(reason, message) of Progressing=True while the update is under way."""
    if progress.phase == FAILED:
        return (
            "ClusterOperatorDegraded",
            f"Unable to apply {version}: wait has exceeded 40 minutes for these operators: "
            f"{operator}",
        )
    if progress.phase == WAITING_DEGRADED:
        return (
            "ClusterOperatorDegraded",
            f"{_counts(version, progress)}, waiting up to 40 minutes on {operator}",
        )
    if progress.phase == WAITING_POOLS:
        return "ClusterOperatorUpdating", f"{_counts(version, progress)}, waiting on machine-config"
    if progress.done == 0:
        return "", f"Working towards {version}"
    return "", _counts(version, progress)


def failing(operator: str) -> tuple[str, str]:
    """(reason, message) of Failing=True once the wait is over."""
    return "ClusterOperatorDegraded", f"Cluster operator {operator} is degraded"
