"""The update lifecycle: where git's target stands, read from the live ClusterVersion the way
the cluster-version operator reports it (history, ReleaseAccepted, Progressing, Failing).

Pure: the live object, git's target, the gates' hold and the previous observation in; one
UpdateLifecycle out. Stall detection needs only the previous observation and the time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.model.gates import UpgradeCheck
from agent.model.lifecycle import LifecycleState, RecordedProgress, UpdateLifecycle
from agent.upgrade.status_read import mapping, mappings, text, text_or_none

DEFAULT_STALL_AFTER = timedelta(minutes=90)

_PERCENT = re.compile(r"\((\d{1,3})% complete\)")
_DONE = re.compile(r"(\d+) of \d+ done")
# "…, waiting on machine-config" and "…, waiting up to 40 minutes on etcd"
_WAITING_ON = re.compile(r"waiting (?:up to [^,]*? )?on (.+)$")
# ReleaseAccepted's message names the payload it judged: version="4.16.3" image="…"
_NAMED = re.compile(r'\b(version|image)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class Target:
    """What git asks for in spec.desiredUpdate: a version (pinned to an image or not), or an
    image alone. A version decides the match when there is one, as history records it."""

    version: str
    image: str

    @property
    def label(self) -> str:
        return self.version or self.image

    def names(self, version: str, image: str) -> bool:
        if self.version:
            return version == self.version
        return bool(self.image) and image == self.image


def git_target(spec: Mapping[str, Any]) -> Target | None:
    """The target git's spec asks for, or None when it names no desiredUpdate."""
    request = mapping(spec.get("desiredUpdate"))
    found = Target(text(request.get("version")), text(request.get("image")))
    return found if found.label else None


def observe_update(
    target: Target | None,
    live: Mapping[str, Any] | None,
    *,
    now: datetime,
    stall_after: timedelta = DEFAULT_STALL_AFTER,
    held: UpgradeCheck | None = None,
    previous: UpdateLifecycle | None = None,
) -> UpdateLifecycle:
    """Where `target` stands on `live`. `held` is the gates' decision when they hold the
    target back; `previous` is the last observation, which carries when progress last moved."""
    found = _Observation(live or {}, now, stall_after, previous).of(target, held)
    if previous is not None and found.same_answer(previous):
        return replace(found, since=previous.since)
    return found


class _Observation:
    """One look at the live object, with the time and the previous look."""

    def __init__(
        self,
        live: Mapping[str, Any],
        now: datetime,
        stall_after: timedelta,
        previous: UpdateLifecycle | None,
    ) -> None:
        status = mapping(live.get("status"))
        self.spec = mapping(live.get("spec"))
        self.conditions = {text(c.get("type")): c for c in mappings(status.get("conditions"))}
        self.history = list(mappings(status.get("history")))
        self.now, self.stall_after, self.previous = now, stall_after, previous

    def condition(self, kind: str) -> Mapping[str, Any]:
        return self.conditions.get(kind) or {}

    def of(self, target: Target | None, held: UpgradeCheck | None) -> UpdateLifecycle:
        top = self.history[0] if self.history else None
        in_flight = top is not None and top.get("completionTime") is None
        now = self.now
        if target is None:
            if top is not None and in_flight:
                return self.in_flight(text(top.get("version")) or text(top.get("image")))
            return UpdateLifecycle(LifecycleState.IDLE, "", now)
        label = target.label
        if top is not None and target.names(text(top.get("version")), text(top.get("image"))):
            return self.in_flight(label) if in_flight else self.arrived(label, top)
        accepted = self.condition("ReleaseAccepted")
        judged = _judged_payload(text(accepted.get("message")))
        if text(accepted.get("status")) == "False" and target.names(*judged):
            return UpdateLifecycle(
                LifecycleState.REFUSED,
                label,
                now,
                reason=text_or_none(accepted.get("reason")),
                message=text_or_none(accepted.get("message")),
            )
        requested = mapping(self.spec.get("desiredUpdate"))
        if target.names(text(requested.get("version")), text(requested.get("image"))):
            if text(accepted.get("status")) == "True" and target.names(*judged):
                return UpdateLifecycle(LifecycleState.ACCEPTED, label, now, reason="PayloadLoaded")
            return UpdateLifecycle(LifecycleState.REQUESTED, label, now)
        passed = _passed(target, self.history, now)
        if passed is not None:
            return passed
        if held is not None and held.pending:
            return UpdateLifecycle(
                LifecycleState.PENDING, label, now, reason=held.reason, message=held.summary()
            )
        return UpdateLifecycle(LifecycleState.PENDING, label, now, reason="NotApplied")

    def in_flight(self, label: str) -> UpdateLifecycle:
        """An update the operator has started: failing, stalled, or moving (accepted until the
        first manifest is done)."""
        now, previous = self.now, self.previous
        progressing = self.condition("Progressing")
        message = text(progressing.get("message"))
        percent = _number(_PERCENT, message)
        waiting = _WAITING_ON.search(message)
        recent = [dict(entry) for entry in self.history[:2]]
        progress = json.dumps([percent, message, recent], default=str)
        progress_at = now
        if previous is not None and previous.target == label and previous.progress == progress:
            progress_at = previous.progress_at or now
        moving = UpdateLifecycle(
            LifecycleState.PROGRESSING,
            label,
            now,
            reason=text_or_none(progressing.get("reason")),
            message=message or None,
            percent=percent,
            waiting_on=waiting.group(1) if waiting else None,
            progress=progress,
            progress_at=progress_at,
        )
        failing = self.condition("Failing")
        if text(failing.get("status")) == "True":
            return replace(
                moving,
                state=LifecycleState.FAILING,
                reason=text_or_none(failing.get("reason")),
                message=text_or_none(failing.get("message")),
            )
        quiet = now - progress_at
        if text(progressing.get("status")) == "True" and quiet >= self.stall_after:
            words = f"no progress since {progress_at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
            return replace(
                moving,
                state=LifecycleState.STALLED,
                reason="NoProgress",
                message=f"{words}: {message}" if message else words,
            )
        if (_number(_DONE, message) or 0) == 0 and (percent or 0) == 0:
            return replace(moving, state=LifecycleState.ACCEPTED)
        return moving

    def arrived(self, label: str, entry: Mapping[str, Any]) -> UpdateLifecycle:
        """The target is the cluster's latest completed release; Failing=True still says so."""
        failing = self.condition("Failing")
        if text(failing.get("status")) == "True":
            return UpdateLifecycle(
                LifecycleState.FAILING,
                label,
                self.now,
                reason=text_or_none(failing.get("reason")),
                message=text_or_none(failing.get("message")),
            )
        return UpdateLifecycle(
            LifecycleState.COMPLETED,
            label,
            self.now,
            duration_seconds=_seconds_between(
                entry.get("startedTime"), entry.get("completionTime")
            ),
        )


