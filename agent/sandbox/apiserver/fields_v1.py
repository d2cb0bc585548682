"""FieldsV1, the form metadata.managedFields stores a field set in: encoding in the server's
key order (`"."` for an owned node that has children), decoding, and walking a set in order.

Pure: field sets in, nested JSON objects out, and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.sandbox.apiserver.fieldsets import (
    FieldSet,
    FieldSetError,
    Path,
    UnknownElementError,
    canonical_element,
    element_order,
    format_path,
    go_json,
)


@dataclass
class _Node:
    members: set[str] = field(default_factory=set)
    kids: dict[str, _Node] = field(default_factory=dict)


def _tree(paths: Iterable[Path]) -> _Node:
    root = _Node()
    for path in paths:
        node = root
        for element in path[:-1]:
            node = node.kids.setdefault(element, _Node())
        if path:
            node.members.add(path[-1])
    return root


def iterate_paths(fields: FieldSet) -> list[Path]:
    """The paths in the order the server walks a set: each level's members, then its children."""
    out: list[Path] = []
    _walk(_tree(fields), (), out)
    return out


def _walk(node: _Node, prefix: Path, out: list[Path]) -> None:
    out.extend((*prefix, element) for element in sorted(node.members, key=element_order))
    for element in sorted(node.kids, key=element_order):
        _walk(node.kids[element], (*prefix, element), out)


def encode_fields_v1(fields: FieldSet) -> dict[str, Any]:
    """The nested FieldsV1 object, keys in the order the server writes them."""
    return _encode(_tree(fields))


def _encode(node: _Node) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for element in sorted(node.members | node.kids.keys(), key=element_order):
        child = node.kids.get(element)
        if child is None:
            out[element] = {}
            continue
        inner: dict[str, Any] = {".": {}} if element in node.members else {}
        inner.update(_encode(child))
        out[element] = inner
    return out


def fields_v1_json(fields: FieldSet) -> str:
    """The FieldsV1 bytes (as text) the API server stores for this set."""
    return go_json(encode_fields_v1(fields), sort_keys=False)


def decode_fields_v1(document: Mapping[str, Any]) -> FieldSet:
    """The set of paths a FieldsV1 object describes; unknown element types are dropped."""
    out: set[Path] = set()
    _decode(document, (), out)
    return frozenset(out)


def _decode(node: Any, path: Path, out: set[Path]) -> bool:
    """Collect the paths below `path`; True when any known element was found under it."""
    if not isinstance(node, Mapping):
        raise FieldSetError(f"FieldsV1 at {format_path(path) or '<root>'} is not an object")
    found = False
    for raw, child in node.items():
        if raw == ".":
            continue
        try:
            element = canonical_element(raw)
        except UnknownElementError:
            continue
        found = True
        child_path = (*path, element)
        has_kids = _decode(child, child_path, out)
        if not has_kids or "." in child:
            out.add(child_path)
    return found
