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
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from agent.model.gates import GateDecision, GateRow, GateSettings, Verdict
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION
from agent.model.versions import is_older, version_key
from agent.sync.diff import covers, forward_reason
from agent.upgrade.gate_inputs import (
    ClusterView,
    TargetView,
    clean_update,
    find_target,
    is_digest,
    minor_of,
    read_cluster,
    same_target,
)
from agent.upgrade.status_read import mapping, mappings, text

__all__ = ["GateSettings", "evaluate_gates", "is_digest"]

_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


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
    want = clean_update(desired_update) if isinstance(desired_update, Mapping) else {}
    if not (want.get("version") or want.get("image")):
        return _none("NoTarget", "git declares no desiredUpdate target: the cluster's stays")
    cluster = read_cluster(live)
    if covers(want, clean_update(mapping(cluster.spec.get("desiredUpdate")))):
        return _none("AlreadyRequested", "the live spec.desiredUpdate already asks for it")
    target = find_target(want, cluster)
    version, image = target.version, target.image
    if "architecture" not in want and same_target(want, version, cluster.desired):
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
        rows.append(_force(image, settings, now, hints))
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


def _recommendation(
    target: TargetView,
    cluster: ClusterView,
    settings: GateSettings,
    now: datetime,
    hints: list[str],
) -> GateRow:
    gate, label, conditional = "recommended", target.label, target.conditional
    if target.release is not None and target.release in cluster.available:
        return GateRow(gate, Verdict.PASS, "Recommended", f"{label} is in availableUpdates")
    if conditional is not None:
        rec = conditional.recommended or "absent"
        why = f"Recommended={rec}" + (f" ({conditional.reason})" if conditional.reason else "")
        if rec == "True":
            return GateRow(gate, Verdict.PASS, "Recommended", f"{label}: {why}")
        unaccepted, accepted, accepted_names, clear = [], [], set(), []
        for risk in conditional.risks:
            if risk.applies == "False":
                # The operator says it does not apply here (its Applies condition, published
                # with ClusterUpdateAcceptRisks): nothing to accept.
                clear.append(risk.name)
                accepted_names.add(risk.name)
                continue
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
        parts = [f"accepted: {', '.join(accepted)}"] if accepted else []
        parts += [f"not applying (Applies=False): {', '.join(clear)}"] if clear else []
        evidence = f"{head}; " + "; ".join(parts)
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


def _rolled_back(target: TargetView, cluster: ClusterView) -> tuple[TargetView, str]:
    """The rollback target, pinned to the image that version ran with, from history."""
    image = target.image or cluster.images.get(target.version, "")
    return TargetView(target.want, target.version, image, target.release, target.conditional), image


def _rollback_rows(target: TargetView, cluster: ClusterView) -> list[GateRow]:
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


def _freshness(cluster: ClusterView, settings: GateSettings) -> list[GateRow]:
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


def _failing(cluster: ClusterView) -> GateRow:
    status, detail = cluster.condition("Failing")
    if status == "True":
        return GateRow("failing", Verdict.BLOCK, "ClusterFailing", f"Failing=True ({detail})")
    return GateRow("failing", Verdict.PASS, "NotFailing", f"Failing={status or 'absent'}")


def _progressing(target: TargetView, cluster: ClusterView, settings: GateSettings) -> GateRow:
    gate = "progressing"
    if not cluster.updating:
        return GateRow(gate, Verdict.PASS, "NotUpdating", "no update is in progress")
    towards = text(cluster.desired.get("version")) or text(cluster.desired.get("image"))
    _, detail = cluster.condition("Progressing")
    evidence = f"the cluster is updating to {towards} ({detail}); git asks for {target.label}"
    if settings.allow_retarget_while_progressing:
        return GateRow(gate, Verdict.WARN, "RetargetWhileProgressing", evidence)
    return GateRow(gate, Verdict.BLOCK, "UpdateInProgress", evidence)


def _rollback(
    target_: TargetView,
    back: str,
    cluster: ClusterView,
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
    z_stream = bool(previous) and minor_of(previous) == minor_of(newer)
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
    version: str, cluster: ClusterView, settings: GateSettings, hints: list[str]
) -> list[GateRow]:
    """The hop's size: GiantHop (the operator's precondition), the policy, Upgradeable."""
    here, there = minor_of(cluster.current), minor_of(version)
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


def _one_hop_path(here: tuple[int, int], there: tuple[int, int], cluster: ClusterView) -> list[str]:
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
        found = [v for v in offered if minor_of(v) == step]
        newest = max(found, key=lambda v: version_key(v) or (0, 0, 0, 0, ()), default="")
        path.append(newest or f"{step[0]}.{step[1]} (none offered yet)")
    return path


def _overrides(cluster: ClusterView) -> list[GateRow]:
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


def _digest(target: TargetView, settings: GateSettings) -> GateRow:
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


def _force(image: str, settings: GateSettings, now: datetime, hints: list[str]) -> GateRow:
    """force skips signature verification: break-glass, time-boxed, on a digest only."""
    until = settings.allow_force_until
    if until is None:
        return GateRow("force", Verdict.BLOCK, "ForceNotAllowed", "the policy does not allow force")
    if until <= now:
        written = settings.allow_force_written or until.isoformat()
        evidence = f"allowForce has expired: the policy allowed force until {written}"
        hints.append(
            "to force again, set a new allowForce.until and reason in the policy; "
            "otherwise remove force: true from desiredUpdate"
        )
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
