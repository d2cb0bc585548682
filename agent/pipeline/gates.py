"""Upgrade gates: checks run before cvsync changes spec.desiredUpdate, each giving a verdict.

Pure: git's desiredUpdate, the live ClusterVersion and the gate settings in, a GateDecision out.
The target must be recommended (or its risks accepted by name), the recommendations current,
the cluster not failing nor already updating elsewhere, the hop one minor at most and allowed
by Upgradeable, never backwards unless asked twice, force only as break-glass on a digest, and
a version-only target is pinned to the digest the cluster lists for it. A new target waits for
a maintenance window; an update the operator has already started is never interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from agent.model.gates import GateDecision, GateRow, GateSettings, Verdict
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION
from agent.model.status import ConditionalTarget, UpdateTarget
from agent.pipeline.diff import covers, forward_reason, is_older, version_key
from agent.pipeline.status_read import (
    available_updates,
    conditional_updates,
    integer,
    mapping,
    mappings,
    text,
)

__all__ = ["GateSettings", "evaluate_gates", "is_digest"]

_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})
_FIELDS = ("version", "image", "architecture")


def is_digest(image: str) -> bool:
    """The image is pinned by digest (`…@sha256:<hex>`), not by a movable tag."""
    return "@sha256:" in image


@dataclass(frozen=True, slots=True)
class _Cluster:
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


def _read(live: Mapping[str, Any]) -> _Cluster:
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
    return _Cluster(
        spec=mapping(live.get("spec")),
        status=status,
        conditions=conditions,
        available=available,
        conditional=conditional_updates(status.get("conditionalUpdates"), available),
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
class _Target:
    """What git asks for, and the release the cluster lists for it."""

    want: Mapping[str, Any]
    version: str  # the release's version when found (the operator ignores git's for an image)
    image: str  # git's, else the listed digest (none for an architecture change)
    release: UpdateTarget | None
    conditional: ConditionalTarget | None

    @property
    def label(self) -> str:
        return self.version or text(self.want.get("image"))


def _clean(update: Mapping[str, Any]) -> dict[str, Any]:
    """desiredUpdate with "" / null fields and `force: false` dropped: they ask for nothing."""
    out: dict[str, Any] = {k: update[k] for k in _FIELDS if update.get(k)}
    if update.get("force") is True:
        out["force"] = True
    return out


def evaluate_gates(
    desired_update: Mapping[str, Any] | None,
    live: Mapping[str, Any],
    settings: GateSettings,
    *,
    now: datetime,
    window_open: bool | None,
    annotations: Mapping[str, str] = _NO_ANNOTATIONS,
    window_note: str = "",
) -> GateDecision:
    """Gate git's `desired_update` against the `live` ClusterVersion.

    `window_open` is True inside a maintenance window, False outside one, None when no
    windows are configured. The action is "none" when git asks for nothing new, "block" when
    any gate blocks, "wait" when only the window holds it back, "apply" otherwise."""
    want = _clean(desired_update) if isinstance(desired_update, Mapping) else {}
    if not (want.get("version") or want.get("image")):
        return _none("NoTarget", "git declares no desiredUpdate target: the cluster's stays")
    cluster = _read(live)
    if covers(want, _clean(mapping(cluster.spec.get("desiredUpdate")))):
        return _none("AlreadyRequested", "the live spec.desiredUpdate already asks for it")
    target = _find(want, cluster)
    version, image = target.version, target.image
    if "architecture" not in want and _same(want, version, cluster.desired):
        return _none("AlreadyTarget", f"the cluster already reconciles towards {target.label}")

    rows: list[GateRow] = []
    hints: list[str] = []
    back = forward_reason({**want, "version": version}, live)
    rollback = _rollback(target, back, cluster, annotations, hints) if back else None
    if rollback is not None and rollback.verdict is Verdict.WARN:
        # The rollback asked for twice is the way out of a bad update: no update service
        # offers it, and a failing or unfinished update is what it is for.
        target, image = _rolled_back(target, cluster)
        rows += _rollback_rows(target, cluster)
    else:
        rows.append(_recommendation(target, cluster, settings, now, hints))
        rows.extend(_freshness(cluster, settings))
        rows.append(_failing(cluster))
        rows.append(_progressing(target, cluster, settings))
    if rollback is not None:
        rows.append(rollback)
    else:
        rows.extend(_hop(version, cluster, settings, hints))
    rows.extend(_overrides(cluster))
    rows.append(_digest(target, settings))
    if want.get("force"):
        rows.append(_force(image, settings, now))
    if window_open is not None:
        rows.append(_window(window_open, window_note))

    resolved: dict[str, Any] = {k: v for k, v in (("version", version), ("image", image)) if v}
    if "architecture" in want:
        resolved["architecture"] = want["architecture"]
    if want.get("force"):
        resolved["force"] = True
    suggestion = "; ".join(hints) or None
    verdicts = {row.verdict for row in rows}
    if Verdict.BLOCK in verdicts:
        return GateDecision("block", tuple(rows), None, suggestion)
    if Verdict.WAIT in verdicts:
        return GateDecision("wait", tuple(rows), resolved, suggestion)
    return GateDecision("apply", tuple(rows), resolved, suggestion)


def _none(reason: str, evidence: str) -> GateDecision:
    return GateDecision("none", (GateRow("change", Verdict.PASS, reason, evidence),))


def _same(want: Mapping[str, Any], version: str, desired: Mapping[str, Any]) -> bool:
    image, there = text(want.get("image")), text(desired.get("image"))
    if image and there:
        return image == there
    return bool(version) and version == text(desired.get("version"))


def _find(want: Mapping[str, Any], cluster: _Cluster) -> _Target:
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
    return _Target(want, found.version if found else version, image or listed, found, conditional)


def _recommendation(
    target: _Target, cluster: _Cluster, settings: GateSettings, now: datetime, hints: list[str]
) -> GateRow:
    gate, label, conditional = "recommended", target.label, target.conditional
    if target.release is not None and target.release in cluster.available:
        return GateRow(gate, Verdict.PASS, "Recommended", f"{label} is in availableUpdates")
    if conditional is not None:
        rec = conditional.recommended or "absent"
        why = f"Recommended={rec}" + (f" ({conditional.reason})" if conditional.reason else "")
        if rec == "True":
            return GateRow(gate, Verdict.PASS, "Recommended", f"{label}: {why}")
        unaccepted, accepted, accepted_names = [], [], set()
        for risk in conditional.risks:
            expiry = settings.accepted_risks.get(risk.name, now)
            listed = risk.name in settings.accepted_risks
            if listed and (expiry is None or expiry > now):
                accepted.append(risk.name + (f" (through {_day_text(expiry)})" if expiry else ""))
                accepted_names.add(risk.name)
                continue
            note = f" [acceptance expired {_day_text(expiry)}]" if listed and expiry else ""
            unaccepted.append(f"{risk.name}: {risk.message} ({risk.url}){note}")
        if not conditional.risks:
            unaccepted.append("the update lists no risk to accept")
        head = f"{label} is a conditional update, {why}"
        if unaccepted:
            names = [r.name for r in conditional.risks if r.name not in accepted_names]
            hints.extend(["accept by name in the policy: " + ", ".join(names)] if names else [])
            evidence = f"{head}; not accepted: " + "; ".join(unaccepted)
            return GateRow(gate, Verdict.BLOCK, "RisksNotAccepted", evidence)
        evidence = f"{head}; accepted: " + ", ".join(accepted)
        return GateRow(gate, Verdict.PASS, "RisksAccepted", evidence)
    evidence = f"{label} is in neither availableUpdates nor conditionalUpdates"
    if settings.allow_not_recommended:
        return GateRow(gate, Verdict.WARN, "NotRecommendedAllowed", evidence)
    return GateRow(gate, Verdict.BLOCK, "NotRecommended", evidence)


def _day_text(moment: datetime) -> str:
    """An expiry as the policy wrote it: a date counts through its last day (UTC)."""
    if (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0):
        return (moment - timedelta(days=1)).date().isoformat()
    return moment.isoformat()


def _rolled_back(target: _Target, cluster: _Cluster) -> tuple[_Target, str]:
    """The rollback target, pinned to the image that version ran with, from history."""
    image = target.image or cluster.images.get(target.version, "")
    return _Target(target.want, target.version, image, target.release, target.conditional), image


def _rollback_rows(target: _Target, cluster: _Cluster) -> list[GateRow]:
    offered = f"{target.label} ran on this cluster before; update services never offer a way back"
    rows = [GateRow("recommended", Verdict.WARN, "RollbackNotOffered", offered)]
    status, detail = cluster.condition("Failing")
    if status == "True":
        evidence = f"Failing=True ({detail}): rolling back is the way out"
        rows.append(GateRow("failing", Verdict.WARN, "RollbackFromFailing", evidence))
    if cluster.updating:
        towards = text(cluster.desired.get("version")) or text(cluster.desired.get("image"))
        evidence = f"the update to {towards} is left for {target.label}"
        rows.append(GateRow("progressing", Verdict.WARN, "RollbackWhileUpdating", evidence))
    return rows


def _freshness(cluster: _Cluster, settings: GateSettings) -> list[GateRow]:
    status, detail = cluster.condition("RetrievedUpdates")
    evidence = f"RetrievedUpdates={status or 'absent'}" + (f" ({detail})" if detail else "")
    stale = Verdict.WARN if settings.allow_not_recommended else Verdict.BLOCK
    rows = [
        GateRow("retrievedUpdates", Verdict.PASS, "RecommendationsCurrent", evidence)
        if status == "True"
        else GateRow("retrievedUpdates", stale, "RecommendationsStale", evidence)
    ]
    if cluster.stale:
        evidence = (
            f"status.observedGeneration {cluster.observed} < metadata.generation "
            f"{cluster.generation}: the operator has not read the latest spec yet, so the "
            "recommendations may be for an older one"
        )
        rows.append(GateRow("observedGeneration", Verdict.WARN, "StatusNotObserved", evidence))
    return rows


def _failing(cluster: _Cluster) -> GateRow:
    status, detail = cluster.condition("Failing")
    if status == "True":
        return GateRow("failing", Verdict.BLOCK, "ClusterFailing", f"Failing=True ({detail})")
    return GateRow("failing", Verdict.PASS, "NotFailing", f"Failing={status or 'absent'}")


def _progressing(target: _Target, cluster: _Cluster, settings: GateSettings) -> GateRow:
    gate = "progressing"
    if not cluster.updating:
        return GateRow(gate, Verdict.PASS, "NotUpdating", "no update is in progress")
    towards = text(cluster.desired.get("version")) or text(cluster.desired.get("image"))
    _, detail = cluster.condition("Progressing")
    evidence = f"the cluster is updating to {towards} ({detail}); git asks for {target.label}"
    if settings.allow_retarget_while_progressing:
        return GateRow(gate, Verdict.WARN, "RetargetWhileProgressing", evidence)
    return GateRow(gate, Verdict.BLOCK, "UpdateInProgress", evidence)


def _minor(version: str) -> tuple[int, int] | None:
    key = version_key(version)
    return (key[0], key[1]) if key else None


def _rollback(
    target_: _Target,
    back: str,
    cluster: _Cluster,
    annotations: Mapping[str, str],
    hints: list[str],
) -> GateRow:
    """Back to an older release only when it is the previous z-stream the cluster ran and the
    document carries cvsync.io/allow-rollback-to equal to its target: asked for twice."""
    target, version = target_.label, target_.version
    # Back from an update under way is to the release it started from; back from a
    # completed one, to the Completed release before it.
    updating_to = text(cluster.desired.get("version")) if cluster.updating else ""
    if updating_to and is_older(cluster.current, updating_to):
        previous, newer = cluster.current, updating_to
    else:
        previous = next((v for v in cluster.completed if is_older(v, cluster.current)), "")
        newer = cluster.current
    z_stream = bool(previous) and _minor(previous) == _minor(newer)
    annotated = annotations.get(ALLOW_ROLLBACK_ANNOTATION) == target
    if annotated and z_stream and version == previous:
        why = f"{ALLOW_ROLLBACK_ANNOTATION}: {target!r} asks for it; {previous} ran before"
        return GateRow("rollback", Verdict.WARN, "RollbackAllowed", f"{back}; {why}")
    if not z_stream or version != previous:
        only = f"only the previous z-stream ({previous})" if z_stream else "no release"
        why = f"{version or target} is not the previous z-stream in history: {only} can be"
        hints.append(f"{why} rolled back to")
    else:
        why = f"the document does not carry {ALLOW_ROLLBACK_ANNOTATION}: {target!r}"
        hints.append(
            f'to roll back on purpose, annotate with {ALLOW_ROLLBACK_ANNOTATION}: "{target}"'
        )
    return GateRow("rollback", Verdict.BLOCK, "RollbackRefused", f"{back}; {why}")


def _hop(
    version: str, cluster: _Cluster, settings: GateSettings, hints: list[str]
) -> list[GateRow]:
    """The hop's size: GiantHop (the operator's precondition), the policy, Upgradeable."""
    here, there = _minor(cluster.current), _minor(version)
    if here is None or there is None:
        evidence = f"cannot compare {version or 'an unknown version'} with {cluster.current!r}"
        return [GateRow("hop", Verdict.WARN, "VersionUnknown", evidence)]
    hop = f"{cluster.current} → {version}"
    kind = "z-stream" if there == here else "minor" if there[0] == here[0] else "major"
    rows: list[GateRow] = []
    if there[0] != here[0] or there[1] > here[1] + 1:
        path = _one_hop_path(here, there, cluster)
        hints.append("update one minor version at a time: " + " → ".join([cluster.current, *path]))
        evidence = f"{hop} crosses more than one minor version: the operator refuses it"
        rows.append(GateRow("giantHop", Verdict.BLOCK, "GiantHop", evidence))
    allowed = {"z-stream": True, "minor": settings.allow_minor, "major": settings.allow_major}
    if allowed[kind]:
        rows.append(GateRow("hop", Verdict.PASS, f"{kind.title().replace('-', '')}Update", hop))
    else:
        reason = f"{kind.title()}UpdatesNotAllowed"
        rows.append(GateRow("hop", Verdict.BLOCK, reason, f"{hop}: the policy forbids it"))
    status, detail = cluster.condition("Upgradeable")
    if status != "False":
        rows.append(
            GateRow("upgradeable", Verdict.PASS, "Upgradeable", f"Upgradeable={status or 'absent'}")
        )
    elif kind == "z-stream" and list(mappings(cluster.spec.get("overrides"))):
        evidence = (
            f"Upgradeable=False ({detail}) with spec.overrides set: the operator refuses even "
            f"the z-stream update {hop} (ClusterVersionOverridesSet) until the overrides go"
        )
        rows.append(GateRow("upgradeable", Verdict.BLOCK, "NotUpgradeable", evidence))
    elif kind == "z-stream":
        evidence = f"Upgradeable=False ({detail}) does not block a z-stream update"
        rows.append(GateRow("upgradeable", Verdict.PASS, "ZStreamUnaffected", evidence))
    else:
        evidence = f"Upgradeable=False blocks the {kind} update {hop}: {detail}"
        rows.append(GateRow("upgradeable", Verdict.BLOCK, "NotUpgradeable", evidence))
    return rows


def _one_hop_path(here: tuple[int, int], there: tuple[int, int], cluster: _Cluster) -> list[str]:
    """The newest offered release of each minor version between, else the minor's name."""
    offered = [r.version for r in cluster.available] + [
        c.release.version for c in cluster.conditional if c.recommended == "True"
    ]
    if there[0] != here[0]:
        steps = [(here[0], here[1] + 1)]
    else:
        steps = [(here[0], minor) for minor in range(here[1] + 1, there[1])]
    path = []
    for step in steps:
        found = [v for v in offered if _minor(v) == step]
        newest = max(found, key=lambda v: version_key(v) or (0, 0, 0, 0, ()), default="")
        path.append(newest or f"{step[0]}.{step[1]} (none offered yet)")
    return path


