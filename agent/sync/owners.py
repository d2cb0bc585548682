"""Who owns a field of a live object, read from its metadata.managedFields (FieldsV1).

Pure: a live object and an API field path in, field managers and times out. A small reader of
its own; the sandbox's field sets are the independent other side and are never imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# A path step is a field name (`f:` in FieldsV1) or the key of a map-list item (`k:`),
# given as the item's key fields: {"kind": ..., "group": ..., "namespace": ..., "name": ...}.
Step = str | Mapping[str, Any]
OwnerPath = tuple[Step, ...]

_SELF = "."  # FieldsV1 marks a node that is owned itself (and has owned children) with "."


@dataclass(frozen=True, slots=True)
class ManagedEntry:
    """One metadata.managedFields entry, with its FieldsV1 tree as the server wrote it."""

    manager: str
    operation: str  # Apply or Update
    time: str | None
    subresource: str
    fields: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FieldOwner:
    """The managers that own a field (several when shared) and when the latest one wrote."""

    managers: tuple[str, ...]
    since: str | None

    @property
    def manager(self) -> str:
        return ", ".join(self.managers)


def managed_entries(live_obj: Mapping[str, Any] | None) -> tuple[ManagedEntry, ...]:
    """The FieldsV1 entries of a live object; anything malformed is skipped, not fatal."""
    metadata = live_obj.get("metadata") if live_obj else None
    raw = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(raw, list):
        return ()
    out: list[ManagedEntry] = []
    for entry in raw:
        if not isinstance(entry, Mapping) or entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        fields = entry.get("fieldsV1")
        if not isinstance(fields, Mapping):
            continue
        time = entry.get("time")
        out.append(
            ManagedEntry(
                manager=str(entry.get("manager") or ""),
                operation=str(entry.get("operation") or ""),
                time=time if isinstance(time, str) else None,
                subresource=str(entry.get("subresource") or ""),
                fields=fields,
            )
        )
    return tuple(out)


def owner_of(live_obj: Mapping[str, Any] | None, path: OwnerPath) -> FieldOwner | None:
    """Which manager owns `path` (e.g. ("spec", "channel")) and since when, or None.

    Entries that own a leaf at or below the path win over entries that only own the node
    itself ("."): a manager that created `spec.desiredUpdate` but whose fields were all taken
    over does not own the value any more. Shared fields list every owner, in entry order.
    """
    holders: list[ManagedEntry] = []
    leaf_holders: list[ManagedEntry] = []
    for entry in managed_entries(live_obj):
        node = _node(entry.fields, path)
        if node is None:
            continue
        holders.append(entry)
        if _holds_leaf(node):
            leaf_holders.append(entry)
    chosen = leaf_holders or holders
    if not chosen:
        return None
    managers = tuple(dict.fromkeys(entry.manager for entry in chosen))
    return FieldOwner(managers, _latest(entry.time for entry in chosen))


def last_write(live_obj: Mapping[str, Any] | None, manager: str) -> str | None:
    """When `manager` last changed the object, from its entries' times (None: never, or not
    recorded). The server stamps an entry only when the write changed something."""
    return _latest(entry.time for entry in managed_entries(live_obj) if entry.manager == manager)


def is_later(moment: str | None, than: str | None) -> bool:
    """True when both RFC 3339 times are known and `moment` is strictly after `than`."""
    first, second = _parsed(moment), _parsed(than)
    return first is not None and second is not None and first > second


def owned_leaves(live_obj: Mapping[str, Any] | None, manager: str) -> tuple[OwnerPath, ...]:
    """Every leaf path `manager` owns, in any of its entries (Apply and Update alike)."""
    out: list[OwnerPath] = []
    for entry in managed_entries(live_obj):
        if entry.manager == manager:
            out.extend(_leaves(entry.fields, ()))
    seen: set[tuple[str, ...]] = set()
    unique: list[OwnerPath] = []
    for path in out:
        if _canonical(path) not in seen:
            seen.add(_canonical(path))
            unique.append(path)
    return tuple(unique)


def _node(fields: Mapping[str, Any], path: OwnerPath) -> Mapping[str, Any] | None:
    node: Mapping[str, Any] = fields
    for step in path:
        child = node.get(f"f:{step}") if isinstance(step, str) else _keyed_child(node, step)
        if not isinstance(child, Mapping):
            return None
        node = child
    return node


def _keyed_child(node: Mapping[str, Any], key: Mapping[str, Any]) -> Any:
    wanted = dict(key)
    for name, child in node.items():
        if name.startswith("k:") and _parse_key(name) == wanted:
            return child
    return None


def _parse_key(name: str) -> dict[str, Any] | None:
    try:
        value = json.loads(name[2:])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _holds_leaf(node: Mapping[str, Any]) -> bool:
    """True when the node is a leaf itself or has an owned descendant other than "."."""
    if not node:
        return True
    return any(
        isinstance(child, Mapping) and _holds_leaf(child)
        for name, child in node.items()
        if name != _SELF
    )


def _leaves(node: Mapping[str, Any], prefix: OwnerPath) -> Iterator[OwnerPath]:
    for name, child in node.items():
        if name == _SELF or not isinstance(child, Mapping):
            continue
        step: Step | None = None
        if name.startswith("f:"):
            step = name[2:]
        elif name.startswith("k:"):
            step = _parse_key(name)
        if step is None:  # `v:` set values and `i:` indexes: ClusterVersion's spec has none
            continue
        path = (*prefix, step)
        if child and any(key != _SELF for key in child):
            yield from _leaves(child, path)
        else:
            yield path


def _canonical(path: OwnerPath) -> tuple[str, ...]:
    return tuple(
        step if isinstance(step, str) else json.dumps(dict(step), sort_keys=True) for step in path
    )


def _latest(times: Iterable[str | None]) -> str | None:
    """The most recent RFC 3339 time: when the value as it stands was last written."""
    best: tuple[datetime, str] | None = None
    for text in times:
        moment = _parsed(text)
        if moment is not None and text and (best is None or moment > best[0]):
            best = (moment, text)
    return best[1] if best else None


def _parsed(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
