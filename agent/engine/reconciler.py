"""One reconcile cycle over the pure stages: read git, validate, read the cluster, diff, plan,
apply; always ends in a CycleOutcome, even when a stage fails.

Async only where it awaits a port (Source, Cluster); every decision is a pure stage.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent.clock import Clock, SystemClock

# Re-exported: `plan --pr --live` dry-runs its applies through it.
from agent.engine.apply import apply_taking_back as apply_taking_back  # noqa: PLC0414
from agent.engine.ports import Cluster, Source
from agent.errors import (
    ApplyConflictError,
    ForbiddenError,
    InvalidObjectError,
    KubeError,
    SourceError,
)
from agent.model.desired import DesiredState
from agent.model.documents import ManifestDocument
from agent.model.drift import Drift
from agent.model.findings import Finding, Severity
from agent.model.gates import UpgradeCheck
from agent.model.lifecycle import RecordedProgress, UpdateLifecycle
from agent.model.policy import Mode, Policy
from agent.model.revision import Revision, Snapshot
from agent.settings import Settings
from agent.spec.normalize import desired_state
from agent.spec.parse import parse_file
from agent.spec.validate import validate_document
from agent.sync.diff import diff
from agent.sync.drift_policy import GitChanges, taken_back
from agent.sync.plan import plan_apply
from agent.upgrade.decision import accepted_risk_names, check_upgrade, with_accepted_risks
from agent.upgrade.lifecycle import git_target, observe_update, resume_progress
from agent.upgrade.policy import parse_policy

# Findings quote the values they reject, and a value may be as long as the file (1 MiB). A
# broken commit's findings live on in the last outcomes, the log line, the Event and the
# status file committed to git: each keeps this much of a finding's message.
FINDING_MESSAGE_LIMIT = 300
FORBIDDEN_RETRY = 60.0  # seconds before an apply RBAC refused is tried again
FORBIDDEN_HINT = (
    "cvsync's account needs get, list, watch and patch on clusterversions.config.openshift.io "
    "(resourceNames: [version]); the Helm chart's ClusterRole grants exactly that"
)


class Result(StrEnum):
    APPLIED = "Applied"
    IN_SYNC = "InSync"
    DRIFT_REPORTED = "DriftReported"
    STALLED = "Stalled"
    WAITING = "Waiting"  # git's target waits for a maintenance window; nothing else to do
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class CycleOutcome:
    result: Result
    reason: str  # CamelCase, such as ApplyConflict, ClusterIDMismatch, InvalidSpec
    message: str
    revision: Revision | None = None  # the revision whose spec was in force
    attempted: Revision | None = None  # the newest revision seen in git
    drift: Drift = field(default_factory=Drift)
    findings: tuple[Finding, ...] = ()
    retryable: bool = False
    seconds: float = 0.0
    fetch_seconds: float | None = None  # time spent refreshing the source, when it was
    conflicts: tuple[tuple[str, str], ...] = ()  # (field, owner) an apply could not take
    corrected: tuple[str, ...] = ()  # drifted paths this cycle's apply put back
    upgrade: UpgradeCheck | None = None  # the gates' decision on git's desiredUpdate
    update: UpdateLifecycle | None = None  # where git's target stands on the cluster


@dataclass
class DesiredSpec:
    revision: Revision
    state: DesiredState  # normalized once, here, and handed on unchanged
    policy: Policy = field(default_factory=Policy)


def select_spec(
    snapshot: Snapshot, spec_path: str
) -> tuple[ManifestDocument | None, tuple[Finding, ...]]:
    """The cluster's one valid ClusterVersion document at this snapshot, or the findings
    that make it unusable (warnings alone never do)."""
    data = snapshot.file(spec_path)
    if data is None:
        return None, ()
    parsed = parse_file(data, spec_path)
    findings = list(parsed.findings)
    for doc in parsed.documents:
        findings.extend(validate_document(doc))
    errors = tuple(f for f in findings if f.severity is Severity.ERROR)
    if errors:
        return None, errors
    if len(parsed.documents) != 1:
        return None, tuple(findings)
    return parsed.documents[0], tuple(findings)


class Reconciler:
    """Holds what must survive between cycles: the snapshot and the last good spec."""

    def __init__(
        self,
        settings: Settings,
        source: Source,
        cluster: Cluster,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.clock = (clock or SystemClock()).now
        self.source = source
        self.cluster = cluster
        self.snapshot: Snapshot | None = None
        self.last_good: DesiredSpec | None = None
        self.last_applied: Revision | None = None
        self.last_live: dict[str, Any] | None = None  # the object the last cycle compared
        # The object as the last cycle left it (its apply's answer, when it applied): where
        # git's target stands is read from it.
        self.observed: dict[str, Any] | None = None
        self.lifecycle: UpdateLifecycle | None = None
        self._observed_version: int | None = None  # the newest resourceVersion observed
        self.newest_live: dict[str, Any] | None = None  # the object that version belongs to
        self._held: UpgradeCheck | None = None  # the gates' last decision on git's target
        self.git_changes = GitChanges()  # tells git's own changes from someone else's
        # A refused apply is not retried until git's body or the live spec's ownership
        # changes: repeating it would only repeat the same 409 on every status update.
        self._refused: tuple[str, CycleOutcome, float] | None = None  # (attempt, outcome, until)

    async def cycle(self, *, refresh_source: bool) -> CycleOutcome:
        started = time.monotonic()
        outcome = await self._cycle(refresh_source)
        return _with_duration(outcome, time.monotonic() - started)

    async def _cycle(self, refresh_source: bool) -> CycleOutcome:
        problem: CycleOutcome | None = None
        fetch_seconds = None
        if refresh_source or self.snapshot is None:
            fetch_started = time.monotonic()
            try:
                self.snapshot = await self.source.refresh()
            except SourceError as exc:
                problem = CycleOutcome(
                    Result.FAILED, exc.reason, exc.message, retryable=exc.retryable
                )
            fetch_seconds = time.monotonic() - fetch_started
        attempted = self.snapshot.revision if self.snapshot else None
        if self.snapshot is not None:
            problem = self._take_spec(self.snapshot) or problem
        if self.last_good is None:
            return problem or CycleOutcome(
                Result.STALLED, "NoSpec", "no valid spec has been read yet", attempted=attempted
            )
        outcome = replace(await self._reconcile(self.last_good), fetch_seconds=fetch_seconds)
        outcome = self._follow_update(self.last_good, outcome)
        if problem is not None:
            # A broken commit never reaches the cluster; the last good spec stays in force.
            return replace(
                outcome,
                result=Result.STALLED if problem.result is not Result.FAILED else problem.result,
                reason=problem.reason,
                message=f"{problem.message}; {self.last_good.revision} stays in force",
                findings=problem.findings,
                attempted=attempted,
                # A failed fetch is retried (the runtime's backoff) as the error allows.
                retryable=problem.retryable or outcome.retryable,
            )
        return replace(outcome, attempted=attempted)

    def _follow_update(self, desired: DesiredSpec, outcome: CycleOutcome) -> CycleOutcome:
        """Read where git's target stands from the object this cycle left. A spec in sync
        with a target the cluster neither runs nor moves to is not in sync: it is stalled."""
        self._held = outcome.upgrade
        if self.observed is not None:
            self.observe_live(self.observed)
        lifecycle = self.lifecycle
        outcome = replace(outcome, update=lifecycle)
        if lifecycle is not None and lifecycle.trouble and outcome.result is Result.IN_SYNC:
            return replace(
                outcome,
                result=Result.STALLED,
                reason=lifecycle.event_reason,
                message=lifecycle.describe(),
            )
        return outcome

    def observe_live(self, live: dict[str, Any] | None) -> UpdateLifecycle | None:
        """Where git's target stands on `live`: after every apply, and on every watch event,
        also between cycles, so a short state (accepted) is seen even when cycles coalesce.
        An object older than one already observed (a watch event overtaken by an apply's
        answer) changes nothing."""
        desired = self.last_good
        if desired is None or live is None:
            return self.lifecycle
        version, newest = _resource_version(live), self._observed_version
        if version is not None and newest is not None and version < newest:
            return self.lifecycle
        self._observed_version = version
        self.newest_live = live
        self.lifecycle = observe_update(
            git_target(desired.state.spec),
            live,
            now=self.clock(),
            stall_after=desired.policy.stall_after,
            held=self._held,
            previous=self.lifecycle,
        )
        return self.lifecycle

    def resume_progress(self, recorded: RecordedProgress) -> bool:
        """Date the progress of git's target from the status file written before a restart
        or a change of leader, when the operator still says what it said then; True when
        that moved it back (the next observation may then find a stall)."""
        resumed = resume_progress(self.lifecycle, recorded)
        if resumed is self.lifecycle:
            return False
        self.lifecycle = resumed
        return True

    def _take_spec(self, snapshot: Snapshot) -> CycleOutcome | None:
        path = self.settings.cluster_spec_path
        document, findings = select_spec(snapshot, path)
        findings = _shortened(findings)
        if document is None:
            errors = [f for f in findings if f.severity is Severity.ERROR]
            if not findings:
                message = f"{path} does not exist at {snapshot.revision}"
            elif errors:
                message = "; ".join(f"{f.location}: {f.rule}: {f.message}" for f in errors[:5])
            else:
                message = f"{path} must hold exactly one ClusterVersion"
            return CycleOutcome(
                Result.STALLED, "InvalidSpec", message, findings=findings,
                attempted=snapshot.revision,
            )  # fmt: skip
        policy_path = self.settings.cluster_policy_path
        policy, policy_findings = select_policy(snapshot, policy_path, self.clock())
        policy_findings = _shortened(policy_findings)
        if policy is None:
            errors = [f for f in policy_findings if f.severity is Severity.ERROR]
            message = "; ".join(f"{f.location}: {f.rule}: {f.message}" for f in errors[:5])
            return CycleOutcome(
                Result.STALLED, "InvalidPolicy", message, findings=tuple(errors),
                attempted=snapshot.revision,
            )  # fmt: skip
        self.last_good = DesiredSpec(snapshot.revision, desired_state(document), policy)
        return None

    async def _reconcile(self, desired: DesiredSpec) -> CycleOutcome:
        revision = desired.revision
        self.observed = None  # unread: the last answer stands
        try:
            # The watch's newest object while the watch is current (no request), else a GET.
            live = self.last_live = self.observed = await self.cluster.live()
        except KubeError as exc:
            return CycleOutcome(
                Result.FAILED, exc.reason, exc.message, revision, retryable=exc.retryable
            )
        state = desired.state
        # The risks the policy accepts go to a cluster whose schema has acceptRisks.
        names = accepted_risk_names(desired.policy, self.clock()) if live is not None else ()
        if names and (await self.cluster.served_schema()).accept_risks:
            state = with_accepted_risks(state, names)
        drift = diff(state.spec, live)
        changes = self.git_changes.seen(state.spec, drift, live)
        drift = changes.marked(drift)
        outcome = await self._act(desired, state, live, drift)
        self.git_changes = changes.settled(drift, outcome.corrected)
        return outcome

    async def _act(
        self, desired: DesiredSpec, state: DesiredState, live: dict[str, Any] | None, drift: Drift
    ) -> CycleOutcome:
        revision, policy = desired.revision, desired.policy
        upgrade = None if live is None else check_upgrade(state, live, policy, self.clock())
        observe = self.settings.mode == "observe" or policy.mode is Mode.OBSERVE
        plan = plan_apply(
            state,
            live,
            drift,
            mode="observe" if observe else "enforce",
            upgrade=upgrade,
            drift_actions=policy.drift,
        )
        if plan.stalled is not None:
            return CycleOutcome(Result.STALLED, plan.stalled, plan.message, revision, drift=drift)
        if plan.body is None:
            result = Result.DRIFT_REPORTED if drift else Result.IN_SYNC
            reason = "DriftReported" if drift else "InSync"
            if upgrade is not None and upgrade.pending and not observe:
                waiting = upgrade.decision.action == "wait"
                result = Result.WAITING if waiting else Result.STALLED
                reason = upgrade.reason
            return CycleOutcome(
                result, reason, plan.message, revision, drift=drift, upgrade=upgrade
            )
        attempt = _attempt_key(plan.body, live)
        refused_before = self._refused
        if refused_before and refused_before[0] == attempt and time.monotonic() < refused_before[2]:
            return refused_before[1]
        reason, message = "Applied", plan.message
        try:
            self.observed, taken = await apply_taking_back(
                self.cluster,
                plan.body,
                force=self.settings.force_conflicts,
                dry_run=False,
                live=live,
            )
            # Forcing over the installer's value for a field git changed is git's change;
            # only someone else's value where git had another is drift taken back.
            drifted = taken_back(taken, drift)
            if drifted:
                reason = "DriftCorrected"
                taken_text = ", ".join(f'{f} from "{o}"' for f, o in drifted)
                message = f"took back {taken_text}; {plan.message}"
        except ApplyConflictError as exc:
            owners = ", ".join(f'{field} is owned by "{owner}"' for field, owner in exc.conflicts)
            refused = CycleOutcome(
                Result.STALLED,
                "ApplyConflict",
                owners or exc.message,
                revision,
                drift=drift,
                conflicts=exc.conflicts,
                upgrade=upgrade,
            )
            self._refused = (attempt, refused, float("inf"))
            return refused
        except ForbiddenError as exc:
            # RBAC can be fixed at any time without anything cvsync watches changing: ask
            # again after a while, not on every status update.
            message = f"{exc.message}; {FORBIDDEN_HINT}"
            refused = CycleOutcome(
                Result.STALLED, exc.reason, message, revision, drift=drift, upgrade=upgrade
            )
            self._refused = (attempt, refused, time.monotonic() + FORBIDDEN_RETRY)
            return refused
        except InvalidObjectError as exc:
            refused = CycleOutcome(
                Result.STALLED, exc.reason, exc.message, revision, drift=drift, upgrade=upgrade
            )
            self._refused = (attempt, refused, float("inf"))
            return refused
        except KubeError as exc:
            return CycleOutcome(
                Result.FAILED, exc.reason, exc.message, revision, drift=drift, retryable=True,
                upgrade=upgrade,
            )  # fmt: skip
        self.last_applied = revision
        self._refused = None
        corrected = tuple(item.path for item in drift.items if item.path in plan.corrected)
        return CycleOutcome(
            Result.APPLIED, reason, message, revision, drift=drift, corrected=corrected,
            upgrade=upgrade,
        )  # fmt: skip


def select_policy(
    snapshot: Snapshot, policy_path: str, now: datetime
) -> tuple[Policy | None, tuple[Finding, ...]]:
    """The cluster's upgrade policy at this snapshot (the defaults when it has no file), or
    None with the findings that make the file unusable."""
    data = snapshot.file(policy_path)
    if data is None:
        return Policy(), ()
    return parse_policy(data, policy_path, today=now.astimezone(UTC).date())


def _attempt_key(body: dict[str, Any], live: dict[str, Any] | None) -> str:
    """What decides an apply's answer: the body, the live spec and who owns its fields."""
    metadata = (live or {}).get("metadata") or {}
    owners = [
        {key: value for key, value in entry.items() if key != "time"}
        for entry in metadata.get("managedFields") or ()
        if entry.get("subresource") != "status"
    ]
    return json.dumps([body, (live or {}).get("spec"), owners], sort_keys=True)


def _shortened(findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """`findings` with each message cut to FINDING_MESSAGE_LIMIT characters."""
    limit = FINDING_MESSAGE_LIMIT
    return tuple(
        f if len(f.message) <= limit
        else replace(f, message=f"{f.message[:limit]}… ({len(f.message):,} characters)")
        for f in findings
    )  # fmt: skip


def _resource_version(live: dict[str, Any]) -> int | None:
    """resourceVersion as a number where the server gives one (etcd's revisions); None for an
    opaque one, which is then never compared."""
    text = str((live.get("metadata") or {}).get("resourceVersion") or "")
    return int(text) if text.isdigit() else None


def _with_duration(outcome: CycleOutcome, seconds: float) -> CycleOutcome:
    return replace(outcome, seconds=seconds)
