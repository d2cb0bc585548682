"""An upgrade policy: what `clusters/<name>/policy.yaml` allows, requires and corrects.

Pure data produced by `upgrade.policy`. Every field has the default a cluster gets when
its policy file leaves the field out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

API_VERSION = "cvsync.io/v1alpha1"
KIND = "UpgradePolicy"


class Mode(StrEnum):
    """`enforce` acts on the cluster; `observe` only reports what it would do."""

    ENFORCE = "enforce"
    OBSERVE = "observe"


class DriftAction(StrEnum):
    """What to do when the cluster differs from git in one field.

    `correct` on desiredUpdate corrects forward only: the agent never downgrades.
    """

    CORRECT = "correct"
    REPORT = "report"


@dataclass(frozen=True, slots=True)
class AcceptedRisk:
    """A conditional-update risk a named person accepted until `expires`."""

    name: str
    reason: str
    approved_by: str
    expires: date | datetime


@dataclass(frozen=True, slots=True)
class AllowForce:
    """`desiredUpdate.force` is allowed until `until` (a date counts through that day, UTC),
    for `reason`. Kept once `until` has passed: the gates then say that it expired."""

    until: date | datetime
    reason: str

    @property
    def written(self) -> str:
        """`until` as a policy writes it: 2026-12-01, or 2026-12-01T00:00:00Z."""
        text = self.until.isoformat()
        return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """Upgrades may start when `cron` fires, and for `duration` after, in `time_zone`."""

    cron: str
    duration: timedelta
    time_zone: str


@dataclass(frozen=True, slots=True)
class Blackout:
    """No upgrade starts from `start` to `end`, both days included."""

    start: date
    end: date
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DriftActions:
    """One action per ClusterVersion spec field the agent manages."""

    channel: DriftAction = DriftAction.CORRECT
    upstream: DriftAction = DriftAction.CORRECT
    capabilities: DriftAction = DriftAction.CORRECT
    desired_update: DriftAction = DriftAction.CORRECT
    overrides: DriftAction = DriftAction.REPORT


@dataclass(frozen=True, slots=True)
class Policy:
    """A cluster's upgrade policy; `Policy()` is the policy of a cluster without a file.

    `accepted_risks` keeps expired acceptances and `allow_force` is kept after its `until`,
    so the gates can name the day one ended; neither counts after it.
    An empty `maintenance_windows` means upgrades may start at any time.
    """

    allow_not_recommended: bool = False
    accepted_risks: tuple[AcceptedRisk, ...] = ()
    allow_force: AllowForce | None = None
    require_digest: bool = True
    allow_minor: bool = True
    allow_major: bool = False
    allow_retarget_while_progressing: bool = False
    maintenance_windows: tuple[MaintenanceWindow, ...] = ()
    blackouts: tuple[Blackout, ...] = ()
    mode: Mode = Mode.ENFORCE
    drift: DriftActions = field(default_factory=DriftActions)
    # An update whose progress does not change for this long while Progressing=True is stalled.
    stall_after: timedelta = timedelta(minutes=90)
