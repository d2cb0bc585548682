"""Drift between the spec git declares and the live ClusterVersion, field by field.

Pure: dicts in, a Drift out. Only declared fields count; overrides are keyed like the API keys
them, desiredUpdate is one unit, and a cluster ahead of git is forward drift, never reverted.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from deepdiff import DeepDiff

from agent.model.clusterversion_api import ACCEPT_RISKS, OVERRIDE_KEYS
from agent.model.drift import Drift, DriftItem, DriftKind
from agent.model.versions import is_older
from agent.spec.normalize import keyed_overrides, live_spec, override_key, whole_desired_update
from agent.sync.owners import OwnerPath, owned_leaves, owner_of

FIELD_MANAGER = "cvsync"
DESIRED_UPDATE = "desiredUpdate"
OVERRIDES = "overrides"

# deepdiff reports: git-side additions are MISSING, changes CHANGED; what only the live side
# has (dictionary_item_removed) is not declared by git, so it is not drift.
_REPORTS = (
    "values_changed",
    "type_changes",
    "dictionary_item_added",
    "iterable_item_added",
    "iterable_item_removed",
)


class _Absent:
    """The value of a field an object does not have (distinct from null and from "")."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Any = _Absent()


def diff(
    desired: Mapping[str, Any],
    live_obj: Mapping[str, Any] | None,
    *,
    field_manager: str = FIELD_MANAGER,
) -> Drift:
    """Drift of every field git declares in `desired` against the live object. `desired` is
    the spec as normalized once per cycle (`DesiredState.spec`); it is not normalized again."""
    want = desired
    live = live_spec(live_obj)
    items: list[DriftItem] = []
    for key, value in want.items():
        if key == OVERRIDES:
            git_side: Any = keyed_overrides(value)
            live_side: Any = {
                k: v for k, v in keyed_overrides(live.get(OVERRIDES)).items() if k in git_side
            }
        else:
            git_side, live_side = value, live.get(key, ABSENT)
        if key == DESIRED_UPDATE:
            if same_request(pinned_update(git_side, live_side), live_side, live_obj, field_manager):
                continue
            items.append(_desired_update_item(value, live_side, live_obj, field_manager))
        elif covers(git_side, live_side):  # equality first: cheap, and the usual answer
            continue
        else:
            items.extend(_field_items(key, git_side, live_side, live_obj))
    items.extend(_extra_items(want, live, live_obj, field_manager))
    return Drift(tuple(items))


def covers(git: Any, live: Any) -> bool:
    """True when `live` has every field `git` declares, with the same value and JSON type.

    Maps compare on git's keys only (what git does not declare is someone else's);
    lists are atomic and compare whole; True is not 1 and 1 is not 1.0.
    """
    if type(git) is not type(live):
        return False
    if isinstance(git, dict):
        return all(key in live and covers(value, live[key]) for key, value in git.items())
    if isinstance(git, list):
        return len(git) == len(live) and all(map(covers, git, live))
    return bool(git == live)


def same_request(
    git_update: Any, live_update: Any, live_obj: Mapping[str, Any] | None, manager: str
) -> bool:
    """Whether the live desiredUpdate asks what git's does: as whole units, a field left out
    being its zero value (the operator reads it so); and acceptRisks (a map list keyed by
    name, whose entries others may add) holding each name git sends while `manager` owns no
    name git stopped sending (server-side apply removes those on the next apply)."""
    if not (isinstance(git_update, Mapping) and isinstance(live_update, Mapping)):
        return covers(git_update, live_update)
    fields = {k: v for k, v in git_update.items() if k != ACCEPT_RISKS}
    live_fields = {k: v for k, v in live_update.items() if k != ACCEPT_RISKS}
    if not covers(whole_desired_update(fields), whole_desired_update(live_fields)):
        return False
    wanted = risk_names(git_update.get(ACCEPT_RISKS))
    return wanted <= risk_names(live_update.get(ACCEPT_RISKS)) and (
        owned_risk_names(live_obj, manager) <= wanted
    )


def risk_names(accept_risks: Any) -> frozenset[str]:
    """The names in an acceptRisks list; anything malformed names nothing."""
    if not isinstance(accept_risks, list):
        return frozenset()
    return frozenset(
        str(entry["name"])
        for entry in accept_risks
        if isinstance(entry, Mapping) and "name" in entry
    )


def owned_risk_names(live_obj: Mapping[str, Any] | None, manager: str) -> frozenset[str]:
    """The acceptRisks entries `manager` owns in the live object's managedFields."""
    prefix = ("spec", DESIRED_UPDATE, ACCEPT_RISKS)
    return frozenset(
        str(path[3].get("name"))
        for path in owned_leaves(live_obj, manager)
        if path[:3] == prefix and len(path) > 3 and isinstance(path[3], Mapping)
    )


