"""Where git's update target stands on the cluster: one state of a lifecycle that ends in an
answer (completed, refused, failing or stalled), with the operator's own words for it.

Pure data, produced by `upgrade.lifecycle` and read by the engine, the reports and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LifecycleState(StrEnum):
    IDLE = "idle"  # git names no target and nothing is being applied
    PENDING = "pending"  # git's target is not applied: a gate holds it, or cvsync may not write
    REQUESTED = "requested"  # applied; the operator has not answered yet
    ACCEPTED = "accepted"  # the operator took the target; no manifest applied yet
    PROGRESSING = "progressing"  # the operator is applying it
    STALLED = "stalled"  # progressing, but nothing moved for the policy's stallAfter
    FAILING = "failing"  # Failing=True while on, or at, the target
    REFUSED = "refused"  # ReleaseAccepted=False for this target
    COMPLETED = "completed"  # the cluster runs the target


# The states a person must act on: Warning Events, and `status --wait` exits 1 on them.
TROUBLE = frozenset({LifecycleState.REFUSED, LifecycleState.FAILING, LifecycleState.STALLED})
# The states that count as the cluster running or moving to git's target.
ON_COURSE = frozenset(
    {
        LifecycleState.IDLE,
        LifecycleState.REQUESTED,
        LifecycleState.ACCEPTED,
        LifecycleState.PROGRESSING,
        LifecycleState.COMPLETED,
    }
)


@dataclass(frozen=True, slots=True)
class UpdateLifecycle:
    """One observation of git's target. `since` is when this state began; `progress_at` when
    the operator's progress (percent, message, history) last changed, which stall detection
    measures from; `progress` is that progress as one comparable text."""

    state: LifecycleState
    target: str  # the version git asks for (its image when git names only an image), or ""
    since: datetime
    reason: str | None = None  # CamelCase: the gate's, or the operator's condition reason
    message: str | None = None  # the gate's or the operator's words, unshortened
    percent: int | None = None
    waiting_on: str | None = None  # what the operator says it is waiting on
    duration_seconds: int | None = None  # started to completed, once completed
    progress: str = ""
    progress_at: datetime | None = None

    @property
    def trouble(self) -> bool:
        return self.state in TROUBLE

    @property
    def event_reason(self) -> str:
        """The Event reason of a move into this state: UpdateRefused, UpdateCompleted…"""
        return "Update" + self.state.value.capitalize()

    def same_answer(self, other: UpdateLifecycle | None) -> bool:
        """True when `other` says the same thing: a transition is a change of state or target."""
        return other is not None and (other.state, other.target) == (self.state, self.target)

    def describe(self) -> str:
        """One line for logs, Events and `status --wait`: state, target and the operator's words."""
        head = f"{self.state.value} {self.target}".rstrip()
        details = []
        if self.percent is not None and self.state is not LifecycleState.COMPLETED:
            details.append(f"{self.percent}%")
        if self.reason:
            details.append(self.reason)
        if self.state is LifecycleState.STALLED and self.waiting_on:
            details.append(f"waiting on {self.waiting_on}")
        if self.duration_seconds is not None:
            details.append(f"in {_duration_text(self.duration_seconds)}")
        line = f"{head} ({', '.join(details)})" if details else head
        return f"{line}: {self.message}" if self.message else line


def _duration_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


@dataclass(frozen=True, slots=True)
class RecordedProgress:
    """What cvsync's last status file says of git's target in progress: the target, the
    operator's Progressing message then, and when that progress last moved (progressAt)."""

    target: str
    message: str
    progress_at: datetime