def _overrides(cluster: _Cluster) -> list[GateRow]:
    overrides = list(mappings(cluster.spec.get("overrides")))
    if not overrides:
        return []
    names = ", ".join(
        f"{o.get('kind')}/{o.get('namespace') or '-'}/{o.get('name')}" for o in overrides
    )
    evidence = (
        f"spec.overrides is set ({names}): while any override is set the operator reports "
        "Upgradeable=False (ClusterVersionOverridesSet), which blocks minor and major updates; "
        "remove the overrides first"
    )
    return [GateRow("overrides", Verdict.WARN, "ClusterVersionOverridesSet", evidence)]


def _digest(target: _Target, settings: GateSettings) -> GateRow:
    want, version, image, release = target.want, target.version, target.image, target.release
    gate, strict = "digest", settings.require_digest
    refused = Verdict.BLOCK if strict else Verdict.WARN
    if want.get("image"):
        if is_digest(image):
            return GateRow(gate, Verdict.PASS, "PinnedByDigest", image)
        return GateRow(gate, refused, "ImageNotPinned", f"{image} is a tag, not @sha256:")
    if "architecture" in want:
        evidence = (
            f"version {version} with architecture {want['architecture']}: the operator picks "
            "the payload for that architecture, so no digest is pinned"
        )
        return GateRow(gate, Verdict.WARN, "ResolvedByOperator", evidence)
    if release is not None and is_digest(image):
        from_conditional = target.conditional and release is target.conditional.release
        where = "conditionalUpdates" if from_conditional else "availableUpdates"
        return GateRow(gate, Verdict.PASS, "ResolvedToDigest", f"{version} → {image} ({where})")
    if is_digest(image):
        return GateRow(gate, Verdict.PASS, "ResolvedToDigest", f"{version} → {image} (history)")
    evidence = f"{version} has no digest in availableUpdates or conditionalUpdates to pin to"
    return GateRow(gate, refused, "DigestNotResolved", evidence)


def _force(image: str, settings: GateSettings, now: datetime) -> GateRow:
    """force skips signature verification: break-glass, time-boxed, on a digest only."""
    until = settings.allow_force_until
    if until is None:
        return GateRow("force", Verdict.BLOCK, "ForceNotAllowed", "the policy does not allow force")
    if until <= now:
        evidence = f"the policy allowed force until {until.isoformat()}"
        return GateRow("force", Verdict.BLOCK, "ForceAllowanceExpired", evidence)
    if not is_digest(image):
        evidence = f"force skips signature verification: {image or 'the target'} must be @sha256:"
        return GateRow("force", Verdict.BLOCK, "ForceNeedsDigest", evidence)
    evidence = f"break-glass until {until.isoformat()}: {image} skips signature verification"
    return GateRow("force", Verdict.WARN, "ForceAllowed", evidence)


def _window(window_open: bool, note: str) -> GateRow:
    if window_open:
        return GateRow(
            "window", Verdict.PASS, "InsideMaintenanceWindow", note or "a window is open"
        )
    evidence = "a new target starts only inside a maintenance window; one started goes on"
    return GateRow(
        "window",
        Verdict.WAIT,
        "OutsideMaintenanceWindow",
        f"{note}: {evidence}" if note else evidence,
    )
