"""Reading a live ClusterVersion status without trusting its shape, and its update targets:
availableUpdates and conditionalUpdates, each release once, newest first, matched to each other.

Pure: raw JSON values in, model values out; anything absent, null or mistyped reads as "not said".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from agent.model.status import ConditionalTarget, Risk, UpdateTarget
from agent.model.versions import VersionKey, version_key


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def mappings(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, Mapping))


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def texts(value: Any) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _release(raw: Mapping[str, Any]) -> UpdateTarget:
    return UpdateTarget(
        version=text(raw.get("version")),
        image=text(raw.get("image")),
        url=text_or_none(raw.get("url")) or None,
        channels=texts(raw.get("channels")),
    )


class _Releases:
    """Finds a release among others: by image, or by version when either side has no image
    (an image names a release exactly; the same version may come as several images)."""

    def __init__(self, targets: Iterable[UpdateTarget]) -> None:
        self.images: set[str] = set()
        self.versions: set[str] = set()  # of every release
        self.imageless: set[str] = set()  # versions of releases given without an image
        for target in targets:
            self.add(target)

    def add(self, target: UpdateTarget) -> None:
        if target.image:
            self.images.add(target.image)
        else:
            self.imageless.add(target.version)
        self.versions.add(target.version)

    def __contains__(self, target: UpdateTarget) -> bool:
        if target.image:
            return target.image in self.images or (
                bool(target.version) and target.version in self.imageless
            )
        return bool(target.version) and target.version in self.versions


def _order(target: UpdateTarget) -> tuple[int, VersionKey | tuple[()], str, str]:
    """Sorted with reverse=True: semantic versions first, newest first; then the rest."""
    key = version_key(target.version)
    return (1, key, target.version, target.image) if key else (0, (), target.version, target.image)


def _unique(targets: Iterable[UpdateTarget]) -> list[UpdateTarget]:
    """Each release once, the first mention winning; entries naming nothing are dropped."""
    seen = _Releases(())
    out: list[UpdateTarget] = []
    for target in targets:
        if (target.version or target.image) and target not in seen:
            seen.add(target)
            out.append(target)
    return out


def available_updates(raw: Any) -> tuple[UpdateTarget, ...]:
    """availableUpdates (a list, null or absent) as releases, each once, newest first."""
    targets = _unique(_release(entry) for entry in mappings(raw))
    return tuple(sorted(targets, key=_order, reverse=True))


def shows_accept_risks(live: Mapping[str, Any]) -> bool:
    """A saved object proves its CRD has ClusterUpdateAcceptRisks' fields when it holds one
    (spec.desiredUpdate.acceptRisks, status.conditionalUpdateRisks, a risk's conditions): an
    API server drops what its schema does not declare. Absence proves nothing."""
    spec, status = mapping(live.get("spec")), mapping(live.get("status"))
    if "acceptRisks" in mapping(spec.get("desiredUpdate")) or "conditionalUpdateRisks" in status:
        return True
    return any(
        "conditions" in risk
        for update in mappings(status.get("conditionalUpdates"))
        for risk in mappings(update.get("risks"))
    )


def update_risks(raw: Any) -> tuple[Risk, ...]:
    """status.conditionalUpdateRisks (ClusterUpdateAcceptRisks): each risk once, with its
    Applies condition."""
    return tuple(_risk(entry) for entry in mappings(raw))


def conditional_updates(
    raw: Any, available: tuple[UpdateTarget, ...], risks: Any = None
) -> tuple[ConditionalTarget, ...]:
    """Each conditional release once, newest first, flagged when availableUpdates lists it
    (the operator lists a conditional update there once it recommends it). `risks` is
    status.conditionalUpdateRisks, where a risk's Applies condition is kept, and what an entry
    that only names its risks (riskNames) refers to."""
    table = {risk.name: risk for risk in update_risks(risks)}
    listed = _Releases(available)
    entries = [(_release(mapping(e.get("release"))), e) for e in mappings(raw)]
    releases = {id(release) for release in _unique(release for release, _ in entries)}
    out: list[ConditionalTarget] = []
    for release, entry in entries:
        if id(release) not in releases:
            continue
        recommended = next(
            (c for c in mappings(entry.get("conditions")) if c.get("type") == "Recommended"),
            None,
        )
        rec = mapping(recommended)
        out.append(
            ConditionalTarget(
                release=release,
                risks=_entry_risks(entry, table),
                recommended=text(rec.get("status")),
                reason=text_or_none(rec.get("reason")) or None,
                message=text_or_none(rec.get("message")) or None,
                available=release in listed,
            )
        )
    return tuple(sorted(out, key=lambda c: _order(c.release), reverse=True))


def _entry_risks(entry: Mapping[str, Any], table: Mapping[str, Risk]) -> tuple[Risk, ...]:
    listed = [_risk(r) for r in mappings(entry.get("risks"))]
    if not listed:
        listed = [table[name] for name in texts(entry.get("riskNames")) if name in table]
    return tuple(
        replace(risk, applies=table[risk.name].applies)
        if not risk.applies and risk.name in table
        else risk
        for risk in listed
    )


def _risk(raw: Mapping[str, Any]) -> Risk:
    applies = next((c for c in mappings(raw.get("conditions")) if c.get("type") == "Applies"), {})
    return Risk(
        name=text(raw.get("name")),
        message=text(raw.get("message")),
        url=text(raw.get("url")),
        rules=tuple(text(rule.get("type")) for rule in mappings(raw.get("matchingRules"))),
        applies=text(applies.get("status")),
    )