def pinned_update(git_update: Any, live_update: Any) -> Any:
    """git's desiredUpdate with the live image filled in where git names only the version and
    the cluster targets that version by digest: the pin cvsync resolved it to, not drift."""
    if not (isinstance(git_update, Mapping) and isinstance(live_update, Mapping)):
        return git_update
    version, image = git_update.get("version"), str(live_update.get("image") or "")
    if git_update.get("image") or not version or live_update.get("version") != version:
        return git_update
    if "@sha256:" not in image:
        return git_update
    return {**git_update, "image": image}


def render_path(path: OwnerPath) -> str:
    """`.spec.overrides[kind=Deployment,group=apps,namespace=x,name=y].unmanaged`."""
    text = ""
    for step in path:
        if isinstance(step, str):
            text += f".{step}"
        else:
            text += "[" + ",".join(f"{k}={step.get(k, '')}" for k in OVERRIDE_KEYS) + "]"
    return text or "."


def _field_items(
    key: str, git_side: Any, live_side: Any, live_obj: Mapping[str, Any] | None
) -> Iterator[DriftItem]:
    if live_side is ABSENT:
        yield DriftItem(f".spec.{key}", git_side, None, DriftKind.MISSING)
        return
    seen: set[str] = set()
    tree = DeepDiff({key: live_side}, {key: git_side}, view="tree")
    for report in _REPORTS:
        for level in tree.get(report, ()):
            steps = _unit(level.path(output_format="list"))
            path: OwnerPath = ("spec", *steps)
            text = render_path(path)
            if text in seen:
                continue
            seen.add(text)
            git_value = _lookup({key: git_side}, steps)
            live_value = _lookup({key: live_side}, steps)
            if live_value is ABSENT:
                yield DriftItem(text, git_value, None, DriftKind.MISSING)
                continue
            owner = owner_of(live_obj, path)
            yield DriftItem(
                text,
                git_value,
                live_value,
                DriftKind.CHANGED,
                owner.manager if owner else None,
                owner.since if owner else None,
            )


def _unit(raw: list[Any]) -> tuple[str | Mapping[str, Any], ...]:
    """A deepdiff path as an API path: override keys as key maps, cut at a list index
    (plain lists are atomic in this API, reported whole)."""
    steps: list[str | Mapping[str, Any]] = []
    for step in raw:
        if isinstance(step, int):
            break
        if isinstance(step, tuple):
            steps.append(dict(zip(OVERRIDE_KEYS, step, strict=True)))
        else:
            steps.append(str(step))
    return tuple(steps)


def _lookup(value: Any, steps: tuple[str | Mapping[str, Any], ...]) -> Any:
    """The value at `steps`, or ABSENT; an override step finds its item by key, in a list
    (as written) or in a keyed map (as diffed)."""
    for step in steps:
        if isinstance(step, str):
            found = value.get(step, ABSENT) if isinstance(value, dict) else ABSENT
        else:
            items = keyed_overrides(value) if isinstance(value, list) else value
            found = items.get(override_key(step), ABSENT) if isinstance(items, dict) else ABSENT
        if found is ABSENT:
            return ABSENT
        value = found
    return value


# --- desiredUpdate, one unit ----------------------------------------------------------------


def _desired_update_item(
    git_update: Any, live_update: Any, live_obj: Mapping[str, Any] | None, field_manager: str
) -> DriftItem:
    path = f".spec.{DESIRED_UPDATE}"
    live_value = None if live_update is ABSENT else live_update
    owner = owner_of(live_obj, ("spec", DESIRED_UPDATE)) if live_value is not None else None
    kind = DriftKind.MISSING if live_value is None else DriftKind.CHANGED
    detail = ""
    if isinstance(git_update, dict):
        detail = forward_reason(git_update, live_obj) or newer_target_reason(
            git_update, live_obj, field_manager
        )
    return DriftItem(
        path,
        git_update,
        live_value,
        DriftKind.FORWARD if detail else kind,
        owner.manager if owner else None,
        owner.since if owner else None,
        detail,
    )


def forward_reason(git_update: Mapping[str, Any], live_obj: Mapping[str, Any] | None) -> str:
    """Why `git_update` would take the cluster back to an older release, or "" when it would
    not (or when that cannot be known: an image the cluster never ran, a non-semver version).
    """
    status = live_obj.get("status") if live_obj else None
    if not isinstance(status, Mapping):
        return ""
    history = [e for e in status.get("history") or () if isinstance(e, Mapping)]
    target = status.get("desired")
    target_image = target.get("image") if isinstance(target, Mapping) else None
    image = str(git_update.get("image") or "")
    version = str(git_update.get("version") or "")
    if image:
        # An image target: the operator ignores the version, so compare images first.
        leading = history[0].get("image") if history else None
        if image in (target_image, leading):
            return ""
        references = [reference for reference, _ in _references(status, history)]
        for number, entry in enumerate(history[1:], start=2):
            if entry.get("image") != image:
                continue
            ran = str(entry.get("version") or "")
            if references and all(is_older(ref, ran) for ref in references):
                return ""  # an update that was rolled back, tried again: not a step back
            newest = history[0].get("version") or leading
            return (
                f"git asks for {image}, which the cluster ran as {ran} (history entry "
                f"{number}, {entry.get('state')}); it has moved on to {newest}"
            )
        if not version:
            return ""
    for reference, what in _references(status, history):
        if is_older(version, reference):
            return f"git asks for {version}; the cluster {what}"
    return ""


