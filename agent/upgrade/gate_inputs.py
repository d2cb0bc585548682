"""What the upgrade gates read: a view of the live ClusterVersion (conditions, update lists,
history) and of the release git targets, found in those lists.

Pure: raw JSON values in, read-only views out, for `upgrade.gates`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.model.status import ConditionalTarget, UpdateTarget
from agent.model.versions import version_key
from agent.upgrade.status_read import (
    available_updates,
    conditional_updates,
    integer,
    mapping,
    mappings,
    text,
)

_FIELDS = ("version", "image", "architecture")


def is_digest(image: str) -> bool:
    """The image is pinned by digest (`…@sha256:<hex>`), not by a movable tag."""
    return "@sha256:" in image


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What the gates read from the live object."""

    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    conditions: Mapping[str, Mapping[str, Any]]
    available: tuple[UpdateTarget, ...]
    conditional: tuple[ConditionalTarget, ...]
    completed: tuple[str, ...]  # versions of Completed history entries, newest first
    images: Mapping[str, str]  # the image each Completed version ran, from history
    current: str  # the latest Completed version (status.desired's while installing)
    updating: bool
    generation: int | None
    observed: int | None

    @property
    def desired(self) -> Mapping[str, Any]:
        return mapping(self.status.get("desired"))

    @property
    def stale(self) -> bool:
        return self.observed is not None and (self.generation or 0) > self.observed

    def condition(self, type_: str) -> tuple[str, str]:
        """(status, "reason: message") of a condition; ("", "absent") when there is none."""
        cond = self.conditions.get(type_)
        if cond is None:
            return "", "absent"
        reason, message = text(cond.get("reason")), text(cond.get("message")).strip()
        return text(cond.get("status")), ": ".join(part for part in (reason, message) if part)


def read_cluster(live: Mapping[str, Any]) -> ClusterView:
    status = mapping(live.get("status"))
    history = list(mappings(status.get("history")))
    completed = tuple(
        text(e.get("version"))
        for e in history
        if e.get("state") == "Completed" and e.get("version")
    )
    conditions = {text(c.get("type")): c for c in mappings(status.get("conditions"))}
    progressing = text(conditions.get("Progressing", {}).get("status")) == "True"
    available = available_updates(status.get("availableUpdates"))
    return ClusterView(
        spec=mapping(live.get("spec")),
        status=status,
        conditions=conditions,
        available=available,
        conditional=conditional_updates(
            status.get("conditionalUpdates"), available, status.get("conditionalUpdateRisks")
        ),
        completed=completed,
        images={
            text(e.get("version")): text(e.get("image"))
            for e in reversed(history)
            if e.get("state") == "Completed" and is_digest(text(e.get("image")))
        },
        current=completed[0] if completed else text(mapping(status.get("desired")).get("version")),
        updating=progressing or bool(history and history[0].get("state") == "Partial"),
        generation=integer(mapping(live.get("metadata")).get("generation")),
        observed=integer(status.get("observedGeneration")),
    )


@dataclass(frozen=True, slots=True)
class TargetView:
    """What git asks for, and the release the cluster lists for it."""

    want: Mapping[str, Any]
    version: str  # the release's version when found (the operator ignores git's for an image)
    image: str  # git's, else the listed digest (none for an architecture change)
    release: UpdateTarget | None
    conditional: ConditionalTarget | None

    @property
    def label(self) -> str:
        return self.version or text(self.want.get("image"))


def clean_update(update: Mapping[str, Any]) -> dict[str, Any]:
    """desiredUpdate with "" / null fields and `force: false` dropped: they ask for nothing."""
    out: dict[str, Any] = {k: update[k] for k in _FIELDS if update.get(k)}
    if update.get("force") is True:
        out["force"] = True
    return out


def same_target(want: Mapping[str, Any], version: str, desired: Mapping[str, Any]) -> bool:
    image, there = text(want.get("image")), text(desired.get("image"))
    if image and there:
        return image == there
    return bool(version) and version == text(desired.get("version"))


def find_target(want: Mapping[str, Any], cluster: ClusterView) -> TargetView:
    """The release git names, from availableUpdates first, then conditionalUpdates: by image
    when git gives one (the operator ignores the version then), else by version."""
    image, version = text(want.get("image")), text(want.get("version"))

    def matches(release: UpdateTarget) -> bool:
        return release.image == image if image else release.version == version

    found = next((r for r in cluster.available if matches(r)), None)
    conditional = next((c for c in cluster.conditional if matches(c.release)), None)
    if found is None and conditional is not None:
        found = conditional.release
    listed = found.image if found and "architecture" not in want else ""
    return TargetView(
        want, found.version if found else version, image or listed, found, conditional
    )


def minor_of(version: str) -> tuple[int, int] | None:
    key = version_key(version)
    return (key[0], key[1]) if key else None
