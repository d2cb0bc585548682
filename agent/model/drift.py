"""Drift between the spec in git and the live ClusterVersion, field by field.

Pure data produced by `sync.diff` and read by plan, report and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DriftKind(StrEnum):
    CHANGED = "changed"  # both sides have the field, with different values
    MISSING = "missing"  # git declares it, the cluster does not have it
    FORWARD = "forward"  # the cluster runs or targets a newer version than git asks for
    EXTRA = "extra"  # git no longer declares it, cvsync alone owns it: the next apply drops it


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One drifted field: its API path (overrides keyed, never indexed), both values, the
    field manager that owns the live value (from managedFields), when known, and whose
    change it is."""

    path: str  # e.g. .spec.channel or .spec.overrides[kind=Deployment,group=apps,...]
    desired: Any
    live: Any
    kind: DriftKind
    owner: str | None = None
    owner_since: str | None = None  # the owner entry's time, RFC 3339
    detail: str = ""  # why, in words: e.g. which version the cluster runs for forward drift
    # git changed the field since cvsync last carried git's spec out: applying it is git's own
    # change, not drift taken back from whoever set the live value.
    by_git: bool = False


@dataclass(frozen=True, slots=True)
class Drift:
    items: tuple[DriftItem, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.items)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(item.path for item in self.items)
