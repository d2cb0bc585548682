"""Each kind's type as server-side apply sees it: structs and their declared fields, free-form
maps, lists and how they merge, scalars, what is atomic, and what a zero-valued object holds.

Pure data. Built-in kinds are written from k8s.io/api's Go types; ClusterVersion is derived
from our structural schema (crd_schema), with ObjectMeta where the CRD says only `object`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any, Literal

from agent.sandbox.apiserver.crd_schema import FeatureSet, Schema, cluster_version_schema


class _Absent:
    """No value: a zero-valued Go object leaves the field out (a pointer, or omitempty)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class ListType:
    """How server-side apply treats a list: replaced whole, merged per value, or per key."""

    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()


ATOMIC = ListType("atomic")
SET = ListType("set")


@dataclass(frozen=True, eq=False)
class TypeNode:
    """One node of a kind's type, as structured-merge-diff's schema has it.

    `map` covers both a struct (declared `fields`) and a free-form map (an `element` type for
    every key); `atomic` ones are replaced and owned whole. `zero` is the value the field holds
    in a zero-valued Go object: {} for a non-pointer struct, "" or null for a field without
    omitempty, ABSENT otherwise (always ABSENT for custom resources, which are unstructured).
    """

    kind: Literal["map", "list", "scalar", "untyped"]
    fields: Mapping[str, TypeNode] = field(default_factory=dict)
    element: TypeNode | None = None
    list_type: ListType = ATOMIC
    atomic: bool = False
    scalar: Literal["string", "numeric", "boolean", ""] = ""
    zero: Any = ABSENT

    def child(self, name: str) -> TypeNode | None:
        """The type of entry `name` of this map or struct; None where it declares none."""
        if self.kind == "untyped":
            return UNTYPED
        if self.kind != "map":
            return None
        declared = self.fields.get(name)
        return declared if declared is not None else self.element

    def declares(self, name: str) -> bool:
        """Whether `name` is a struct field here (its entries are otherwise map keys)."""
        return name in self.fields


UNTYPED = TypeNode("untyped")
STRING = TypeNode("scalar", scalar="string")
NUMERIC = TypeNode("scalar", scalar="numeric")
BOOLEAN = TypeNode("scalar", scalar="boolean")


def struct(fields: Mapping[str, TypeNode], *, atomic: bool = False, zero: Any = ABSENT) -> TypeNode:
    return TypeNode("map", fields=dict(fields), atomic=atomic, zero=zero)


def map_of(element: TypeNode) -> TypeNode:
    return TypeNode("map", element=element)


def list_of(element: TypeNode, list_type: ListType = ATOMIC) -> TypeNode:
    return TypeNode("list", element=element, list_type=list_type)


def with_zero(node: TypeNode, zero: Any) -> TypeNode:
    """`node` as the type of a field a zero-valued Go object holds as `zero`."""
    return replace(node, zero=zero)


def strings(*names: str) -> dict[str, TypeNode]:
    return dict.fromkeys(names, STRING)


# --- metav1.ObjectMeta (k8s.io/apimachinery pkg/apis/meta/v1 types.go) ----------------------

_OWNER_REFERENCE = struct(
    strings("apiVersion", "kind", "name", "uid")
    | {"controller": BOOLEAN, "blockOwnerDeletion": BOOLEAN},
    atomic=True,  # +structType=atomic
)
_MANAGED_FIELDS_ENTRY = struct(
    strings("manager", "operation", "apiVersion", "time", "fieldsType", "subresource")
    | {"fieldsV1": UNTYPED}
)
OBJECT_META = struct(
    strings("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")
    | strings("creationTimestamp", "deletionTimestamp")
    | {"generation": NUMERIC, "deletionGracePeriodSeconds": NUMERIC}
    | {"labels": map_of(STRING), "annotations": map_of(STRING)}
    | {"ownerReferences": list_of(_OWNER_REFERENCE, ListType("map", ("uid",)))}
    | {"finalizers": list_of(STRING, SET)}
    | {"managedFields": list_of(_MANAGED_FIELDS_ENTRY)}
)


def _built_in(fields: Mapping[str, TypeNode]) -> TypeNode:
    """The root of a built-in kind: TypeMeta, a (non-pointer) ObjectMeta, and its fields."""
    return struct(
        strings("apiVersion", "kind") | {"metadata": with_zero(OBJECT_META, {})} | dict(fields)
    )


# --- built-in kinds (k8s.io/api) ---------------------------------------------------------

# coordination/v1 Lease: `spec` is a LeaseSpec value, not a pointer.
LEASE = _built_in(
    {
        "spec": struct(
            strings("holderIdentity", "acquireTime", "renewTime", "strategy", "preferredHolder")
            | {"leaseDurationSeconds": NUMERIC, "leaseTransitions": NUMERIC},
            zero={},
        )
    }
)

