"""Which fields an apply would take from other field managers, read from the live object's
managedFields before it is sent, so that taking them back costs one request, not a refusal
first. Pure: an apply body and a live object in, the predicted conflicts out.

A server-side apply conflicts on every field it would change (add or give another value)
that another manager owns, whether that manager applied it or wrote it with an Update (the
Kubernetes server-side apply documentation, "Conflicts"; recorded from kube-apiserver
v1.36.2, realserver step apply-channel-cvsync). An equal value is shared, not a conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

APPLY, UPDATE = "Apply", "Update"
_ABSENT = object()


@dataclass(frozen=True, slots=True)
class Conflict:
    """A field the apply would change, and the manager (and its operation) that owns it."""

    field: str  # as the API server prints it: `.spec.channel`
    manager: str
    operation: str  # Apply or Update


@dataclass(frozen=True, slots=True)
class Takeover:
    """What the live object's managedFields say an apply of a body would meet.

    `certain` is False when they cannot say for sure (no managedFields, a list indexed by
    position, a shape this reader does not know): then nothing is decided in advance.
    `co_appliers` are other appliers owning any field the body sets, whatever its value.
    """

    conflicts: tuple[Conflict, ...] = ()
    co_appliers: frozenset[str] = frozenset()
    certain: bool = True

    @property
    def only_imperative(self) -> bool:
        """True when the apply would conflict, and only with imperative writers (Update
        operations such as `oc patch`, the console or the installer), while no other applier
        holds any field the body sets: what a refused apply followed by a forced one takes."""
        return (
            self.certain
            and bool(self.conflicts)
            and not self.co_appliers
            and all(c.operation == UPDATE for c in self.conflicts)
        )

    def taken(self) -> tuple[tuple[str, str], ...]:
        """(field, previous owner) pairs, as an ApplyConflictError lists them."""
        return tuple((c.field, c.manager) for c in self.conflicts)


@dataclass(frozen=True, slots=True)
class _Owner:
    manager: str
    operation: str
    node: Any  # its FieldsV1 node at the path being walked; None where it owns nothing


def predict_takeover(
    body: Mapping[str, Any], live: Mapping[str, Any] | None, field_manager: str
) -> Takeover:
    """The conflicts that applying `body` as `field_manager` to `live` would meet."""
    if live is None:
        return Takeover()  # a create: nobody owns anything yet
    owners = _other_owners(live, field_manager)
    if owners is None:
        # The server credits an object without managedFields to a made-up manager
        # ("before-first-apply"); leave that case to the server's answer.
        return Takeover(certain=False)
    walk = _Walk()
    for key, given in body.items():
        if key in ("apiVersion", "kind"):
            continue
        value = given
        if key == "metadata" and isinstance(given, Mapping):
            value = {k: v for k, v in given.items() if k not in ("name", "resourceVersion")}
            if not value:
                continue
        children = [_Owner(o.manager, o.operation, o.node.get(f"f:{key}")) for o in owners]
        walk.visit(f".{key}", value, live.get(key, _ABSENT), children)
    return Takeover(tuple(walk.conflicts), frozenset(walk.co_appliers), walk.certain)


class _Walk:
    def __init__(self) -> None:
        self.conflicts: list[Conflict] = []
        self.co_appliers: set[str] = set()
        self.certain = True

    def visit(self, path: str, value: Any, live: Any, owners: list[_Owner]) -> None:
        present = [o for o in owners if isinstance(o.node, Mapping)]
        if not present:
            return  # nobody else owns this field or anything below it
        inner = []
        for owner in present:
            if owner.operation == APPLY:
                self.co_appliers.add(owner.manager)
            if any(name != "." for name in owner.node):
                inner.append(owner)
            elif self._changes(value, live, member_only="." in owner.node):
                self.conflicts.append(Conflict(path, owner.manager, owner.operation))
        if not inner:
            return
        if isinstance(value, Mapping):
            for key, child in value.items():
                nodes = [_Owner(o.manager, o.operation, o.node.get(f"f:{key}")) for o in inner]
                below = live.get(key, _ABSENT) if isinstance(live, Mapping) else _ABSENT
                self.visit(f"{path}.{key}", child, below, nodes)
        elif isinstance(value, list):
            self._visit_list(path, value, live, inner)
        else:
            self.certain = False  # a scalar where someone owns fields below: not our schema

    def _changes(self, value: Any, live: Any, *, member_only: bool) -> bool:
        """Whether applying `value` over `live` changes a field owned as a whole ({}) or only
        as a member ({".": {}}: a struct or entry whose fields others took over)."""
        if live is _ABSENT:
            return True  # added
        if member_only or (isinstance(value, Mapping) and isinstance(live, Mapping)):
            return False  # a struct on both sides merges: its own path is never a change
        if _same(value, live):
            return False
        if isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            # Atomic (compared whole) or keyed (merged by entry)? The schema says; this
            # reader does not know it, so it decides nothing in advance.
            self.certain = False
            return False
        return True

    def _visit_list(self, path: str, items: list[Any], live: Any, owners: list[_Owner]) -> None:
        kinds = {name[:2] for o in owners for name in o.node if name != "."}
        if kinds - {"k:", "v:"}:
            self.certain = False  # owned by position, or a shape not known here
            return
        live_items = live if isinstance(live, list) else []
        for item in items:
            if not isinstance(item, Mapping):
                # A set member is named by its value: the same value on both sides.
                for owner in owners:
                    if owner.operation == APPLY and f"v:{_json(item)}" in owner.node:
                        self.co_appliers.add(owner.manager)
                continue
            nodes = [_Owner(o.manager, o.operation, _keyed(o.node, item)) for o in owners]
            keys = next((key for o in owners for key in _keys_matching(o.node, item)), None)
            if keys is None:
                continue  # an entry nobody else owns
            match = next((i for i in live_items if _matches(i, keys)), _ABSENT)
            self.visit(f"{path}{_render_key(keys)}", item, match, nodes)


def _other_owners(live: Mapping[str, Any], field_manager: str) -> list[_Owner] | None:
    metadata = live.get("metadata")
    entries = metadata.get("managedFields") if isinstance(metadata, Mapping) else None
    if not isinstance(entries, list) or not entries:
        return None
    owners = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            return None
        manager, operation = str(entry.get("manager") or ""), str(entry.get("operation") or "")
        subresource = str(entry.get("subresource") or "")
        if (manager, operation, subresource) == (field_manager, APPLY, ""):
            continue  # our own apply: never a conflict
        fields = entry.get("fieldsV1")
        if isinstance(fields, Mapping):
            owners.append(_Owner(manager, operation, fields))
    return owners


def _keys_matching(node: Mapping[str, Any], item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for name in node:
        if name.startswith("k:"):
            keys = _parse(name[2:])
            if isinstance(keys, dict) and _matches(item, keys):
                yield keys


def _keyed(node: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
    for name in node:
        if name.startswith("k:"):
            keys = _parse(name[2:])
            if isinstance(keys, dict) and _matches(item, keys):
                return node[name]
    return None


def _matches(item: Any, keys: Mapping[str, Any]) -> bool:
    return isinstance(item, Mapping) and all(
        _same(item.get(name, _ABSENT), value) for name, value in keys.items()
    )


def _render_key(keys: Mapping[str, Any]) -> str:
    """A map-list entry as the API server prints it: `[group="apps",kind="Deployment",...]`."""
    return "[" + ",".join(f"{name}={_json(keys[name])}" for name in sorted(keys)) + "]"


def _same(left: Any, right: Any) -> bool:
    """Equal as JSON values: types count (true is not 1), key order does not."""
    if left is _ABSENT or right is _ABSENT:
        return left is right
    return _json(left) == _json(right)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
