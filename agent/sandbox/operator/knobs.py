"""The knobs a sandbox scenario turns on the simulated cluster: failures, slowness, an unreachable
update service, PromQL facts, an Upgradeable=False block, releases whose signatures cannot be
verified, and the accept-risks block; read from scenario YAML.

Pure values; from_mapping refuses unknown keys so that a misspelt knob is not silently ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model.versions import parse_version
from agent.sandbox.operator.risks import ClusterFacts


@dataclass(frozen=True, slots=True)
class UpgradeableBlock:
    """Upgradeable=False as an admin-ack gate or a not-upgradeable ClusterOperator would set it.

    while_at ("4.15") limits it to clusters whose current version has that major.minor, as
    admin-ack gates apply only to the minor they guard.
    """

    reason: str
    message: str
    while_at: str | None = None

    @property
    def condition_type(self) -> str:
        """The Upgradeable* sub-condition the CVO reports it under when there are several."""
        if self.reason == "AdminAckRequired":
            return "UpgradeableAdminAckRequired"
        return "UpgradeableClusterOperators"

    def applies_to(self, current_version: str) -> bool:
        if self.while_at is None:
            return True
        parsed = parse_version(current_version)
        return parsed is not None and f"{parsed.major}.{parsed.minor}" == self.while_at


@dataclass(frozen=True, slots=True)
class ScenarioKnobs:
    failing_update: bool = False
    # Versions whose updates fail; empty means every update fails while failing_update is on.
    failing_targets: tuple[str, ...] = ()
    failing_operator: str = "kube-apiserver"
    slow_worker_pools: bool = False
    update_service_unreachable: bool = False
    facts: ClusterFacts = field(default_factory=ClusterFacts)
    upgradeable_false: UpgradeableBlock | None = None
    # Releases whose signature the operator cannot verify: refused (RetrievePayload) unless
    # forced, and then taken with verified: false.
    unverified_releases: tuple[str, ...] = ()
    # ClusterUpdateAcceptRisks as the API documents it (TechPreviewNoUpgrade clusters only): a
    # conditional update whose applying risks are not all named in
    # spec.desiredUpdate.acceptRisks is refused unless forced. The CVO source read so far only
    # warns, as it does for every target that is not recommended.
    block_unaccepted_risks: bool = False

    def fails(self, version: str) -> bool:
        return self.failing_update and (not self.failing_targets or version in self.failing_targets)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ScenarioKnobs:
        """Knobs from scenario YAML (camelCase keys, all optional)."""
        data = dict(data or {})
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"unknown scenario knobs: {', '.join(sorted(unknown))}")
        block = data.get("upgradeableFalse")
        return cls(
            failing_update=bool(data.get("failingUpdate", False)),
            failing_targets=tuple(str(v) for v in data.get("failingTargets") or ()),
            failing_operator=str(data.get("failingOperator", "kube-apiserver")),
            slow_worker_pools=bool(data.get("slowWorkerPools", False)),
            update_service_unreachable=bool(data.get("updateServiceUnreachable", False)),
            facts=ClusterFacts(
                {str(k): bool(v) for k, v in (data.get("facts") or {}).items()},
                {str(k): str(v) for k, v in (data.get("factFailures") or {}).items()},
            ),
            upgradeable_false=_block(block) if block else None,
            unverified_releases=tuple(str(v) for v in data.get("unverifiedReleases") or ()),
            block_unaccepted_risks=bool(data.get("blockUnacceptedRisks", False)),
        )


_KEYS = {
    "failingUpdate",
    "failingTargets",
    "failingOperator",
    "slowWorkerPools",
    "updateServiceUnreachable",
    "facts",
    "factFailures",
    "upgradeableFalse",
    "unverifiedReleases",
    "blockUnacceptedRisks",
}


def _block(data: Mapping[str, Any]) -> UpgradeableBlock:
    while_at = data.get("whileAt")
    if while_at is not None and not isinstance(while_at, str):
        # Unquoted, YAML reads 4.10 as the float 4.1.
        raise ValueError(
            f'upgradeableFalse.whileAt must be a quoted string such as "4.15", not {while_at!r}'
        )
    return UpgradeableBlock(
        str(data["reason"]), str(data["message"]), str(while_at) if while_at else None
    )
