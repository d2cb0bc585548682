"""Values of the sandbox's update graph: releases, risks with their matching rules, blocked
edges, and the facts a cluster's PromQL rules would report.

Pure data; each value renders itself in the ClusterVersion status shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ALWAYS = "Always"
PROMQL = "PromQL"


@dataclass(frozen=True, slots=True)
class MatchingRule:
    type: str
    promql: str = ""

    def as_status(self) -> dict[str, Any]:
        if self.type == PROMQL:
            return {"promql": {"promql": self.promql}, "type": PROMQL}
        return {"type": self.type}


@dataclass(frozen=True, slots=True)
class Risk:
    name: str
    message: str
    url: str
    matching_rules: tuple[MatchingRule, ...]

    def as_status(self) -> dict[str, Any]:
        return {
            "matchingRules": [rule.as_status() for rule in self.matching_rules],
            "message": self.message,
            "name": self.name,
            "url": self.url,
        }


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


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    image: str
    url: str
    channels: tuple[str, ...]

    def as_status(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "image": self.image,
            "url": self.url,
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """What the cluster's PromQL rules would return: risk name -> matches, or an evaluation error.

    Risks absent from both tables do not match; Always rules match regardless.
    """

    matches: Mapping[str, bool] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)

    def exposure(self, risk: Risk) -> bool | None:
        """True when the risk applies, False when not, None when evaluating it failed."""
        if any(rule.type == ALWAYS for rule in risk.matching_rules):
            return True
        if risk.name in self.failures:
            return None
        return bool(self.matches.get(risk.name, False))
