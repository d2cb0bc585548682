"""Cron expressions: parse errors, matching, and next occurrences across months, years and DST."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.upgrade.cron import CronSchedule

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0 2 * *", "has 4"),
        ("60 * * * *", "field 1 (minute): 60 is out of range 0-59"),
        ("0 24 * * *", "field 2 (hour): 24 is out of range 0-23"),
        ("0 0 0 * *", "field 3 (day of month): 0 is out of range 1-31"),
        ("0 0 * 13 *", "field 4 (month): 13 is out of range 1-12"),
        ("0 0 * * 8", "field 5 (day of week): 8 is out of range 0-7"),
        ("0 0 * * FOO", "field 5 (day of week): 'FOO' is not a number"),
        ("*/0 * * * *", "the step '0' must be a positive number"),
        ("5-1 * * * *", "the range '5-1' runs backwards"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_invalid_expressions_name_the_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CronSchedule.parse(text)


def test_fields_expand_ranges_steps_lists_and_names() -> None:
    schedule = CronSchedule.parse("*/15 8-18/5 1,15 JAN-mar mon-FRI,7")
    assert schedule.minutes == {0, 15, 30, 45}
    assert schedule.hours == {8, 13, 18}
    assert schedule.days == {1, 15}
    assert schedule.months == {1, 2, 3}
    assert schedule.weekdays == {1, 2, 3, 4, 5, 0}
    assert CronSchedule.parse("0 0 * * 5-7").weekdays == {5, 6, 0}
    assert CronSchedule.parse("30/10 * * * *").minutes == {30, 40, 50}
    daily = CronSchedule.parse("@daily")
    assert (daily.minutes, daily.hours, daily.days) == (
        frozenset({0}),
        frozenset({0}),
        frozenset(range(1, 32)),
    )


def test_matches_reads_wall_time() -> None:
    schedule = CronSchedule.parse("0 2 * * SAT")
    assert schedule.matches(datetime(2024, 6, 1, 2, 0, tzinfo=BERLIN))  # a Saturday
    assert not schedule.matches(datetime(2024, 6, 1, 2, 1, tzinfo=BERLIN))
    assert not schedule.matches(datetime(2024, 6, 2, 2, 0, tzinfo=BERLIN))
    assert CronSchedule.parse("0 2 * * 0").matches(datetime(2024, 6, 2, 2, 0))
    assert CronSchedule.parse("0 2 * * 7").matches(datetime(2024, 6, 2, 2, 0))


def test_day_of_month_and_day_of_week_are_a_union_when_both_are_restricted() -> None:
    schedule = CronSchedule.parse("0 0 13 * FRI")
    assert schedule.matches(datetime(2024, 6, 13))  # a Thursday, the 13th
    assert schedule.matches(datetime(2024, 6, 14))  # a Friday
    assert not schedule.matches(datetime(2024, 6, 15))
    assert schedule.next_at_or_after(datetime(2024, 6, 13, 0, 1)) == datetime(2024, 6, 14)


def test_a_star_in_either_day_field_makes_it_an_intersection() -> None:
    only_fridays = CronSchedule.parse("0 0 * * FRI")
    assert not only_fridays.matches(datetime(2024, 6, 13))
    stepped = CronSchedule.parse("0 0 */2 * FRI")  # starts with *: both must match
    assert stepped.matches(datetime(2024, 6, 21))  # Friday the 21st (odd day)
    assert not stepped.matches(datetime(2024, 6, 14))  # Friday the 14th
    assert not stepped.matches(datetime(2024, 6, 15))


def test_next_occurrence_is_inclusive_and_rounds_up_seconds() -> None:
    schedule = CronSchedule.parse("30 * * * *")
    start = datetime(2024, 6, 1, 10, 30, tzinfo=UTC)
    assert schedule.next_at_or_after(start) == start
    later = schedule.next_at_or_after(start + timedelta(seconds=1))
    assert later == datetime(2024, 6, 1, 11, 30, tzinfo=UTC)


def test_next_occurrence_crosses_month_and_year_ends() -> None:
    first = CronSchedule.parse("15 3 1 * *")
    assert first.next_at_or_after(datetime(2024, 1, 31, 4, 0, tzinfo=UTC)) == datetime(
        2024, 2, 1, 3, 15, tzinfo=UTC
    )
    assert first.next_at_or_after(datetime(2024, 12, 1, 3, 16, tzinfo=UTC)) == datetime(
        2025, 1, 1, 3, 15, tzinfo=UTC
    )
    leap = CronSchedule.parse("0 0 29 2 *")
    assert leap.next_at_or_after(datetime(2024, 3, 1)) == datetime(2028, 2, 29)
    leap_2100 = leap.next_at_or_after(datetime(2097, 1, 1))
    assert leap_2100 == datetime(2104, 2, 29)  # 2100 is not a leap year


def test_next_occurrence_keeps_the_time_zone_of_its_argument_or_the_zone_given() -> None:
    schedule = CronSchedule.parse("0 2 * * *")
    result = schedule.next_at_or_after(datetime(2024, 6, 1, 12, 0, tzinfo=UTC), BERLIN)
    assert result == datetime(2024, 6, 2, 2, 0, tzinfo=BERLIN)
    assert result.utcoffset() == timedelta(hours=2)


def test_a_wall_time_skipped_in_spring_does_not_occur() -> None:
    # Europe/Berlin skips 02:00-03:00 on 31 March 2024.
    schedule = CronSchedule.parse("30 2 * * *")
    result = schedule.next_at_or_after(datetime(2024, 3, 31, 0, 0, tzinfo=BERLIN))
    assert result == datetime(2024, 4, 1, 2, 30, tzinfo=BERLIN)
    three = CronSchedule.parse("0 3 * * *").next_at_or_after(datetime(2024, 3, 31, tzinfo=BERLIN))
    assert three.astimezone(UTC) == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)


def test_a_wall_time_repeated_in_autumn_occurs_once() -> None:
    # Europe/Berlin repeats 02:00-03:00 on 27 October 2024.
    schedule = CronSchedule.parse("30 2 * * *")
    first = schedule.next_at_or_after(datetime(2024, 10, 27, 0, 0, tzinfo=BERLIN))
    assert first.astimezone(UTC) == datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    in_second_instance = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 02:00 CET, fold=1
    after = schedule.next_at_or_after(in_second_instance, BERLIN)
    assert after.astimezone(UTC) == datetime(2024, 10, 28, 1, 30, tzinfo=UTC)
    hourly = CronSchedule.parse("0 * * * *")
    # From 02:30 CEST the wall clock reaches 03:00 (CET) one and a half real hours later.
    nxt = hourly.next_at_or_after(datetime(2024, 10, 27, 0, 30, tzinfo=UTC), BERLIN)
    assert nxt.astimezone(UTC) == datetime(2024, 10, 27, 2, 0, tzinfo=UTC)


def test_next_occurrence_is_fast_for_sparse_schedules() -> None:
    schedule = CronSchedule.parse("59 23 31 12 *")
    start = datetime(2024, 1, 1)
    for _ in range(50):
        start = schedule.next_at_or_after(start) + timedelta(minutes=1)
    assert start == datetime(2074, 1, 1)
