"""The cluster-version operator's Upgradeable conditions and its update preconditions (Rollback,
GiantHop, Upgradeable, RecommendedUpdate), worded and summarised as the operator does.

Sources: openshift/cluster-version-operator pkg/payload/precondition/precondition.go (Summarize)
and pkg/payload/precondition/clusterversion/{rollback,gianthop,upgradeable,recommendedupdate}.go.
Pure: status dicts and knobs in, conditions and verdicts out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.model.versions import Version, parse_version
from agent.sandbox.operator.knobs import ScenarioKnobs
from agent.sandbox.operator.status import Conditions, last_completed_version
from agent.sandbox.operator.update_service import Recommendations

UPGRADEABLE = "Upgradeable"
OVERRIDES_TYPE = "UpgradeableClusterVersionOverrides"
OVERRIDES_REASON = "ClusterVersionOverridesSet"
OVERRIDES_MESSAGE = (
    "Disabling ownership via cluster version overrides prevents upgrades. "
    "Please remove overrides before continuing."
)


@dataclass(frozen=True, slots=True)
class Check:
    """One failing Upgradeable check: its sub-condition type, reason and message."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed precondition; blocking ones refuse the update unless it is forced, the others
    (the operator's NonBlockingWarning) are only recorded in the history's acceptedRisks."""

    name: str
    reason: str
    message: str
    blocking: bool = True

    def summary(self) -> str:
        return f'Precondition "{self.name}" failed because of "{self.reason}": {self.message}'


def overrides_set(spec: Mapping[str, Any]) -> bool:
    return any(bool(o.get("unmanaged")) for o in spec.get("overrides") or ())


def upgradeable_checks(
    spec: Mapping[str, Any], history: Sequence[Mapping[str, Any]], knobs: ScenarioKnobs
) -> list[Check]:
    checks = []
    if overrides_set(spec):
        checks.append(Check(OVERRIDES_TYPE, OVERRIDES_REASON, OVERRIDES_MESSAGE))
    block = knobs.upgradeable_false
    if block is not None and block.applies_to(last_completed_version(history)):
        checks.append(Check(block.condition_type, block.reason, block.message))
    return checks


def set_upgradeable(conditions: Conditions, checks: Sequence[Check], at: str) -> None:
    """One failing check becomes Upgradeable=False itself; several keep their sub-conditions
    beside an Upgradeable=False(MultipleReasons); none removes them all, as the CVO does."""
    wanted: dict[str, Check] = {}
    if len(checks) == 1:
        wanted[UPGRADEABLE] = Check(UPGRADEABLE, checks[0].reason, checks[0].message)
    elif checks:
        wanted = {check.type: check for check in checks}
        reasons = ",".join(check.reason for check in checks)
        details = "\n* ".join(check.message for check in checks)
        wanted[UPGRADEABLE] = Check(
            UPGRADEABLE,
            "MultipleReasons",
            "Cluster should not be upgraded between minor versions for multiple reasons: "
            f"{reasons}\n* {details}",
        )
    for type_ in conditions.types():
        if type_.startswith(UPGRADEABLE) and type_ not in wanted:
            conditions.remove(type_)
    for type_ in sorted(wanted):
        conditions.set(type_, "False", at, wanted[type_].reason, wanted[type_].message)


def check_rollback(
    current: Version, target: Version, desired_image: str, history: Sequence[Mapping[str, Any]]
) -> Failure | None:
    if target >= current:
        return None
    name = "ClusterVersionRollback"
    previous = next(
        (
            entry
            for entry in history
            if entry.get("version") != current.text or entry.get("image") != desired_image
        ),
        None,
    )
    prior = parse_version(str(previous.get("version", ""))) if previous else None
    if previous is None or prior is None:
        return Failure(
            name,
            "LowDesiredVersion",
            f"{target.text} is less than the current target {current.text}, and the cluster has "
            "no previous Semantic Version",
        )
    if target != prior:
        return Failure(
            name,
            "LowDesiredVersion",
            f"{target.text} is less than the current target {current.text}, and the only "
            f"supported rollback is to the cluster's previous version {prior.text} "
            f"({previous.get('image', '')})",
        )
    if prior.same_minor(current):
        return None
    return Failure(
        name,
        "LowDesiredVersion",
        f"{target.text} is less than the current target {current.text} and matches the "
        "cluster's previous version, but rollbacks that change major or minor versions are not "
        "recommended",
    )


def check_giant_hop(current: Version, target: Version) -> Failure | None:
    name = "ClusterVersionGiantHop"
    if target.major > current.major:
        return Failure(
            name,
            "MajorVersionUpdate",
            f"{target.text} has a larger major version than the current target {current.text} "
            f"({target.major} > {current.major}), and only updates within the current major "
            "version are supported.",
        )
    if target.minor > current.minor + 1:
        return Failure(
            name,
            "MultipleMinorVersionsUpdate",
            f"{target.text} is more than one minor version beyond the current target "
            f"{current.text} ({target.major}.{target.minor} > "
            f"{current.major}.({current.minor}+1)), "
            "and only updates within the current minor version or to the next minor version "
            "are supported.",
        )
    return None


def check_upgradeable(
    current: Version, target: Version, conditions: Conditions, spec: Mapping[str, Any]
) -> Failure | None:
    up = conditions.get(UPGRADEABLE)
    if up is None or up.get("status") != "False":
        return None
    name = "ClusterVersionUpgradeable"
    # Upgradeable=False guards minor and major hops; patch updates pass unless overrides are set.
    if target <= current or target.same_minor(current):
        if overrides_set(spec):
            return Failure(name, OVERRIDES_REASON, OVERRIDES_MESSAGE)
        return None
    return Failure(name, str(up.get("reason", "")), str(up.get("message", "")))


def check_recommended(
    current: str,
    target: str,
    recommendations: Recommendations,
    *,
    retrieved: Mapping[str, Any],
    spec: Mapping[str, Any],
    block_conditional: bool = False,
) -> Failure | None:
    """Whether the target is recommended. The operator only ever warns; `block_conditional`
    turns a conditional update that is not recommended into a blocking failure, as the accept-risks
    API documents (TechPreviewNoUpgrade)."""
    name = "ClusterVersionRecommendedUpdate"
    if any(update["version"] == target for update in recommendations.available or ()):
        return None
    for update in recommendations.conditional:
        if update["release"]["version"] != target:
            continue
        recommended = update["conditions"][0]
        if recommended["status"] == "True":
            return None
        if recommended["status"] == "False":
            text = (
                f"Update from {current} to {target} is not recommended:\n\n{recommended['message']}"
            )
        else:
            text = (
                f"Update from {current} to {target} is Recommended={recommended['status']}: "
                f"{recommended['reason']}: {recommended['message']}"
            )
        return Failure(name, str(recommended["reason"]), text, block_conditional)
    if not spec.get("channel"):
        return Failure(
            name,
            "NoChannel",
            "Configured channel is unset, so the recommended status of updating from "
            f"{current} to {target} is unknown.",
            blocking=False,
        )
    state = f"RetrievedUpdates={retrieved.get('status')} ({retrieved.get('reason', '')})"
    if retrieved.get("status") == "True":
        text = (
            f"{state}, so the update from {current} to {target} is probably neither "
            "recommended nor supported."
        )
    else:
        text = (
            f"{state}, so the recommended status of updating from {current} to {target} is unknown."
        )
    return Failure(name, "UnknownUpdate", text, blocking=False)


def summarize(failures: Sequence[Failure], force: bool) -> tuple[bool, str | None]:
    """(refused, message): any blocking failure refuses the update unless it is forced; warnings
    never do. The message is ReleaseAccepted's detail when refused and (part of) the history
    entry's acceptedRisks when not."""
    if not failures:
        return False, None
    lines = [failure.summary() for failure in failures]
    message = (
        lines[0]
        if len(lines) == 1
        else "Multiple precondition checks failed:\n* " + ("\n* ".join(lines))
    )
    blocking = any(failure.blocking for failure in failures)
    if blocking and force:
        return False, f"Forced through blocking failures: {message}"
    return blocking, message
