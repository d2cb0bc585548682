"""Maintenance windows and blackouts: open or not at a given instant, and the next instant
that can change it. Every time is given; nothing sleeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from agent.model.policy import Blackout, MaintenanceWindow, Policy
from agent.upgrade.windows import window_state

SATURDAY_BERLIN = MaintenanceWindow("0 2 * * SAT", timedelta(hours=4), "Europe/Berlin")


def policy(*windows: MaintenanceWindow, blackouts: tuple[Blackout, ...] = ()) -> Policy:
    return Policy(maintenance_windows=windows, blackouts=blackouts)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_no_window_and_no_blackout_means_upgrades_start_at_any_time() -> None:
    state = window_state(Policy(), utc(2026, 12, 5, 12))
    assert state.open is None
    assert state.next_change is None


@pytest.mark.parametrize(
    ("now", "is_open", "next_change"),
    [
        # Friday 21:00 Berlin (CET, UTC+1): closed until Saturday 02:00 CET = 01:00 UTC.
        (utc(2026, 12, 4, 20), False, utc(2026, 12, 5, 1)),
        # The opening instant itself is inside; it closes four hours later.
        (utc(2026, 12, 5, 1), True, utc(2026, 12, 5, 5)),
        (utc(2026, 12, 5, 4, 59), True, utc(2026, 12, 5, 5)),
        # The closing instant is outside; the next opening is a week on.
        (utc(2026, 12, 5, 5), False, utc(2026, 12, 12, 1)),
        # Summer time (CEST, UTC+2): Saturday 02:00 local is 00:00 UTC.
        (utc(2026, 7, 3, 23), False, utc(2026, 7, 4, 0)),
        (utc(2026, 7, 4, 0, 30), True, utc(2026, 7, 4, 4)),
    ],
)
def test_a_weekly_window_in_its_own_time_zone(
    now: datetime, is_open: bool, next_change: datetime
) -> None:
    state = window_state(policy(SATURDAY_BERLIN), now)
    assert state.open is is_open
    assert state.next_change == next_change


def test_a_closed_window_says_when_the_next_one_opens_in_local_time() -> None:
    state = window_state(policy(SATURDAY_BERLIN), utc(2026, 12, 4, 20))
    assert "the next opens 2026-12-05 02:00 CET" in state.note
    inside = window_state(policy(SATURDAY_BERLIN), utc(2026, 12, 5, 2))
    assert "open until 2026-12-05 06:00 CET" in inside.note


def test_overlapping_windows_stay_open_until_the_last_one_closes() -> None:
    early = MaintenanceWindow("0 1 * * *", timedelta(hours=2), "UTC")
    late = MaintenanceWindow("0 2 * * *", timedelta(hours=2), "UTC")
    at_two_thirty = window_state(policy(early, late), utc(2026, 3, 1, 2, 30))
    assert at_two_thirty.open is True
    # The early window closes at 03:00, but the late one keeps it open: the change is 04:00.
    assert at_two_thirty.next_change == utc(2026, 3, 1, 4)
    assert window_state(policy(early, late), utc(2026, 3, 1, 3)).open is True
    assert window_state(policy(early, late), utc(2026, 3, 1, 4)).open is False


def test_a_blackout_closes_an_open_window_and_ends_at_midnight_in_the_window_zone() -> None:
    christmas = Blackout(date(2026, 12, 24), date(2026, 12, 26), "holidays")
    daily = MaintenanceWindow("0 0 * * *", timedelta(hours=24), "Europe/Berlin")
    during = window_state(policy(daily, blackouts=(christmas,)), utc(2026, 12, 25, 12))
    assert during.open is False
    assert "blackout 2026-12-24 to 2026-12-26 (holidays)" in during.note
    # The daily window's edges inside the blackout change nothing; the blackout ends at
    # 2026-12-27 00:00 in Berlin, 23:00 UTC the day before.
    assert during.next_change == utc(2026, 12, 26, 23)
    after = window_state(policy(daily, blackouts=(christmas,)), utc(2026, 12, 26, 23))
    assert after.open is True


def test_a_blackout_without_windows_is_judged_in_utc() -> None:
    freeze = Blackout(date(2026, 12, 24), date(2026, 12, 24))
    assert window_state(policy(blackouts=(freeze,)), utc(2026, 12, 23, 23, 59)).open is True
    inside = window_state(policy(blackouts=(freeze,)), utc(2026, 12, 24, 12))
    assert inside.open is False
    assert inside.next_change == utc(2026, 12, 25)
    assert window_state(policy(blackouts=(freeze,)), utc(2026, 12, 25)).open is True


def test_the_next_opening_skips_windows_that_fall_in_a_blackout() -> None:
    frozen = Blackout(date(2026, 12, 5), date(2026, 12, 5))
    state = window_state(policy(SATURDAY_BERLIN, blackouts=(frozen,)), utc(2026, 12, 4, 20))
    assert state.open is False
    assert "the next opens 2026-12-12 02:00 CET" in state.note


def test_a_spring_forward_gap_never_opens_a_window_that_does_not_exist() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29 (clocks jump from 02:00 to 03:00).
    gap = MaintenanceWindow("30 2 29 3 *", timedelta(minutes=30), "Europe/Berlin")
    state = window_state(policy(gap), utc(2026, 3, 29, 0, 0))
    assert state.open is False
    assert state.next_change is not None
    assert state.next_change.year == 2027