def _passed(
    target: Target, history: list[Mapping[str, Any]], now: datetime
) -> UpdateLifecycle | None:
    """Git's target was completed and the cluster has since moved on to a newer release that
    someone else asked for: completed, and superseded."""
    for entry in history[1:]:
        if entry.get("state") == "Completed" and target.names(
            text(entry.get("version")), text(entry.get("image"))
        ):
            newer = text(history[0].get("version")) or text(history[0].get("image"))
            return UpdateLifecycle(
                LifecycleState.COMPLETED,
                target.label,
                now,
                reason="Superseded",
                message=f"the cluster has since moved on to {newer}",
                duration_seconds=_seconds_between(
                    entry.get("startedTime"), entry.get("completionTime")
                ),
            )
    return None


def _judged_payload(message: str) -> tuple[str, str]:
    named = dict(_NAMED.findall(message))
    return named.get("version", ""), named.get("image", "")


def _number(pattern: re.Pattern[str], message: str) -> int | None:
    found = pattern.search(message)
    return int(found.group(1)) if found else None


def _seconds_between(start: Any, end: Any) -> int | None:
    try:
        began = datetime.fromisoformat(text(start).replace("Z", "+00:00"))
        ended = datetime.fromisoformat(text(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0, int((ended - began).total_seconds()))


def stall_deadline(lifecycle: UpdateLifecycle, stall_after: timedelta) -> datetime | None:
    """When an update that moves now would count as stalled, if nothing changes before then."""
    if lifecycle.state not in (LifecycleState.ACCEPTED, LifecycleState.PROGRESSING):
        return None
    if lifecycle.progress_at is None:
        return None
    return lifecycle.progress_at + stall_after


def resume_progress(
    lifecycle: UpdateLifecycle | None, recorded: RecordedProgress
) -> UpdateLifecycle | None:
    """`lifecycle` with its progress dated from `recorded` (the status file written before a
    restart or a change of leader) when the operator still says exactly what it said then
    about the same target; otherwise `lifecycle` itself. A stall is then not put off by the
    restart."""
    if lifecycle is None or lifecycle.progress_at is None:
        return lifecycle
    in_progress = lifecycle.state in (LifecycleState.ACCEPTED, LifecycleState.PROGRESSING)
    if not in_progress or lifecycle.target != recorded.target:
        return lifecycle
    if (
        lifecycle.message or ""
    ) != recorded.message or recorded.progress_at >= lifecycle.progress_at:
        return lifecycle
    return replace(lifecycle, progress_at=recorded.progress_at)