# core/v1 ObjectReference is +structType=atomic: owned and replaced as one value.
_OBJECT_REFERENCE = struct(
    strings("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath"),
    atomic=True,
)
# core/v1 Event: involvedObject and source are values; the timestamps are metav1.Time values
# (null when zero); reportingComponent and reportingInstance have no omitempty.
EVENT = _built_in(
    {
        "involvedObject": with_zero(_OBJECT_REFERENCE, {}),
        "source": struct(strings("component", "host"), zero={}),
        "firstTimestamp": with_zero(STRING, None),
        "lastTimestamp": with_zero(STRING, None),
        "eventTime": with_zero(STRING, None),
        "series": struct({"count": NUMERIC, "lastObservedTime": STRING}),
        "related": _OBJECT_REFERENCE,
        "reportingComponent": with_zero(STRING, ""),
        "reportingInstance": with_zero(STRING, ""),
        "count": NUMERIC,
    }
    | strings("reason", "message", "type", "action")
)

_NAMESPACE_CONDITION = struct(strings("type", "status", "lastTransitionTime", "reason", "message"))
NAMESPACE = _built_in(
    {
        "spec": struct({"finalizers": list_of(STRING)}, zero={}),
        "status": struct(
            {
                "phase": STRING,
                "conditions": list_of(_NAMESPACE_CONDITION, ListType("map", ("type",))),
            },
            zero={},
        ),
    }
)


# --- custom resources ---------------------------------------------------------------------

_SCALARS: Mapping[str, Literal["string", "numeric", "boolean"]] = {
    "string": "string",
    "integer": "numeric",
    "number": "numeric",
    "boolean": "boolean",
}


def from_schema(schema: Schema) -> TypeNode:
    """A structural schema node as the API server's type converter reads it."""
    if schema.type == "object":
        return struct({name: from_schema(child) for name, child in schema.properties.items()})
    if schema.type == "array":
        item = from_schema(schema.items) if schema.items is not None else UNTYPED
        kind = schema.list_type or "atomic"
        return list_of(item, ListType(kind, schema.list_map_keys))  # type: ignore[arg-type]
    scalar = _SCALARS.get(schema.type)
    return TypeNode("scalar", scalar=scalar) if scalar else UNTYPED


@cache
def cluster_version_type(feature_set: FeatureSet = "Default") -> TypeNode:
    """ClusterVersion as the CRD of `feature_set` declares it, with the standard ObjectMeta."""
    root = from_schema(cluster_version_schema(feature_set))
    return replace(root, fields={**root.fields, "metadata": OBJECT_META})


_BUILT_IN = {"Lease": LEASE, "Event": EVENT, "Namespace": NAMESPACE}


def object_type(kind: str, feature_set: FeatureSet = "Default") -> TypeNode:
    """The type of a whole object of `kind` (ClusterVersion's depends on the feature set)."""
    if kind == "ClusterVersion":
        return cluster_version_type(feature_set)
    if kind not in _BUILT_IN:
        raise ValueError(f"no type is known for kind {kind!r}")
    return _BUILT_IN[kind]


# --- zero values --------------------------------------------------------------------------


def with_zero_fields(value: Any, node: TypeNode | None) -> Any:
    """`value` as the server holds it once typed: every field a zero-valued Go object has
    (a non-pointer struct, a field without omitempty) filled in where it is missing."""
    if node is None:
        return value
    if isinstance(value, dict) and node.kind == "map":
        out = dict(value)
        for name, child in node.fields.items():
            if name not in out and child.zero is not ABSENT:
                out[name] = copy.deepcopy(child.zero)
        return {name: with_zero_fields(item, node.child(name)) for name, item in out.items()}
    if isinstance(value, list) and node.kind == "list":
        return [with_zero_fields(item, node.element) for item in value]
    return value


# --- decoding into a Go type -------------------------------------------------------------


def prune_undeclared(value: Any, node: TypeNode | None) -> tuple[Any, list[str]]:
    """`value` decoded into its kind's Go type: struct fields the type does not declare are
    dropped. Also the JSON paths of what was dropped, in the order the decoder meets them."""
    dropped: list[str] = []
    return _pruned(value, node, "", dropped), dropped


def _pruned(value: Any, node: TypeNode | None, path: str, dropped: list[str]) -> Any:
    if node is None or node.kind == "untyped":
        return value
    if isinstance(value, dict) and node.kind == "map":
        out: dict[str, Any] = {}
        for name, item in value.items():
            child = node.child(name)
            where = f"{path}.{name}" if path else name
            if child is None:
                dropped.append(where)
            else:
                out[name] = _pruned(item, child, where, dropped)
        return out
    if isinstance(value, list) and node.kind == "list":
        return [
            _pruned(item, node.element, f"{path}[{i}]", dropped) for i, item in enumerate(value)
        ]
    return value
