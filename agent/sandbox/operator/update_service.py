"""The simulated update service: an update graph's releases as the sandbox serves them, and the
availableUpdates, conditionalUpdates and conditionalUpdateRisks the CVO publishes from them.

Pure: a graph (agent.upgrade.graph) and the cluster's facts in, ClusterVersion status shapes out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from agent.sandbox.operator.builtin_graph import builtin_graph
from agent.sandbox.operator.releases import Release, release_image, release_url
from agent.sandbox.operator.risks import (
    RECOMMENDED,
    ClusterFacts,
    recommended_condition,
    risk_conditions,
    risk_status,
)
from agent.upgrade.graph import Risk, UpdateGraph

__all__ = ["AcceptRisks", "Recommendations", "UpdateService"]


@dataclass(frozen=True)
class AcceptRisks:
    """ClusterUpdateAcceptRisks at work (TechPreviewNoUpgrade): the risk names the admin accepted
    in spec.desiredUpdate.acceptRisks, and status.conditionalUpdateRisks as last published."""

    accepted: frozenset[str] = frozenset()
    published: tuple[Mapping[str, Any], ...] = ()


class Recommendations(NamedTuple):
    """status.availableUpdates (None when empty, as the CVO writes it) and conditionalUpdates."""

    available: list[dict[str, Any]] | None
    conditional: list[dict[str, Any]]
    # status.conditionalUpdateRisks; only with ClusterUpdateAcceptRisks.
    risks: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class UpdateService:
    """The update service a simulated cluster asks: `graph` with the sandbox's own images."""

    graph: UpdateGraph
    releases: Mapping[str, Release] = field(init=False)

    def __post_init__(self) -> None:
        members: dict[str, list[str]] = {}
        for channel, versions in self.graph.channels.items():
            for version in versions:
                members.setdefault(version, []).append(channel)
        releases = {
            version: Release(
                version, release_image(version), release_url(version), tuple(sorted(c))
            )
            for version, c in members.items()
        }
        object.__setattr__(self, "releases", releases)

    @classmethod
    def builtin(cls) -> UpdateService:
        """The service over the sandbox's own small graph (builtin_graph)."""
        return cls(builtin_graph())

    def release(self, version: str) -> Release | None:
        return self.releases.get(version)

    def release_by_image(self, image: str) -> Release | None:
        return next((r for r in self.releases.values() if r.image == image), None)

    def in_channel(self, channel: str, version: str) -> bool:
        return self.graph.in_channel(channel, version)

    def edges(self, source: str, channel: str) -> list[tuple[Release, tuple[Risk, ...]]]:
        """The channel's edges out of `source`, newest first, with the risks on each."""
        return [(self.releases[v], risks) for v, risks in self.graph.edges(source, channel)]

    def recommend(
        self,
        version: str,
        channel: str,
        facts: ClusterFacts,
        *,
        now: str,
        previous: Sequence[Mapping[str, Any]] = (),
        accept_risks: AcceptRisks | None = None,
    ) -> Recommendations:
        """availableUpdates and conditionalUpdates as the CVO publishes them for this cluster.

        Recommended conditional updates are listed in both, as the CVO does. `previous` is the
        stored conditionalUpdates, whose lastTransitionTimes survive while a status holds. With
        `accept_risks` (ClusterUpdateAcceptRisks) accepted risks count as not applying, each
        conditional update names its risks (riskNames) and every risk carries its Applies
        condition, also listed once in status.conditionalUpdateRisks.
        """
        accepted = accept_risks.accepted if accept_risks is not None else frozenset()
        available: list[dict[str, Any]] = []
        conditional: list[tuple[dict[str, Any], tuple[Risk, ...]]] = []
        for release, risks in self.edges(version, channel):
            if not risks:
                available.append(release.as_status())
                continue
            condition = recommended_condition(risks, facts, accepted)
            old = _previous_recommended(previous, release.version)
            keep = old is not None and old.get("status") == condition["status"]
            condition["lastTransitionTime"] = old["lastTransitionTime"] if keep and old else now
            conditions = [dict(sorted(condition.items()))]
            conditional.append(({"conditions": conditions, "release": release.as_status()}, risks))
            if condition["status"] == "True":
                available.append(release.as_status())
        if accept_risks is None:
            plain = [e | {"risks": [risk_status(r) for r in risks]} for e, risks in conditional]
            return Recommendations(available or None, plain)
        every = {risk.name: risk for _, risks in conditional for risk in risks}
        applies = risk_conditions(every.values(), facts, now=now, previous=accept_risks.published)

        def rendered(risk: Risk) -> dict[str, Any]:
            # A copy each time: the same risk appears under several updates.
            conditions = [dict(applies[risk.name])]
            return dict(sorted((risk_status(risk) | {"conditions": conditions}).items()))

        named = [
            entry | {"riskNames": [r.name for r in risks], "risks": [rendered(r) for r in risks]}
            for entry, risks in conditional
        ]
        listed = tuple(rendered(every[name]) for name in sorted(every))
        return Recommendations(available or None, named, listed)


def _previous_recommended(
    previous: Sequence[Mapping[str, Any]], version: str
) -> Mapping[str, Any] | None:
    for entry in previous:
        if (entry.get("release") or {}).get("version") == version:
            for condition in entry.get("conditions") or ():
                if condition.get("type") == RECOMMENDED:
                    return dict(condition)
    return None
