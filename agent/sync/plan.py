"""Turn drift into what one cycle writes: the server-side apply body, or why nothing is written.

Pure: the cycle's desired state, the live object and its drift in, an ApplyPlan out. It never writes
status, never changes clusterID, and never heals the cluster toward an older release.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Literal

from agent.model.clusterversion_api import ACCEPT_RISKS, API_VERSION, KIND, OBJECT_NAME
from agent.model.desired import DesiredState
from agent.model.drift import Drift, DriftItem, DriftKind
from agent.model.gates import UpgradeCheck
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION, ApplyPlan, PlanReason
from agent.model.policy import DriftActions
from agent.spec.normalize import live_spec, whole_desired_update
from agent.sync.diff import DESIRED_UPDATE, FIELD_MANAGER, owned_risk_names, pinned_update
from agent.sync.drift_policy import keep_live_values, reported_by_policy, spec_field
from agent.sync.owners import owned_leaves, owner_of

Mode = Literal["enforce", "observe"]
_DESIRED_UPDATE_PATH = f".spec.{DESIRED_UPDATE}"


def plan_apply(
    desired: DesiredState,
    live_obj: dict[str, Any] | None,
    drift: Drift,
    *,
    mode: Mode,
    field_manager: str = FIELD_MANAGER,
    upgrade: UpgradeCheck | None = None,
    drift_actions: DriftActions | None = None,
) -> ApplyPlan:
    """Decide what to write for `drift`; see the module docstring for what is never written.

    `upgrade` is the gates' decision on git's desiredUpdate: a blocked or waiting target is
    held (reported) while the rest of the spec is applied; an allowed one is applied as the
    gates resolved it (version and digest). `drift_actions` is the policy's correct/report
    choice per field."""
    spec = desired.spec
    if live_obj is None:
        # The installer creates ClusterVersion/version; without it there is no clusterID to
        # check the git file against, so cvsync creates nothing.
        return ApplyPlan(
            None,
            PlanReason.CLUSTER_VERSION_NOT_FOUND,
            "ClusterVersion/version does not exist on this cluster; cvsync never creates it",
            reported=drift.paths,
        )
    git_id, live_id = spec.get("clusterID"), live_spec(live_obj).get("clusterID")
    if git_id != live_id:
        return ApplyPlan(
            None,
            PlanReason.CLUSTER_ID_MISMATCH,
            f"git declares clusterID {git_id!r} but this cluster's clusterID is {live_id!r}: "
            "the file is for another cluster, nothing is written",
            reported=drift.paths,
        )
    split = _split_owners(spec, live_obj, drift, field_manager)
    if not drift and not split:
        return ApplyPlan(None, None, "in sync with git: nothing to write")

    rollback_allowed = _rollback_allowed(desired)
    held: list[DriftItem] = []  # desiredUpdate drift that is reported and left as it is
    notes: list[str] = []
    for item in drift.items:
        if drift_actions is not None and reported_by_policy(item, drift_actions, field_manager):
            held.append(item)
            notes.append(
                f"{item.path} is reported, not corrected: the policy's drift action for "
                f'{spec_field(item.path)} is report and "{item.owner}" set the live value'
            )
            continue
        if item.path != _DESIRED_UPDATE_PATH:
            continue
        if item.kind is DriftKind.FORWARD:
            if rollback_allowed:
                notes.append(
                    f"{PlanReason.ROLLBACK_ALLOWED}: {item.detail}; {_annotation_text(spec)}"
                )
            else:
                held.append(item)
                notes.append(f"{PlanReason.ROLLBACK_REFUSED}: {item.detail}; {_refusal_hint(spec)}")
        elif item.kind is DriftKind.EXTRA:
            held.append(item)
            notes.append(
                f"{PlanReason.DESIRED_UPDATE_KEPT}: git no longer declares desiredUpdate; the "
                "cluster's target stays as it is (dropping it never rolls an update back)"
            )
        if item not in held and upgrade is not None and upgrade.pending:
            held.append(item)
            notes.append(f"{upgrade.reason}: desiredUpdate stays pending; {upgrade.summary()}")

    if split:
        notes.append(_takeover_text(split))
    if mode == "observe":
        text = "observe mode, nothing written"
        text += f"; drift: {_describe(drift.items)}" if drift else ""
        return ApplyPlan(None, None, _join(text, notes), reported=drift.paths)

    corrected = tuple(item for item in drift.items if item not in held)
    reported = tuple(item.path for item in held)
    if not corrected and not split:
        return ApplyPlan(None, None, _join("nothing to write", notes), reported=reported)
    hold_update = any(item.path == _DESIRED_UPDATE_PATH for item in held)
    resolved = None
    if upgrade is not None and upgrade.decision.action == "apply" and not hold_update:
        resolved = upgrade.decision.resolved
        if resolved:
            notes.append(
                f"the upgrade gates pass: desiredUpdate is applied as {_target_text(resolved)}"
            )
    drifting = _DESIRED_UPDATE_PATH in drift.paths
    body = _body(
        desired,
        live_obj,
        hold=hold_update,
        drifting=drifting,
        field_manager=field_manager,
        resolved=resolved,
    )
    keep_live_values(
        body["spec"], live_spec(live_obj), tuple(i for i in held if i.path != _DESIRED_UPDATE_PATH)
    )
    if spec.get("overrides"):
        notes.append(
            "spec.overrides is set: the operator reports Upgradeable=False "
            "(ClusterVersionOverridesSet), which blocks minor upgrades"
        )
    text = f"applies {_describe(corrected)}" if corrected else "applies no new value"
    return ApplyPlan(
        body, None, _join(text, notes), tuple(item.path for item in corrected), reported
    )


def _body(
    desired: DesiredState,
    live_obj: Mapping[str, Any],
    *,
    hold: bool,
    drifting: bool,
    field_manager: str,
    resolved: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """apiVersion, kind, metadata (name, git's labels and annotations) and exactly the spec
    fields git declares, desiredUpdate whole; never status."""
    body_spec = copy.deepcopy(dict(desired.spec))  # the cycle's desired state stays as it is
    live_update = live_spec(live_obj).get(DESIRED_UPDATE)
    as_live = _live_update(live_obj)
    if resolved:
        # The gates resolve the target; the risks the policy accepts go with it.
        declared = body_spec.get(DESIRED_UPDATE)
        accepted = {}
        if isinstance(declared, Mapping) and ACCEPT_RISKS in declared:
            accepted[ACCEPT_RISKS] = declared[ACCEPT_RISKS]
        body_spec[DESIRED_UPDATE] = {**whole_desired_update(resolved), **accepted}
    elif DESIRED_UPDATE in body_spec and as_live is not None and not drifting:
        # git asks for the live value: send it as it stands, every field of it, so that the
        # apply owns the whole unit and moves nothing; of acceptRisks only git's names (the
        # ones others added stay theirs).
        declared = body_spec[DESIRED_UPDATE]
        taken = {k: v for k, v in as_live.items() if k != ACCEPT_RISKS}
        if isinstance(declared, Mapping) and ACCEPT_RISKS in declared:
            taken[ACCEPT_RISKS] = declared[ACCEPT_RISKS]
        body_spec[DESIRED_UPDATE] = taken
    elif isinstance(body_spec.get(DESIRED_UPDATE), Mapping):
        # A version git names and cvsync pinned to its digest stays pinned; every field the
        # operator reads is sent, so cvsync never owns half of the unit.
        pinned = pinned_update(body_spec[DESIRED_UPDATE], live_update)
        body_spec[DESIRED_UPDATE] = whole_desired_update(pinned)
    if hold:
        body_spec.pop(DESIRED_UPDATE, None)
        # Server-side apply removes a field its only owner stops sending. When cvsync owns
        # (part of) desiredUpdate, send the live value unchanged instead: nothing moves, and
        # cvsync owns all of it rather than half (of acceptRisks, only its own names).
        if as_live is not None and _owns_desired_update(live_obj, field_manager):
            body_spec[DESIRED_UPDATE] = _kept_update(as_live, live_obj, field_manager)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": OBJECT_NAME, **copy.deepcopy(dict(desired.metadata))},
        "spec": body_spec,
    }


def _kept_update(
    live_update: Mapping[str, Any], live_obj: Mapping[str, Any], field_manager: str
) -> dict[str, Any]:
    """The live desiredUpdate to send back unchanged, with only the acceptRisks entries
    cvsync owns: sending another manager's entry would make cvsync co-own it."""
    kept = dict(live_update)
    owned = owned_risk_names(live_obj, field_manager)
    entries = [
        e
        for e in kept.pop(ACCEPT_RISKS, None) or ()
        if isinstance(e, Mapping) and e.get("name") in owned
    ]
    if entries:
        kept[ACCEPT_RISKS] = entries
    return kept


def _owns_desired_update(live_obj: Mapping[str, Any], field_manager: str) -> bool:
    return bool(_owned_update_fields(live_obj, field_manager))


def _owned_update_fields(live_obj: Mapping[str, Any], field_manager: str) -> set[str]:
    return {
        str(path[2])
        for path in owned_leaves(live_obj, field_manager)
        if path[:2] == ("spec", DESIRED_UPDATE) and len(path) > 2
    }


def _live_update(live_obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """The live spec.desiredUpdate exactly as the server holds it."""
    spec = live_obj.get("spec")
    update = spec.get(DESIRED_UPDATE) if isinstance(spec, Mapping) else None
    return copy.deepcopy(dict(update)) if isinstance(update, Mapping) else None


def _split_owners(
    spec: Mapping[str, Any], live_obj: Mapping[str, Any], drift: Drift, field_manager: str
) -> dict[str, tuple[str, ...]]:
    """{field: its other owners} for the desiredUpdate fields cvsync does not own, when git
    asks for the live value and cvsync owns the rest: a split the unit must not stay in
    (`oc adm upgrade` took version and image, then git caught up with it)."""
    live_update = _live_update(live_obj)
    if DESIRED_UPDATE not in spec or live_update is None or _DESIRED_UPDATE_PATH in drift.paths:
        return {}
    mine = _owned_update_fields(live_obj, field_manager)
    if not mine:
        return {}
    split: dict[str, tuple[str, ...]] = {}
    for name in sorted(set(live_update) - mine):
        owner = owner_of(live_obj, ("spec", DESIRED_UPDATE, name))
        split[name] = owner.managers if owner else ()
    return split


def _takeover_text(split: Mapping[str, tuple[str, ...]]) -> str:
    owners = sorted({manager for managers in split.values() for manager in managers})
    held = ", ".join(f'"{manager}"' for manager in owners) or "no manager"
    return (
        f"takes over {_DESIRED_UPDATE_PATH} as one unit: git asks for the live value, and "
        f"{held} held {', '.join(split)} of it"
    )


def _rollback_allowed(desired: DesiredState) -> bool:
    """The document carries cvsync.io/allow-rollback-to equal to its own target (the version,
    or the image for an image-only target): a rollback written down twice, on purpose."""
    allowed = desired.annotations.get(ALLOW_ROLLBACK_ANNOTATION)
    return bool(allowed) and allowed == _target(desired.spec)


def _target(spec: Mapping[str, Any]) -> str:
    update = spec.get(DESIRED_UPDATE)
    if not isinstance(update, Mapping):
        return ""
    return str(update.get("version") or update.get("image") or "")


def _target_text(update: Mapping[str, Any]) -> str:
    return " ".join(
        f"{key} {update[key]}" for key in ("version", "image", "architecture") if update.get(key)
    )


def _annotation_text(spec: Mapping[str, Any]) -> str:
    return f'{ALLOW_ROLLBACK_ANNOTATION}: "{_target(spec)}" asks for it, so it is applied'


def _refusal_hint(spec: Mapping[str, Any]) -> str:
    return (
        "desiredUpdate is left as the cluster has it; to roll back on purpose, annotate the "
        f'document with {ALLOW_ROLLBACK_ANNOTATION}: "{_target(spec)}"'
    )


def _describe(items: tuple[DriftItem, ...] | list[DriftItem]) -> str:
    parts = []
    for item in items:
        owner = f', owned by "{item.owner}"' if item.owner else ""
        parts.append(f"{item.path} ({item.kind}{owner})")
    return ", ".join(parts)


def _join(text: str, notes: list[str]) -> str:
    return "; ".join([text, *notes])
