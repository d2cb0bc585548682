"""Server-side apply and update bookkeeping: the apply merge and who owns which field.

Pure: objects and managedFields entries in, new objects and entries out; callers pass `now`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from agent.sandbox.apiserver import fields_v1
from agent.sandbox.apiserver import fieldsets as fs
from agent.sandbox.apiserver.apply_merge import element_type, merge
from agent.sandbox.apiserver.fieldsets import EMPTY, Comparison, FieldSet, Path
from agent.sandbox.apiserver.typemodel import (
    TypeNode,
    cluster_version_type,
    with_zero_fields,
)

APPLY = "Apply"
UPDATE = "Update"
FIELDS_V1 = "FieldsV1"
# The manager the server credits with an untracked object's fields before its first apply.
BEFORE_FIRST_APPLY = "before-first-apply"

# The type apply and update use unless told otherwise: ClusterVersion (Default feature set).
CLUSTER_VERSION = cluster_version_type("Default")

# Fields the server itself maintains; no writer is ever recorded as their owner.
_SERVER_META = "name namespace creationTimestamp selfLink uid clusterName generation managedFields"
_SERVER_OWNED: FieldSet = frozenset(
    {("f:apiVersion",), ("f:kind",), ("f:metadata",), ("f:metadata", "f:resourceVersion")}
    | {("f:metadata", fs.field_element(name)) for name in _SERVER_META.split()}
)


class ManagedFieldsError(ValueError):
    """A metadata.managedFields list the server would refuse."""


@dataclass(frozen=True)
class ManagedFieldsEntry:
    """One manager's ownership record: who, by which operation, and which fields."""

    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identity(self) -> str:
        return manager_identity(self.manager, self.operation, self.api_version, self.subresource)


def manager_identity(manager: str, operation: str, api_version: str, subresource: str = "") -> str:
    """The key the server files a manager under; appliers keep one key across API versions."""
    parts = {
        "manager": manager,
        "operation": operation,
        "apiVersion": "" if operation == APPLY else api_version,
        "subresource": subresource,
    }
    return fs.go_json({k: v for k, v in parts.items() if v}, sort_keys=False)


@dataclass(frozen=True)
class Conflict:
    """A field an apply would change that another manager owns."""

    manager: str
    path: Path
    operation: str = UPDATE
    api_version: str = ""
    subresource: str = ""

    @property
    def field(self) -> str:
        return fs.format_path(self.path)

    @property
    def owner(self) -> str:
        """The owner as conflict messages name it (from its identity, which carries no time)."""
        text = fs.go_quote(self.manager)
        if self.subresource:
            text += f" with subresource {fs.go_quote(self.subresource)}"
        return f"{text} using {self.api_version}" if self.operation == UPDATE else text

    @property
    def identity(self) -> str:
        return manager_identity(self.manager, self.operation, self.api_version, self.subresource)


class ApplyConflictError(Exception):
    """An apply refused because it would change fields that other managers own."""

    def __init__(self, conflicts: Iterable[Conflict]) -> None:
        self.conflicts = tuple(conflicts)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The Status message the API server returns with its 409."""
        if len(self.conflicts) == 1:
            only = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {only.owner}: {only.field}"
        lines: list[str] = []
        for identity in sorted({c.identity for c in self.conflicts}):
            group = [c for c in self.conflicts if c.identity == identity]
            lines.append(f"conflicts with {group[0].owner}:")
            lines.extend(f"- {c.field}" for c in group)
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        """The Status details.causes entries, one per conflicting field."""
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {c.owner}",
                "field": c.field,
            }
            for c in self.conflicts
        ]


@dataclass(frozen=True)
class ApplyResult:
    """The object to store (managedFields included), its entries, and whether content changed."""

    object: dict[str, Any]
    managed: tuple[ManagedFieldsEntry, ...]
    changed: bool


def crd_reset_fields(subresource: str) -> FieldSet:
    """What a CRD with a status subresource discards: status on the main resource, else spec."""
    return frozenset({("f:spec",)} if subresource == "status" else {("f:status",)})


# --- apply -------------------------------------------------------------------------------------


def apply(
    live: Mapping[str, Any] | None,
    managed: Sequence[ManagedFieldsEntry],
    config: Mapping[str, Any],
    manager: str,
    *,
    force: bool,
    subresource: str = "",
    now: str,
    types: TypeNode = CLUSTER_VERSION,
    reset_fields: FieldSet = EMPTY,
) -> ApplyResult:
    """Server-side apply `config` as `manager` onto `live` (None creates the object)."""
    base = _without_managed_fields(live) if live is not None else {}
    applied = _without_managed_fields(config)
    entries = _by_identity(managed)
    if live is not None and not entries:
        entries = _by_identity(
            update(
                {},
                base,
                [],
                BEFORE_FIRST_APPLY,
                operation_subresource=subresource,
                now=now,
                types=types,
                reset_fields=reset_fields,
            )
        )
    previous = entries.pop(manager_identity(manager, APPLY, "", subresource), None)
    claimed = _outside(fs.field_set(applied, types), reset_fields)
    merged = merge(base, applied, types)
    if previous is not None:
        owned = claimed.union(*(entry.fields for entry in entries.values()))
        merged = _prune(merged, previous.fields, owned, types)
    for path in reset_fields:
        merged = _reset(merged, base, [element[2:] for element in path])
    diff = _exclude(_typed_compare(base, merged, types), reset_fields)
    result = _take(entries.values(), diff, force=force)
    changed = not fs.same_value(base, merged)
    fields = _strip(claimed)
    if fields:
        # The server stamps an applier only when the object changed (a no-op keeps the old time).
        stamp = now if changed else (previous.time if previous else None)
        api_version = str(applied.get("apiVersion", ""))
        mine = ManagedFieldsEntry(manager, APPLY, api_version, fields, stamp, subresource)
        result[mine.identity] = mine
    ordered = tuple(sort_entries(result.values()))
    return ApplyResult(_with_managed_fields(merged, ordered), ordered, changed)


def _take(
    entries: Iterable[ManagedFieldsEntry], diff: Comparison, *, force: bool
) -> dict[str, ManagedFieldsEntry]:
    """Other managers' entries after an apply changed `diff`; raises on unforced conflicts."""
    taken = diff.added | diff.modified
    ordered = sorted(entries, key=lambda entry: entry.identity)
    conflicts = [
        Conflict(e.manager, path, e.operation, e.api_version, e.subresource)
        for e in ordered
        for path in fields_v1.iterate_paths(e.fields & taken)
    ]
    if conflicts and not force:
        raise ApplyConflictError(conflicts)
    kept = ((e, e.fields - taken - diff.removed) for e in ordered)
    return {e.identity: replace(e, fields=rest) for e, rest in kept if rest}


