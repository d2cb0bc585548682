"""Maintenance windows and blackouts: may a new upgrade start now, and when may that change?

Pure: a Policy and an aware `now` in, a WindowState out. A window opens when its cron
fires (wall time in its time zone) and stays open for its duration. Blackout dates are
whole days in the time zone of the first maintenance window (UTC when there is none); no
new upgrade starts on them, inside a window or not.

`next_change` is the next instant the answer can flip (a window opening or closing, a
blackout starting or ending): the agent re-evaluates exactly then, not at its next poll.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from agent.model.gates import WindowState
from agent.model.policy import Blackout, MaintenanceWindow, Policy
from agent.upgrade.cron import CronSchedule

_TICK = timedelta(microseconds=1)
# Edges looked at for the next change: a minutely window closed by a month-long blackout
# has tens of thousands; past this many the agent simply re-evaluates at its next resync.
_MAX_EDGES = 2000


def window_state(policy: Policy, now: datetime) -> WindowState:
    """Whether a new target may start at `now` (None: the policy sets no window at all)."""
    if not policy.maintenance_windows and not policy.blackouts:
        return WindowState(None, "the policy sets no maintenance window: upgrades may start")
    now = now.astimezone(UTC)
    zone = _blackout_zone(policy)
    is_open, open_windows = _open_at(policy, now, zone)
    next_change = _next_flip(policy, now, zone, is_open)
    blackout = next((b for b in policy.blackouts if _covers(b, now, zone)), None)
    if blackout is not None:
        note = f"blackout {blackout.start} to {blackout.end}" + (
            f" ({blackout.reason})" if blackout.reason else ""
        )
        return WindowState(False, f"{note}: no new upgrade starts", next_change)
    if not policy.maintenance_windows:
        return WindowState(True, "outside every blackout", next_change)
    if open_windows:
        return WindowState(True, "inside " + "; ".join(open_windows), next_change)
    opening = _next_opening(policy, now, zone)
    when = f"; the next opens {opening}" if opening else ""
    windows = ", ".join(_describe(w) for w in policy.maintenance_windows)
    return WindowState(False, f"outside the maintenance windows ({windows}){when}", next_change)


def _open_at(policy: Policy, moment: datetime, zone: tzinfo) -> tuple[bool, list[str]]:
    """Open at `moment`, and a description of each window open then."""
    if any(_covers(b, moment, zone) for b in policy.blackouts):
        return False, []
    if not policy.maintenance_windows:
        return True, []
    described = []
    for window in policy.maintenance_windows:
        schedule, window_zone = CronSchedule.parse(window.cron), ZoneInfo(window.time_zone)
        for start in _starts_between(schedule, window_zone, moment - window.duration, moment):
            end = start + window.duration
            described.append(f"{_describe(window)} (open until {_stamp(end, window_zone)})")
    return bool(described), described


def _next_flip(policy: Policy, now: datetime, zone: tzinfo, is_open: bool) -> datetime | None:
    """The first edge after `now` (a window opening or closing, a blackout starting or
    ending) at which the answer differs from `is_open`."""
    moment = now
    for _ in range(_MAX_EDGES):
        edge = _next_edge(policy, moment, zone)
        if edge is None:
            return None
        if _open_at(policy, edge, zone)[0] != is_open:
            return edge
        moment = edge
    return None


def _next_edge(policy: Policy, after: datetime, zone: tzinfo) -> datetime | None:
    edges: list[datetime] = []
    for window in policy.maintenance_windows:
        schedule, window_zone = CronSchedule.parse(window.cron), ZoneInfo(window.time_zone)
        for start in _starts_between(schedule, window_zone, after - window.duration, after):
            edges.append(start + window.duration)
        edges.append(schedule.next_at_or_after(after + _TICK, window_zone).astimezone(UTC))
    for blackout in policy.blackouts:
        edges.extend(e for e in _blackout_edges(blackout, zone) if e > after)
    return min((edge for edge in edges if edge > after), default=None)


def _starts_between(
    schedule: CronSchedule, zone: tzinfo, earliest: datetime, now: datetime
) -> list[datetime]:
    """Firings after `earliest` and at or before `now`: the windows open at `now`."""
    starts = []
    start = schedule.next_at_or_after(earliest + _TICK, zone).astimezone(UTC)
    while start <= now:
        starts.append(start)
        start = schedule.next_at_or_after(start + _TICK, zone).astimezone(UTC)
    return starts


def _next_opening(policy: Policy, now: datetime, zone: tzinfo) -> str:
    """When the next window opens outside every blackout, in the window's own time zone."""
    openings = []
    for window in policy.maintenance_windows:
        schedule, window_zone = CronSchedule.parse(window.cron), ZoneInfo(window.time_zone)
        start = schedule.next_at_or_after(now + _TICK, window_zone)
        for _ in range(400):  # a blackout spans at most a few hundred firings worth checking
            if not any(_covers(b, start, zone) for b in policy.blackouts):
                openings.append(start)
                break
            start = schedule.next_at_or_after(start + _TICK, window_zone)
    if not openings:
        return ""
    first = min(openings, key=lambda moment: moment.astimezone(UTC))
    return _stamp(first, first.tzinfo or UTC)


def _blackout_zone(policy: Policy) -> tzinfo:
    windows = policy.maintenance_windows
    return ZoneInfo(windows[0].time_zone) if windows else UTC


def _day_start(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone).astimezone(UTC)


def _blackout_edges(blackout: Blackout, zone: tzinfo) -> tuple[datetime, datetime]:
    return _day_start(blackout.start, zone), _day_start(blackout.end + timedelta(days=1), zone)


def _covers(blackout: Blackout, moment: datetime, zone: tzinfo) -> bool:
    start, end = _blackout_edges(blackout, zone)
    return start <= moment.astimezone(UTC) < end


def _describe(window: MaintenanceWindow) -> str:
    hours, seconds = divmod(int(window.duration.total_seconds()), 3600)
    length = (f"{hours}h" if hours else "") + (f"{seconds // 60}m" if seconds else "")
    return f'"{window.cron}" for {length} ({window.time_zone})'


def _stamp(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
