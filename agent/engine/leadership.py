"""Leader election decisions over a coordination.k8s.io/v1 Lease, as client-go's leaderelection
makes them: acquire an absent, released or expired lease, renew our own, wait on a live one.

Pure: the lease record as read, our identity and the times come in; a decision comes out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Timings:
    """client-go's defaults: a leader renews every retry_period and gives up when it could not
    renew for renew_deadline, well before others may take over after lease_duration."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @property
    def lease_seconds(self) -> int:
        """The Lease's leaseDurationSeconds (an integer in the API), never shorter than asked."""
        return max(1, math.ceil(self.lease_duration))


def timing_problem(timings: Timings) -> str | None:
    """Why these timings are unsafe, or None: the leader must give up before others take over."""
    if min(timings.lease_duration, timings.renew_deadline, timings.retry_period) <= 0:
        return "lease duration, renew deadline and retry period must be positive"
    if timings.renew_deadline >= timings.lease_duration:
        return "the renew deadline must be shorter than the lease duration"
    if timings.retry_period >= timings.renew_deadline:
        return "the retry period must be shorter than the renew deadline"
    return None


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The Lease spec fields leader election uses; an empty holder means released."""

    holder: str = ""
    lease_duration_seconds: int = 15
    acquire_time: str | None = None  # MicroTime strings, as the API server stores them
    renew_time: str | None = None
    transitions: int = 0


@dataclass(frozen=True, slots=True)
class Observed:
    """A record and the local clock reading when it last changed. Expiry is judged from this
    observed time, never from the server's timestamps: clocks of different hosts disagree."""

    record: LeaseRecord
    since: float


class Step(StrEnum):
    ACQUIRE = "acquire"  # write `record` to take the lease (create it when absent)
    RENEW = "renew"  # write `record` to extend our own lease
    WAIT = "wait"  # someone else holds a live lease
    LOST = "lost"  # we were leading and someone else holds it now


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    record: LeaseRecord | None  # what to write, for ACQUIRE and RENEW
    reason: str


def observe(previous: Observed | None, record: LeaseRecord, now: float) -> Observed:
    """Keep the observed time while the record stays the same; restart it when it changed."""
    if previous is not None and previous.record == record:
        return previous
    return Observed(record, now)


def expired(observed: Observed, now: float) -> bool:
    return observed.since + observed.record.lease_duration_seconds <= now


def decide(
    observed: Observed | None, *, me: str, leading: bool, now: float, stamp: str, timings: Timings
) -> Decision:
    """What to do with the lease as last read (`None`: it does not exist); `stamp` is the wall
    time to write as acquireTime/renewTime."""
    mine = LeaseRecord(me, timings.lease_seconds, stamp, stamp, 0)
    if observed is None:
        return Decision(Step.ACQUIRE, mine, "the lease does not exist")
    record = observed.record
    if record.holder == me:
        # Ours (a restarted process keeps its pod name): keep acquireTime and transitions.
        renewed = replace(
            record,
            lease_duration_seconds=timings.lease_seconds,
            acquire_time=record.acquire_time or stamp,
            renew_time=stamp,
        )
        return Decision(Step.RENEW, renewed, "held by us")
    if leading and record.holder:
        return Decision(Step.LOST, None, f'the lease is held by "{record.holder}" now')
    if record.holder and not expired(observed, now):
        return Decision(Step.WAIT, None, f'held by "{record.holder}"')
    why = "released" if not record.holder else f'expired (held by "{record.holder}")'
    return Decision(Step.ACQUIRE, replace(mine, transitions=record.transitions + 1), why)


def released(record: LeaseRecord, stamp: str) -> LeaseRecord:
    """What a leader writes on a clean shutdown (client-go's ReleaseOnCancel): no holder, a
    one-second duration, transitions unchanged; a standby takes over on its next try."""
    return replace(
        record, holder="", lease_duration_seconds=1, acquire_time=stamp, renew_time=stamp
    )


def still_leading(renewed_at: float | None, now: float, timings: Timings) -> bool:
    """A leader acts only within renew_deadline of the start of its last successful renew:
    past it, a standby may soon see the lease expire, so it must stop before then."""
    return renewed_at is not None and now - renewed_at < timings.renew_deadline