def _prune(
    merged: dict[str, Any], last: FieldSet, owned: FieldSet, types: TypeNode
) -> dict[str, Any]:
    """Drop what this applier set before, no longer sets, and nobody else owns."""
    # Server-maintained metadata survives whatever an applier sent before.
    doomed = _with_named_ancestors(last) - _with_named_ancestors(owned) - _SERVER_OWNED
    if not doomed:
        return merged
    descend = frozenset(path[:i] for path in doomed for i in range(1, len(path)))
    pruned = _Pruner(doomed, descend).drop(merged, types, ())
    return pruned if isinstance(pruned, dict) else {}


def _with_named_ancestors(fields: FieldSet) -> FieldSet:
    # A struct field counts as owned by whoever owns anything below it, so it is not pruned.
    extra = {path[:i] for path in fields for i in range(1, len(path)) if path[i - 1][:2] == "f:"}
    return fields | extra


@dataclass(frozen=True)
class _Pruner:
    doomed: FieldSet
    descend: FieldSet

    def drop(self, value: Any, node: TypeNode | None, path: Path) -> Any:
        if isinstance(value, dict):
            if node is not None and node.atomic:
                return value
            return self._drop_fields(value, node, path)
        kind = fs.list_type(node)
        if not isinstance(value, list) or kind.kind == "atomic":
            return value
        items: list[Any] = []
        for index, item in enumerate(value):
            item_path = (*path, fs.item_element(item, index, kind, path))
            if item_path not in self.doomed:
                kept = item_path in self.descend
                items.append(self.drop(item, element_type(node), item_path) if kept else item)
        return items

    def _drop_fields(
        self, value: dict[str, Any], node: TypeNode | None, path: Path
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, child in value.items():
            child_path = (*path, fs.field_element(name))
            if child_path in self.doomed:
                continue
            if child_path not in self.descend:
                out[name] = child
                continue
            pruned = self.drop(child, node.child(name) if node else None, child_path)
            # Emptied by pruning: the server leaves null there, which the CRD then drops.
            if not (isinstance(pruned, dict | list) and not pruned):
                out[name] = pruned
        return out


def _reset(merged: dict[str, Any], base: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """`merged` with the value at `names` put back as `base` has it (the strategy's reset)."""
    head, rest = names[0], names[1:]
    out = dict(merged)
    if not rest:
        if head in base:
            out[head] = copy.deepcopy(base[head])
        else:
            out.pop(head, None)
        return out
    inner, source = merged.get(head), base.get(head)
    if isinstance(inner, dict):
        out[head] = _reset(inner, source if isinstance(source, dict) else {}, rest)
    return out


# --- update ------------------------------------------------------------------------------------


def update(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any],
    managed: Sequence[ManagedFieldsEntry],
    manager: str,
    *,
    operation_subresource: str = "",
    now: str,
    types: TypeNode = CLUSTER_VERSION,
    reset_fields: FieldSet = EMPTY,
) -> list[ManagedFieldsEntry]:
    """Entries after a non-apply write (create, PUT, merge or JSON patch) made `old` into `new`."""
    before = _without_managed_fields(old) if old is not None else {}
    after = _without_managed_fields(new)
    diff = _exclude(_typed_compare(before, after, types), reset_fields)
    taken = diff.added | diff.modified
    out: dict[str, ManagedFieldsEntry] = {}
    for key, entry in _by_identity(managed).items():
        rest = entry.fields - taken - diff.removed
        if rest:
            out[key] = replace(entry, fields=rest)
    mine = _strip(taken)
    if mine:
        api_version = str(after.get("apiVersion") or before.get("apiVersion") or "")
        key = manager_identity(manager, UPDATE, api_version, operation_subresource)
        earlier = out[key].fields if key in out else EMPTY
        entry = ManagedFieldsEntry(
            manager, UPDATE, api_version, mine | earlier, now, operation_subresource
        )
        out[key] = entry
    return sort_entries(out.values())


# --- metadata.managedFields --------------------------------------------------------------------


def _seconds(time: str | None) -> int:
    if not time:
        return 0
    try:
        return int(datetime.fromisoformat(time).timestamp())
    except ValueError:
        return 0


def sort_entries(entries: Iterable[ManagedFieldsEntry]) -> list[ManagedFieldsEntry]:
    """Entries in the server's order: appliers, then updaters; each by time, then by name."""
    return sorted(
        entries,
        key=lambda e: (e.operation, _seconds(e.time), e.manager, e.api_version, e.subresource),
    )


def managed_fields_from_json(items: Iterable[Mapping[str, Any]] | None) -> list[ManagedFieldsEntry]:
    """Decode `metadata.managedFields`, refusing entries the server would refuse."""
    entries: list[ManagedFieldsEntry] = []
    for index, item in enumerate(items or ()):
        operation = item.get("operation")
        if operation not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        if not item.get("apiVersion"):
            raise ManagedFieldsError("apiVersion must not be empty")
        fields_type = item.get("fieldsType") or ""
        if not fields_type:
            raise ManagedFieldsError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != FIELDS_V1:
            quoted = fs.go_quote(str(fields_type))
            raise ManagedFieldsError(f"invalid fieldsType {quoted} in managed fields entry {index}")
        entries.append(
            ManagedFieldsEntry(
                manager=str(item.get("manager") or ""),
                operation=str(operation),
                api_version=str(item["apiVersion"]),
                fields=fields_v1.decode_fields_v1(item.get("fieldsV1") or {}),
                time=item.get("time") or None,
                subresource=str(item.get("subresource") or ""),
            )
        )
    return entries


def managed_fields_to_json(entries: Iterable[ManagedFieldsEntry]) -> list[dict[str, Any]]:
    """Encode entries as `metadata.managedFields`, in order and with Go's field order."""
    out: list[dict[str, Any]] = []
    for entry in sort_entries(entries):
        item = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
            "time": entry.time,
            "fieldsType": FIELDS_V1,
            "fieldsV1": fields_v1.encode_fields_v1(entry.fields),
            "subresource": entry.subresource,
        }
        # Go's omitempty: empty strings and absent times are left out.
        out.append({k: v for k, v in item.items() if v not in ("", None)})
    return out


