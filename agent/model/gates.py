"""Upgrade gates: what cvsync checks before it changes spec.desiredUpdate, and what it decided.

Pure data, produced by `upgrade.gates` and read by plans, PR reports and the reconciler.
`GateSettings` holds exactly what the gates need from the policy, so the policy can build it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

Action = Literal["apply", "wait", "block", "none"]


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"  # allowed, but worth saying on the plan
    BLOCK = "block"  # the change must not be applied
    WAIT = "wait"  # allowed later: outside a maintenance window


@dataclass(frozen=True, slots=True)
class GateRow:
    """One gate's verdict: the gate's name, a CamelCase reason and the evidence behind it."""

    gate: str
    verdict: Verdict
    reason: str
    evidence: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    """What to do with git's desiredUpdate.

    `resolved` is the desiredUpdate to apply (version and digest-pinned image when the target
    was found in the cluster's update lists); None when nothing is applied. `suggestion` is a
    way forward when blocked (the one-hop path, the annotation to write…)."""

    action: Action
    rows: tuple[GateRow, ...]
    resolved: dict[str, Any] | None = None
    suggestion: str | None = None

    @property
    def blocking(self) -> tuple[GateRow, ...]:
        return tuple(row for row in self.rows if row.verdict is Verdict.BLOCK)

    def row(self, gate: str) -> GateRow | None:
        return next((row for row in self.rows if row.gate == gate), None)


@dataclass(frozen=True, slots=True)
class WindowState:
    """May a new target start now: True inside a window, False outside one or in a blackout,
    None when the policy sets no window. `next_change` is when that may flip (aware, UTC)."""

    open: bool | None
    note: str
    next_change: datetime | None = None


@dataclass(frozen=True)
class GateSettings:
    """What the gates need from the policy. `accepted_risks` maps a conditional-update risk's
    name to when its acceptance expires (None: never); `allow_force_until` is when force stops
    being allowed (None: never allowed), `allow_force_written` that moment as the policy
    wrote it, for messages."""

    allow_not_recommended: bool = False
    accepted_risks: Mapping[str, datetime | None] = field(default_factory=dict)
    allow_force_until: datetime | None = None
    allow_force_written: str = ""
    require_digest: bool = True
    allow_minor: bool = True
    allow_major: bool = False
    allow_retarget_while_progressing: bool = False


@dataclass(frozen=True, slots=True)
class RiskVerdict:
    """One risk of a conditional update git targets, and whether the policy accepts it."""

    name: str
    message: str
    url: str
    accepted: bool


@dataclass(frozen=True, slots=True)
class UpgradeCheck:
    """The gates' decision on git's desiredUpdate, and the window state it was taken in."""

    decision: GateDecision
    window: WindowState
    target: str = ""  # what git asks for: its version, else its image
    risks: tuple[RiskVerdict, ...] = ()  # the target's risks when it is a conditional update

    @property
    def pending(self) -> bool:
        """Git asks for a target that is held back: blocked, or waiting for a window."""
        return self.decision.action in ("block", "wait")

    @property
    def reason(self) -> str:
        """UpgradeBlocked / UpgradeWaiting, as the condition is named; "" otherwise."""
        return {"block": "UpgradeBlocked", "wait": "UpgradeWaiting"}.get(self.decision.action, "")

    def summary(self) -> str:
        """One line: why the target is held back, from the rows that hold it."""
        held = [r for r in self.decision.rows if r.verdict in (Verdict.BLOCK, Verdict.WAIT)]
        text = "; ".join(f"{r.gate}: {r.reason} ({r.evidence})" for r in held)
        if self.decision.suggestion:
            text += f"; next: {self.decision.suggestion}"
        return text
