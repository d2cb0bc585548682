"""Standard 5-field cron expressions: parse, match a time, find the next occurrence.

Pure. Fields are minute, hour, day of month, month and day of week; each is `*`, a
number, a range `a-b`, a step `*/n`, `a-b/n` or `a/n` (from a to the field's maximum),
or a comma-separated list of those. Day of week runs 0-7 with 0 and 7 both Sunday;
months and days of week also take names (JAN, MON), case-insensitive.

As in Vixie cron, when both day of month and day of week are restricted (neither starts
with `*`) a day matches when either matches; otherwise both must.

Times are read as local wall time in the time zone of the datetime given (or the zone
passed in). Across DST changes a wall time that does not exist (the hour skipped in
spring) never occurs, and one that occurs twice (the hour repeated in autumn) occurs
once, at its first instance.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {name.upper(): (i + 1) % 7 for i, name in enumerate(calendar.day_abbr)}
# Longest possible month, for rejecting day-of-month / month pairs that never occur.
_MAX_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A schedule that can fire fires within 8 years (29 February skips 2100): search 30.
_SEARCH_YEARS = 30


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day of week", 0, 7, _DAY_NAMES),
)


def _number(text: str, spec: _Field, position: int) -> int:
    where = f"field {position} ({spec.name})"
    if spec.names is not None and text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isdigit():
        named = f" or a name like {next(iter(spec.names))}" if spec.names else ""
        raise ValueError(f"{where}: {text!r} is not a number{named}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise ValueError(f"{where}: {value} is out of range {spec.low}-{spec.high}")
    return value


def _parse_field(text: str, spec: _Field, position: int) -> frozenset[int]:
    where = f"field {position} ({spec.name})"
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValueError(f"{where}: empty list item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{where}: the step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            low, high = spec.low, spec.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low, high = _number(first, spec, position), _number(last, spec, position)
            if low > high:
                raise ValueError(f"{where}: the range {base!r} runs backwards")
        else:
            low = _number(base, spec, position)
            high = spec.high if slash else low
        values.update(range(low, high + 1, step))
    if spec.names is _DAY_NAMES and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression; build it with `CronSchedule.parse`."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        """Parse `text`; raise ValueError naming the field and the value at fault."""
        expression = _MACROS.get(text.strip().lower(), text)
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(
                f"a cron expression has 5 fields (minute hour day-of-month month "
                f"day-of-week); {text!r} has {len(parts)}"
            )
        minutes, hours, days, months, weekdays = (
            _parse_field(part, spec, i + 1)
            for i, (part, spec) in enumerate(zip(parts, _FIELDS, strict=True))
        )
        schedule = cls(
            text,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted=not parts[2].startswith("*"),
            weekdays_restricted=not parts[4].startswith("*"),
        )
        only_days = schedule.days_restricted and not schedule.weekdays_restricted
        if only_days and not any(min(schedule.days) <= _MAX_DAYS[m] for m in schedule.months):
            raise ValueError(
                f"{text!r} never fires: no selected month has day {min(schedule.days)}"
            )
        return schedule

    def _day_matches(self, day: datetime) -> bool:
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def matches(self, dt: datetime) -> bool:
        """True when the minute of `dt`, in its own wall time, is one the schedule fires at."""
        return (
            dt.month in self.months
            and self._day_matches(dt)
            and dt.hour in self.hours
            and dt.minute in self.minutes
        )

    def next_at_or_after(self, dt: datetime, zone: tzinfo | None = None) -> datetime:
        """The first firing at or after `dt`, as an aware time in `zone` (default dt's zone).

        A naive `dt` is read as wall time in `zone`; with no zone at all, as naive wall time.
        """
        zone = zone or dt.tzinfo
        if dt.tzinfo is not None and zone is not None:
            dt = dt.astimezone(zone)
        elif zone is not None:
            dt = dt.replace(tzinfo=zone)
        wall = dt.replace(tzinfo=None)
        if wall.second or wall.microsecond:
            wall = wall.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = wall.replace(year=wall.year + _SEARCH_YEARS, month=1, day=1)
        while wall < limit:
            if wall.month not in self.months:
                year, month = divmod(wall.month, 12)
                wall = datetime(wall.year + year, month + 1, 1)
            elif not self._day_matches(wall):
                wall = datetime(wall.year, wall.month, wall.day) + timedelta(days=1)
            elif wall.hour not in self.hours:
                wall = wall.replace(minute=0) + timedelta(hours=1)
            elif wall.minute not in self.minutes:
                wall += timedelta(minutes=1)
            elif zone is None:
                return wall
            elif _exists(wall, zone) and _not_before(wall.replace(tzinfo=zone, fold=0), dt):
                return wall.replace(tzinfo=zone, fold=0)
            else:
                # Skipped by a DST change, or the first instance of a repeated hour when
                # the search started in the second one.
                wall += timedelta(minutes=1)
        raise ValueError(f"{self.text!r} does not fire within {_SEARCH_YEARS} years")


def _exists(wall: datetime, zone: tzinfo) -> bool:
    """False for a wall time skipped by a DST change in `zone`."""
    local = wall.replace(tzinfo=zone, fold=0)
    return local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def _not_before(candidate: datetime, start: datetime) -> bool:
    """Compare instants: aware datetimes sharing a tzinfo compare by wall time, ignoring fold."""
    return candidate.astimezone(UTC) >= start.astimezone(UTC)
