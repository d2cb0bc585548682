"""Wall-clock time for the parts that act on it (maintenance windows, policy expiry), behind
one small interface so tests can move time without sleeping.

`SystemClock` sleeps in steps of at most a minute, so a wall-clock jump (NTP, a resumed VM)
delays a wake-up by a minute at most, and a wake-up lands within the second it was due.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Protocol

_MAX_STEP = 60.0


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        while (remaining := (when - self.now()).total_seconds()) > 0:
            await asyncio.sleep(min(remaining, _MAX_STEP))


class SteppedClock:
    """A clock that stands still until moved (tests, benchmarks): sleepers wake the moment
    it reaches their time, so a window opening is simulated without waiting for it."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self.current

    async def sleep_until(self, when: datetime) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: self.current >= when)

    async def move_to(self, when: datetime) -> None:
        async with self._moved:
            self.current = when
            self._moved.notify_all()