def newer_target_reason(
    git_update: Mapping[str, Any],
    live_obj: Mapping[str, Any] | None,
    field_manager: str = FIELD_MANAGER,
) -> str:
    """Why `git_update` would replace a newer target someone other than cvsync set in
    spec.desiredUpdate, started by the operator or not; "" when it would not. A target
    cvsync set alone is git's own, and git may change its mind about it."""
    live_update = live_spec(live_obj).get(DESIRED_UPDATE)
    if not isinstance(live_update, Mapping):
        return ""
    status = live_obj.get("status") if live_obj else None
    status = status if isinstance(status, Mapping) else {}
    leaf = "version" if live_update.get("version") else "image"
    owner = owner_of(live_obj, ("spec", DESIRED_UPDATE, leaf))
    others = [m for m in owner.managers if m != field_manager] if owner else []
    theirs, ours = _target_version(live_update, status), _target_version(git_update, status)
    if not (others and theirs and ours and is_older(ours, theirs)):
        return ""
    history = [e for e in status.get("history") or () if isinstance(e, Mapping)]
    started = any(e.get("version") == theirs for e in history)
    progress = "the operator has started it" if started else "the operator has not started it yet"
    setters = ", ".join(f'"{manager}"' for manager in others)
    return f"git asks for {ours}; {setters} set the target to {theirs}, and {progress}"


def _target_version(update: Mapping[str, Any], status: Mapping[str, Any]) -> str:
    """A desiredUpdate's version, or the version the cluster lists for its image."""
    if update.get("version"):
        return str(update["version"])
    image = update.get("image")
    if not image:
        return ""
    conditional = (c.get("release") for c in status.get("conditionalUpdates") or ())
    listed = [*(status.get("availableUpdates") or ()), *conditional, *(status.get("history") or ())]
    return next(
        (
            str(r.get("version") or "")
            for r in listed
            if isinstance(r, Mapping) and r.get("image") == image
        ),
        "",
    )


def _references(
    status: Mapping[str, Any], history: list[Mapping[str, Any]]
) -> Iterator[tuple[str, str]]:
    """The versions the cluster runs or is updating to; git must not ask for less."""
    completed = next((e for e in history if e.get("state") == "Completed"), None)
    if completed and completed.get("version"):
        running = str(completed["version"])
        yield running, f"runs {running} (its latest Completed update)"
    # status.desired is what the cluster reconciles towards; a Partial entry leading the
    # history (or no history yet, during install) means that update is still under way.
    target = status.get("desired")
    updating = not history or history[0].get("state") == "Partial"
    if updating and isinstance(target, Mapping) and target.get("version"):
        yield str(target["version"]), f"is updating to {target['version']}"


# --- fields git stopped declaring -----------------------------------------------------------


def _extra_items(
    want: Mapping[str, Any],
    live: Mapping[str, Any],
    live_obj: Mapping[str, Any] | None,
    manager: str,
) -> Iterator[DriftItem]:
    """Fields cvsync applied before that git no longer declares: server-side apply removes
    a field its only owner stops applying, so the next apply drops them. Shared fields stay."""
    seen: set[str] = set()
    for leaf in owned_leaves(live_obj, manager):
        unit = _extra_unit(leaf)
        if unit is None or render_path(unit) in seen:
            continue
        seen.add(render_path(unit))
        if _lookup(want, unit[1:]) is not ABSENT:
            continue
        live_value = _lookup(_keyed_spec(live), unit[1:])
        owner = owner_of(live_obj, unit)
        if live_value is ABSENT or owner is None or manager not in owner.managers:
            continue
        # desiredUpdate is one unit whose parts may have other owners too (an acceptRisks
        # name `oc adm upgrade accept` added): the next apply would still remove the parts
        # cvsync alone owns, its version and image among them.
        if owner.managers != (manager,) and unit != ("spec", DESIRED_UPDATE):
            continue
        alone = "alone " if owner.managers == (manager,) else ""
        yield DriftItem(
            render_path(unit),
            None,
            live_value,
            DriftKind.EXTRA,
            owner.manager,
            owner.since,
            f"git no longer declares it and {manager} {alone}owns it: the next apply removes it",
        )


def _extra_unit(leaf: OwnerPath) -> OwnerPath | None:
    if len(leaf) < 2 or leaf[0] != "spec" or not isinstance(leaf[1], str):
        return None
    if leaf[1] == DESIRED_UPDATE:
        return leaf[:2]
    if leaf[1] == OVERRIDES:
        return leaf[:3] if len(leaf) >= 3 and not isinstance(leaf[2], str) else None
    return leaf


def _keyed_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(spec)
    if OVERRIDES in out:
        out[OVERRIDES] = keyed_overrides(out[OVERRIDES])
    return out
