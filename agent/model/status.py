"""What cvsync reports about a cluster: the live ClusterVersion's status, summarized, and
cvsync's own state (revisions, last cycle, conflicts, drift and what was done about it).

Pure data, produced by `report.summarize` and rendered by `report.status_render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from agent.model.drift import DriftItem
from agent.model.gates import UpgradeCheck
from agent.model.lifecycle import UpdateLifecycle
from agent.model.revision import Revision


class UpdateState(StrEnum):
    IDLE = "idle"
    PROGRESSING = "progressing"
    FAILING = "failing"


class Transition(StrEnum):
    """A change of update state between two summaries that the commit policy names."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    MOVED = "moved"  # git's target moved to another lifecycle state


class DriftAction(StrEnum):
    CORRECTED = "corrected"  # cvsync applied git's value over the live one
    REPORTED = "reported"  # left as it is: only reported (policy, forward drift, conflict)


@dataclass(frozen=True, slots=True)
class ConditionSummary:
    """One status condition; reason and message are None when the object omits them."""

    type: str
    status: str  # True, False or Unknown (or whatever the object says)
    reason: str | None = None
    message: str | None = None  # may span lines
    since: str | None = None  # lastTransitionTime, RFC 3339


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    version: str  # may be "" when the image does not say
    image: str
    state: str  # Completed or Partial
    started: str | None = None
    completed: str | None = None  # None while the update is being applied
    duration_seconds: int | None = None  # completed - started, when both are known
    verified: bool | None = None
    accepted_risks: str | None = None  # may span lines


@dataclass(frozen=True, slots=True)
class UpdateTarget:
    """A release the cluster could update to, or is updating to."""

    version: str
    image: str
    url: str | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Risk:
    name: str
    message: str
    url: str
    rules: tuple[str, ...] = ()  # the matching rule types, in order: PromQL, Always…
    # The operator's Applies condition (True, False, Unknown) where it publishes one
    # (status.conditionalUpdateRisks, ClusterUpdateAcceptRisks); "" where it does not say.
    applies: str = ""


@dataclass(frozen=True, slots=True)
class ConditionalTarget:
    """A conditional update: its release, its risks, and the Recommended condition.

    `available` says the same release is also in availableUpdates (the operator lists a
    conditional update there once it recommends it): count it once, not twice."""

    release: UpdateTarget
    risks: tuple[Risk, ...]
    recommended: str  # the Recommended condition's status: True, False, Unknown, or "" if absent
    reason: str | None = None
    message: str | None = None
    available: bool = False


@dataclass(frozen=True, slots=True)
class Desired:
    """What the cluster reconciles towards (status.desired), with the request behind it
    (spec.desiredUpdate) where there is one."""

    version: str
    image: str
    url: str | None = None
    channels: tuple[str, ...] = ()
    architecture: str | None = None  # Multi, amd64…, when the object says
    requested: bool = False  # spec.desiredUpdate is set
    request_fields: tuple[str, ...] = ()  # its non-empty version, image, architecture
    # Their values as spec.desiredUpdate holds them: until the operator takes the target
    # (or when it refuses it), status.desired still names the previous release.
    request_values: tuple[tuple[str, str], ...] = ()
    forced: bool = False  # spec.desiredUpdate.force
    accept_risks: tuple[str, ...] = ()  # spec.desiredUpdate.acceptRisks, by name

    @property
    def image_only(self) -> bool:
        """Requested by image alone: the version comes from the payload, not from git."""
        return self.request_fields == ("image",)


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    state: UpdateState
    updating: bool  # Progressing=True: an update is being applied (failing or not)
    percent: int | None = None  # from the Progressing message, while updating
    message: str | None = None  # the Progressing message
    failure: str | None = None  # the Failing message, when failing


@dataclass(frozen=True, slots=True)
class Capabilities:
    baseline: str | None = None  # spec.capabilities.baselineCapabilitySet
    additional: tuple[str, ...] = ()  # spec.capabilities.additionalEnabledCapabilities
    enabled: tuple[str, ...] = ()
    known: tuple[str, ...] = ()

    @property
    def disabled(self) -> tuple[str, ...]:
        """Known to the cluster but not enabled."""
        enabled = set(self.enabled)
        return tuple(name for name in self.known if name not in enabled)


@dataclass(frozen=True, slots=True)
class Override:
    kind: str
    group: str
    namespace: str
    name: str
    unmanaged: bool


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A field a server-side apply could not take because another manager owns it."""

    path: str
    manager: str


@dataclass(frozen=True, slots=True)
class DriftEntry:
    item: DriftItem
    action: DriftAction


@dataclass(frozen=True, slots=True)
class AgentState:
    """cvsync's own state for one cluster, as the reconciler last left it."""

    cluster: str  # the cluster's name in git (clusters/<cluster>/)
    last_attempted: Revision | None = None  # the newest revision seen in git
    last_applied: Revision | None = None  # the last revision cvsync applied
    last_result: str | None = None  # Applied, InSync, DriftReported, Stalled, Failed
    last_reason: str | None = None  # CamelCase
    last_message: str | None = None
    last_cycle_at: str | None = None  # when the last cycle ended, RFC 3339 (a heartbeat)
    last_cycle_seconds: float | None = None  # a heartbeat too
    conflicts: tuple[FieldConflict, ...] = ()
    drift: tuple[DriftEntry, ...] = ()
    upgrade: UpgradeCheck | None = None  # git's target, when the gates hold it back
    update: UpdateLifecycle | None = None  # where git's target stands, as cvsync follows it


@dataclass(frozen=True, slots=True)
class StatusSummary:
    agent: AgentState
    cluster_id: str | None
    channel: str | None
    upstream: str | None  # credentials in the URL are removed
    current: HistoryEntry | None  # the latest Completed history entry
    desired: Desired | None
    update: UpdateStatus
    conditions: tuple[ConditionSummary, ...]
    history: tuple[HistoryEntry, ...]  # the newest first, at most history_limit
    history_total: int
    available: tuple[UpdateTarget, ...]  # newest version first, each release once
    conditional: tuple[ConditionalTarget, ...]  # newest version first, each release once
    capabilities: Capabilities | None
    overrides: tuple[Override, ...]
    generation: int | None
    observed_generation: int | None
    available_null: bool = False  # the object says availableUpdates: null
    conditional_absent: bool = False  # the object has no conditionalUpdates key
    # Where the requested target stands: cvsync's own observation of git's target, or read
    # from the object alone (its spec.desiredUpdate) when there is none.
    lifecycle: UpdateLifecycle | None = None

    @property
    def stale(self) -> bool:
        """The operator has not yet observed the latest spec: status may describe an older one."""
        if self.generation is None or self.observed_generation is None:
            return False
        return self.observed_generation < self.generation

    @property
    def current_version(self) -> str | None:
        return self.current.version if self.current else None

    @property
    def not_recommended(self) -> tuple[ConditionalTarget, ...]:
        """Conditional updates that are not also in availableUpdates."""
        return tuple(target for target in self.conditional if not target.available)

    @property
    def recommended_conditional(self) -> int:
        """Conditional updates that also appear in availableUpdates (counted there)."""
        return sum(1 for target in self.conditional if target.available)

    @property
    def targets(self) -> int:
        """Distinct releases the cluster could update to: available plus not recommended."""
        return len(self.available) + len(self.not_recommended)

    def condition(self, type_: str) -> ConditionSummary | None:
        return next((c for c in self.conditions if c.type == type_), None)
