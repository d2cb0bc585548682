"""Normalize the spec git declares and the live spec into the one form diff and apply read.

Pure: plain dicts in, fresh plain dicts out. Nulls are dropped (the API server drops them),
"" and absent stay distinct, desiredUpdate stays as written: it is compared and sent whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.model.clusterversion_api import OVERRIDE_KEYS
from agent.model.desired import DesiredState
from agent.model.documents import ManifestDocument

JsonObject = dict[str, Any]
OverrideKey = tuple[str, str, str, str]  # (kind, group, namespace, name), the CRD's key order

# The Go struct behind desiredUpdate has no `omitempty`: `oc` and the console always send all
# four fields, and the operator reads a missing one as its zero value. Sending the whole unit
# makes cvsync own all of it, never half of it while another manager owns the rest. The CRD
# declares no defaults, so the server stores whichever fields a writer sent: compare whole
# units, never the fields one side happens to spell out.
DESIRED_UPDATE_ZERO: Mapping[str, Any] = {
    "architecture": "",
    "force": False,
    "image": "",
    "version": "",
}


def desired_state(document: ManifestDocument) -> DesiredState:
    """The one normalized desired state a cycle works on, built once from git's document."""
    return DesiredState(document, desired_spec(document.body), desired_metadata(document.body))


def desired_spec(doc_body: Mapping[str, Any]) -> JsonObject:
    """The spec fields git declares, as written: what diffs and reports show as git's.

    Status and metadata are not part of it. `capabilities: null` (any null) is absent;
    `image: ""` is a declared value and stays. The apply sends desiredUpdate whole
    (`whole_desired_update`).
    """
    spec = doc_body.get("spec")
    return _plain(spec) if isinstance(spec, Mapping) else {}


def live_spec(live_obj: Mapping[str, Any] | None) -> JsonObject:
    """The live object's spec, normalized exactly like `desired_spec` so equal means equal."""
    if live_obj is None:
        return {}
    spec = live_obj.get("spec")
    return _plain(spec) if isinstance(spec, Mapping) else {}


def desired_metadata(doc_body: Mapping[str, Any]) -> JsonObject:
    """The labels and annotations git declares; server-owned metadata never leaves here."""
    metadata = doc_body.get("metadata")
    if not isinstance(metadata, Mapping):
        return {}
    out: JsonObject = {}
    for key in ("labels", "annotations"):
        value = metadata.get(key)
        if isinstance(value, Mapping) and value:
            out[key] = {str(k): v for k, v in value.items() if v is not None}
    return out


def whole_desired_update(update: Mapping[str, Any]) -> JsonObject:
    """desiredUpdate with every field the operator reads, zero values where unset."""
    out: JsonObject = dict(DESIRED_UPDATE_ZERO)
    out.update(_plain(update))
    return out


def requested_update(update: Mapping[str, Any]) -> JsonObject:
    """desiredUpdate without the fields left at their zero value: what it asks for."""
    return {k: v for k, v in _plain(update).items() if DESIRED_UPDATE_ZERO.get(k, None) != v}


def override_key(entry: Mapping[str, Any]) -> OverrideKey:
    """The map-list key of one spec.overrides entry; a missing key part counts as ""."""
    kind, group, namespace, name = (str(entry.get(part) or "") for part in OVERRIDE_KEYS)
    return kind, group, namespace, name


def keyed_overrides(overrides: Any) -> dict[OverrideKey, JsonObject]:
    """spec.overrides as a dict keyed like the API keys it, so order never counts."""
    if not isinstance(overrides, list):
        return {}
    return {override_key(entry): entry for entry in overrides if isinstance(entry, dict)}


def _plain(value: Mapping[str, Any]) -> JsonObject:
    """A deep copy without null map values (the API server would drop them)."""
    return {str(key): _copy(item) for key, item in value.items() if item is not None}


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return _plain(value)
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
