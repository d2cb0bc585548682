"""The leader election rules (engine.leadership), as client-go's leaderelection applies
them, with the clock given: acquire, renew, wait, lose, release, and the timing checks."""

from __future__ import annotations

import pytest

from agent.engine.leadership import (
    LeaseRecord,
    Observed,
    Step,
    Timings,
    decide,
    expired,
    observe,
    released,
    still_leading,
    timing_problem,
)

TIMINGS = Timings(lease_duration=15.0, renew_deadline=10.0, retry_period=2.0)
STAMP = "2024-05-01T10:00:00.000000Z"
LATER = "2024-05-01T10:00:05.000000Z"


def held_by(holder: str, *, transitions: int = 3, duration: int = 15) -> LeaseRecord:
    return LeaseRecord(holder, duration, STAMP, STAMP, transitions)


def step(observed: Observed | None, now: float, *, me: str = "b", leading: bool = False) -> Step:
    return decide(observed, me=me, leading=leading, now=now, stamp=LATER, timings=TIMINGS).step


def test_an_absent_lease_is_created_with_us_as_holder_and_no_transitions() -> None:
    decision = decide(None, me="b", leading=False, now=0.0, stamp=LATER, timings=TIMINGS)
    assert decision.step is Step.ACQUIRE
    assert decision.record == LeaseRecord("b", 15, LATER, LATER, 0)


def test_a_live_foreign_lease_is_waited_on_until_its_duration_passed_since_it_changed() -> None:
    seen = observe(None, held_by("a"), now=100.0)
    assert step(seen, now=100.0) is Step.WAIT
    assert step(seen, now=114.9) is Step.WAIT
    assert step(seen, now=115.0) is Step.ACQUIRE


def test_expiry_counts_from_the_local_observation_never_from_the_servers_renew_time() -> None:
    # A renewTime far in the past (another host's clock) does not make a fresh lease expired.
    record = LeaseRecord("a", 15, "2001-01-01T00:00:00.000000Z", "2001-01-01T00:00:00.000000Z", 1)
    seen = observe(None, record, now=50.0)
    assert not expired(seen, 60.0)
    assert step(seen, now=60.0) is Step.WAIT


def test_each_renew_the_holder_makes_restarts_the_observed_time() -> None:
    first = observe(None, held_by("a"), now=0.0)
    same = observe(first, held_by("a"), now=10.0)
    assert same is first  # unchanged record: observed time kept
    renewed = observe(same, LeaseRecord("a", 15, STAMP, LATER, 3), now=12.0)
    assert renewed.since == 12.0
    assert step(renewed, now=20.0) is Step.WAIT
    assert step(renewed, now=27.0) is Step.ACQUIRE


def test_taking_an_expired_lease_counts_a_transition_and_stamps_acquire_and_renew() -> None:
    seen = observe(None, held_by("a", transitions=3), now=0.0)
    decision = decide(seen, me="b", leading=False, now=16.0, stamp=LATER, timings=TIMINGS)
    assert decision.step is Step.ACQUIRE
    assert decision.record == LeaseRecord("b", 15, LATER, LATER, 4)
    assert "expired" in decision.reason


def test_a_released_lease_is_taken_at_once_and_counts_a_transition() -> None:
    seen = observe(None, released(held_by("a", transitions=3), STAMP), now=0.0)
    decision = decide(seen, me="b", leading=False, now=0.0, stamp=LATER, timings=TIMINGS)
    assert decision.step is Step.ACQUIRE
    assert decision.record is not None
    assert (decision.record.holder, decision.record.transitions) == ("b", 4)
    assert decision.reason == "released"


def test_renewing_our_own_lease_keeps_acquire_time_and_transitions() -> None:
    seen = observe(None, held_by("b", transitions=7, duration=30), now=0.0)
    decision = decide(seen, me="b", leading=True, now=5.0, stamp=LATER, timings=TIMINGS)
    assert decision.step is Step.RENEW
    assert decision.record == LeaseRecord("b", 15, STAMP, LATER, 7)


def test_a_restarted_replica_with_the_same_identity_takes_its_lease_back_at_once() -> None:
    seen = observe(None, held_by("b"), now=0.0)
    assert step(seen, now=0.0, leading=False) is Step.RENEW


def test_a_leader_that_sees_another_holder_has_lost_even_if_that_lease_looks_expired() -> None:
    seen = observe(None, held_by("intruder"), now=0.0)
    decision = decide(seen, me="b", leading=True, now=100.0, stamp=LATER, timings=TIMINGS)
    assert decision.step is Step.LOST
    assert decision.record is None
    assert "intruder" in decision.reason


def test_a_leader_whose_lease_was_cleared_takes_it_again_as_client_go_does() -> None:
    seen = observe(None, released(held_by("b"), STAMP), now=0.0)
    assert step(seen, now=0.0, leading=True) is Step.ACQUIRE


def test_release_clears_the_holder_shortens_the_duration_and_keeps_transitions() -> None:
    assert released(held_by("a", transitions=5), LATER) == LeaseRecord("", 1, LATER, LATER, 5)


def test_a_leader_acts_only_within_the_renew_deadline_of_its_last_renew() -> None:
    assert not still_leading(None, 0.0, TIMINGS)
    assert still_leading(100.0, 109.9, TIMINGS)
    assert not still_leading(100.0, 110.0, TIMINGS)


def test_the_lease_duration_in_the_api_is_whole_seconds_rounded_up() -> None:
    assert Timings(2.5, 2.0, 0.5).lease_seconds == 3
    assert Timings(0.2, 0.1, 0.05).lease_seconds == 1


@pytest.mark.parametrize(
    ("timings", "problem"),
    [
        (Timings(15, 10, 2), None),
        (Timings(10, 10, 2), "the renew deadline must be shorter than the lease duration"),
        (Timings(15, 10, 10), "the retry period must be shorter than the renew deadline"),
        (Timings(15, 10, 0), "lease duration, renew deadline and retry period must be positive"),
    ],
)
def test_unsafe_timings_are_named(timings: Timings, problem: str | None) -> None:
    assert timing_problem(timings) == problem
