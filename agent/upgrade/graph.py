"""The update graph as cincinnati-graph-data describes it: channels, blocked edges with their
conditional risks, and the edges a release may take (in SemVer order, from model.versions).

Pure apart from UpdateGraph.load, which reads graph-data's YAML files and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agent.model.versions import parse_version, version_sort_key

__all__ = [
    "ALWAYS",
    "PROMQL",
    "BlockedEdge",
    "MatchingRule",
    "Risk",
    "UpdateGraph",
    "blocked_edge_from_doc",
]

ALWAYS = "Always"
PROMQL = "PromQL"

# --- the graph's values ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchingRule:
    type: str
    promql: str = ""


@dataclass(frozen=True, slots=True)
class Risk:
    name: str
    message: str
    url: str
    matching_rules: tuple[MatchingRule, ...]


@dataclass(frozen=True, slots=True)
class BlockedEdge:
    """One blocked-edges file: a risk on edges into `to`, or (risk None) an unconditional block."""

    to: str
    from_pattern: str
    risk: Risk | None = None
    fixed_in: str | None = None

    def applies(self, source: str, target: str) -> bool:
        if target != self.to:
            return False
        # graph-data matches against the version with its architecture suffix when there is one.
        pattern = re.compile(self.from_pattern)
        return any(pattern.fullmatch(text) for text in (source, f"{source}+amd64"))


# --- the graph ---------------------------------------------------------------------------------


def _newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=version_sort_key, reverse=True)


@dataclass(frozen=True)
class UpdateGraph:
    """Channels (name -> the versions it lists) and the blocked edges between releases."""

    channels: Mapping[str, tuple[str, ...]]
    blocked_edges: tuple[BlockedEdge, ...] = ()

    @classmethod
    def from_data(
        cls, channels: Mapping[str, Iterable[str]], blocked_edges: Iterable[BlockedEdge] = ()
    ) -> UpdateGraph:
        return cls(
            {name: tuple(versions) for name, versions in channels.items()}, tuple(blocked_edges)
        )

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

    def in_channel(self, channel: str, version: str) -> bool:
        return version in self.channels.get(channel, ())

    def edges(self, source: str, channel: str) -> list[tuple[str, tuple[Risk, ...]]]:
        """The channel's edges out of `source` (a z-stream or the next minor), newest first,
        with the risks on each; an unconditionally blocked edge is not there at all."""
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
            found.append((version, tuple(risks)))
        return found


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
