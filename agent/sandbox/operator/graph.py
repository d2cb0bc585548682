"""The update graph behind the simulated update service: releases, channels, edges, and the
conditional risks of cincinnati-graph-data's blocked-edges, rendered in ClusterVersion's shape.

Pure apart from UpdateGraph.load, which reads graph-data YAML files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml import YAML

from agent.sandbox.operator.graph_builtin import BUILTIN_BLOCKED_EDGES, BUILTIN_CHANNELS
from agent.sandbox.operator.graph_risks import (
    RECOMMENDED,
    recommended_condition,
    risk_conditions,
)
from agent.sandbox.operator.graph_types import (
    PROMQL,
    BlockedEdge,
    ClusterFacts,
    MatchingRule,
    Release,
    Risk,
)
from agent.sandbox.operator.versions import parse_version, release_image, version_sort_key

__all__ = [
    "AcceptRisks",
    "BlockedEdge",
    "ClusterFacts",
    "MatchingRule",
    "Recommendations",
    "Release",
    "Risk",
    "UpdateGraph",
    "blocked_edge_from_doc",
    "recommended_condition",
]


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


def release_url(version: str) -> str:
    return f"https://releases.sandbox.invalid/errata/{version}"


def _newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=version_sort_key, reverse=True)


@dataclass(frozen=True)
class UpdateGraph:
    channels: Mapping[str, tuple[str, ...]]
    blocked_edges: tuple[BlockedEdge, ...] = ()
    releases: Mapping[str, Release] = field(init=False)

    def __post_init__(self) -> None:
        members: dict[str, list[str]] = {}
        for channel, versions in self.channels.items():
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
    def from_data(
        cls, channels: Mapping[str, Iterable[str]], blocked_edges: Iterable[BlockedEdge] = ()
    ) -> UpdateGraph:
        return cls(
            {name: tuple(versions) for name, versions in channels.items()}, tuple(blocked_edges)
        )

    @classmethod
    def builtin(cls) -> UpdateGraph:
        """Our own small graph: 4.15.x-4.17.x on candidate/fast/stable/eus, with a few risks."""
        return cls.from_data(BUILTIN_CHANNELS, BUILTIN_BLOCKED_EDGES)

    @classmethod
    def load(cls, channels_dir: Path, blocked_edges_dir: Path) -> UpdateGraph:
        """Reads cincinnati-graph-data's channels/*.yaml and blocked-edges/*.yaml."""
        yaml = YAML(typ="safe")
        channels: dict[str, list[str]] = {}
        for path in sorted(channels_dir.glob("*.yaml")):
            doc = yaml.load(path.read_text(encoding="utf-8"))
            channels[str(doc["name"])] = [str(v) for v in doc.get("versions") or ()]
        blocked = [
            blocked_edge_from_doc(yaml.load(path.read_text(encoding="utf-8")))
            for path in sorted(blocked_edges_dir.glob("*.yaml"))
        ]
        return cls.from_data(channels, blocked)

    def release(self, version: str) -> Release | None:
        return self.releases.get(version)

    def release_by_image(self, image: str) -> Release | None:
        return next((r for r in self.releases.values() if r.image == image), None)

    def in_channel(self, channel: str, version: str) -> bool:
        return version in self.channels.get(channel, ())

    def edges(self, source: str, channel: str) -> list[tuple[Release, tuple[Risk, ...]]]:
        """The channel's edges out of `source`, newest first, with the risks on each."""
        origin = parse_version(source)
        if origin is None or not self.in_channel(channel, source):
            return []
        found = []
        for version in _newest_first(self.channels[channel]):
            target = parse_version(version)
            if target is None or target <= origin or target.major != origin.major:
                continue
            if target.minor not in (origin.minor, origin.minor + 1):
                continue
            matching = [b for b in self.blocked_edges if b.applies(source, version)]
            if any(b.risk is None for b in matching):
                continue
            risks = sorted({b.risk for b in matching if b.risk}, key=lambda r: r.name)
            found.append((self.releases[version], tuple(risks)))
        return found

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
            plain = [e | {"risks": [r.as_status() for r in risks]} for e, risks in conditional]
            return Recommendations(available or None, plain)
        every = {risk.name: risk for _, risks in conditional for risk in risks}
        applies = risk_conditions(every.values(), facts, now=now, previous=accept_risks.published)

        def rendered(risk: Risk) -> dict[str, Any]:
            # A copy each time: the same risk appears under several updates.
            conditions = [dict(applies[risk.name])]
            return dict(sorted((risk.as_status() | {"conditions": conditions}).items()))

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


def blocked_edge_from_doc(doc: Mapping[str, Any]) -> BlockedEdge:
    """One blocked-edges document; legacy ones carry only `to` and `from`."""
    rules = tuple(_matching_rule(rule) for rule in doc.get("matchingRules") or ())
    risk = None
    if doc.get("name"):
        risk = Risk(str(doc["name"]), str(doc.get("message", "")), str(doc.get("url", "")), rules)
    fixed_in = doc.get("fixedIn")
    return BlockedEdge(str(doc["to"]), str(doc["from"]), risk, str(fixed_in) if fixed_in else None)


def _matching_rule(rule: Mapping[str, Any]) -> MatchingRule:
    kind = str(rule["type"])
    if kind == PROMQL:
        return MatchingRule(PROMQL, str((rule.get("promql") or {}).get("promql", "")))
    return MatchingRule(kind)
