"""The policy's drift actions: which drifted fields are corrected and which only reported.

Pure. `report` on a field means a value another writer set there is reported and left as it
is; git's own changes to the field still apply (a value nobody else owns is git's to set).
`correct` takes the field back, as cvsync does without a policy. desiredUpdate corrects
forward only either way (the plan never rolls a cluster back on its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model.drift import DriftItem
from agent.model.policy import DriftAction, DriftActions
from agent.spec.normalize import keyed_overrides, override_key
from agent.sync.diff import DESIRED_UPDATE, OVERRIDES, render_path

_POLICY_FIELDS = {
    "channel": "channel",
    "upstream": "upstream",
    "capabilities": "capabilities",
    DESIRED_UPDATE: "desired_update",
    OVERRIDES: "overrides",
}


def spec_field(path: str) -> str:
    """The top-level spec field of a drift path: `.spec.overrides[…].unmanaged` → overrides."""
    rest = path.removeprefix(".spec.")
    return rest.split(".", 1)[0].split("[", 1)[0]


def reported_by_policy(item: DriftItem, actions: DriftActions, field_manager: str) -> bool:
    """True when the policy says to report, not correct, this item: its field's action is
    `report` and another writer owns the live value."""
    attribute = _POLICY_FIELDS.get(spec_field(item.path))
    if attribute is None or getattr(actions, attribute) is not DriftAction.REPORT:
        return False
    return item.owner is not None and item.owner != field_manager


def keep_live_values(
    body_spec: dict[str, Any], live: Mapping[str, Any], held: tuple[DriftItem, ...]
) -> None:
    """Set each held item's field in `body_spec` to its live value: applying a value equal to
    the live one moves nothing and conflicts with no one, while leaving cvsync's other fields
    (and its share of an override entry) as they were."""
    for item in held:
        field = spec_field(item.path)
        if field == OVERRIDES:
            _keep_live_override(body_spec, live, item.path)
        elif field == "capabilities" and isinstance(body_spec.get(field), Mapping):
            sub = item.path.removeprefix(".spec.capabilities.").split(".", 1)[0]
            caps = dict(body_spec[field])
            _copy(caps, mapping(live.get(field)), sub)
            body_spec[field] = caps
        elif field != DESIRED_UPDATE:
            _copy(body_spec, live, field)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _copy(target: dict[str, Any], live: Mapping[str, Any], key: str) -> None:
    if key in live:
        target[key] = live[key]
    else:
        target.pop(key, None)


def _keep_live_override(body_spec: dict[str, Any], live: Mapping[str, Any], path: str) -> None:
    entries = body_spec.get(OVERRIDES)
    if not isinstance(entries, list):
        return
    live_entries = keyed_overrides(live.get(OVERRIDES))
    kept = []
    for entry in entries:
        key = override_key(entry) if isinstance(entry, Mapping) else None
        prefix = render_path(("spec", OVERRIDES, dict(entry))) if key else ""
        if key is not None and path.startswith(prefix) and key in live_entries:
            kept.append(live_entries[key])
        else:
            kept.append(entry)
    body_spec[OVERRIDES] = kept