# --- helpers -----------------------------------------------------------------------------------


def _typed_compare(before: Any, after: Any, types: TypeNode) -> Comparison:
    """The change between two objects as typed objects: a field that a zero-valued object of
    the kind already holds (a non-pointer struct, say) is never new, so it gets no `"."`."""
    return fs.compare(with_zero_fields(before, types), with_zero_fields(after, types), types)


def _by_identity(entries: Iterable[ManagedFieldsEntry]) -> dict[str, ManagedFieldsEntry]:
    return {entry.identity: entry for entry in entries}


def _strip(fields: FieldSet) -> FieldSet:
    return fields - _SERVER_OWNED


def _outside(fields: FieldSet, reset_fields: FieldSet) -> FieldSet:
    if not reset_fields:
        return fields
    return frozenset(
        path
        for path in fields
        if not any(path[:i] in reset_fields for i in range(1, len(path) + 1))
    )


def _exclude(diff: Comparison, reset_fields: FieldSet) -> Comparison:
    parts = (diff.added, diff.modified, diff.removed)
    return Comparison(*(_outside(part, reset_fields) for part in parts))


def _without_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(obj))
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return out


def _with_managed_fields(
    obj: dict[str, Any], entries: Sequence[ManagedFieldsEntry]
) -> dict[str, Any]:
    out = dict(obj)
    metadata = dict(out.get("metadata") or {})
    if entries:
        metadata["managedFields"] = managed_fields_to_json(entries)
    else:
        metadata.pop("managedFields", None)
    if metadata or "metadata" in out:
        out["metadata"] = metadata
    return out
