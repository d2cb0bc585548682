"""Field paths and field sets: path elements, type-aware walking, and comparing two objects.

Pure: values in, values out. Formats follow sigs.k8s.io/structured-merge-diff as the API server
writes them (path elements `f:`, `k:`, `v:`, `i:`); FieldsV1, the stored form, is fields_v1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agent.sandbox.apiserver.typemodel import ATOMIC, ListType, TypeNode

# A path element is kept in its serialised FieldsV1 form, so it is hashable and canonical.
Path = tuple[str, ...]
FieldSet = frozenset[Path]
EMPTY: FieldSet = frozenset()


class FieldSetError(ValueError):
    """An object or FieldsV1 document that cannot be turned into field paths."""


class UnknownElementError(FieldSetError):
    """A path element of a type this server does not know (the real one drops these)."""


@dataclass(frozen=True)
class Comparison:
    """Paths that one object adds, changes or drops relative to another."""

    added: FieldSet = EMPTY
    modified: FieldSet = EMPTY
    removed: FieldSet = EMPTY


# --- JSON as Go writes it ------------------------------------------------------------------

# jsoniter's standard-library mode: control characters, HTML characters and the JS line
# separators become \u escapes; only quote, backslash, \n, \r and \t get short forms.
_GO_ESCAPES = (
    {code: f"\\u{code:04x}" for code in range(0x20)}
    | {ord(char): f"\\u{ord(char):04x}" for char in "<>&\u2028\u2029"}
    | {ord(char): "\\" + short for char, short in zip('"\\\n\r\t', '"\\nrt', strict=True)}
)


def _go_string(text: str) -> str:
    return '"' + text.translate(_GO_ESCAPES) + '"'


def _go_float(number: float) -> str:
    if not math.isfinite(number):
        raise FieldSetError(f"unsupported value: {number}")
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    return repr(number)


def go_json(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON the way the API server's Go encoder writes `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item, sort_keys=sort_keys) for item in value) + "]"
    if isinstance(value, Mapping):
        keys = sorted(value) if sort_keys else list(value)
        body = ",".join(f"{_go_string(k)}:{go_json(value[k], sort_keys=sort_keys)}" for k in keys)
        return "{" + body + "}"
    raise FieldSetError(f"cannot encode {type(value).__name__} as JSON")


# --- path elements ---------------------------------------------------------------------------


def field_element(name: str) -> str:
    """The element selecting field `name` of a map or struct."""
    return "f:" + name


def key_element(keys: Mapping[str, Any]) -> str:
    """The element selecting the map-list item whose key fields have these values."""
    return "k:" + go_json(dict(keys))


def value_element(value: Any) -> str:
    """The element selecting a value of a set list."""
    return "v:" + go_json(value)


def index_element(index: int) -> str:
    """The element selecting a position of a list that has no usable type."""
    return f"i:{index}"


@lru_cache(maxsize=4096)
def parse_element(element: str) -> tuple[str, Any]:
    """Split an element into its type letter and payload (name, key fields, value or index)."""
    kind, body = element[:1], element[2:]
    if len(element) < 2 or element[1] != ":":
        raise FieldSetError(f"path element {element!r} has no type prefix")
    if kind == "f":
        return kind, body
    if kind == "i":
        try:
            return kind, int(body)
        except ValueError as exc:
            raise FieldSetError(f"path element {element!r}: bad index") from exc
    if kind in ("k", "v"):
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise FieldSetError(f"path element {element!r}: {exc}") from exc
        if kind == "k" and not isinstance(payload, dict):
            raise FieldSetError(f"path element {element!r}: key is not an object")
        return kind, payload
    raise UnknownElementError(f"unknown path element type in {element!r}")


def canonical_element(element: str) -> str:
    """The element re-serialised the one way the server writes it (sorted key fields)."""
    kind, payload = parse_element(element)
    if kind == "k":
        return key_element(payload)
    if kind == "v":
        return value_element(payload)
    return element


def _value_order(value: Any) -> tuple[Any, ...]:
    # structured-merge-diff's total order: numbers < strings < booleans < lists < maps < null.
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_order(item) for item in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_order(value[k])) for k in sorted(value)))
    return (5,)


@lru_cache(maxsize=4096)
def element_order(element: str) -> tuple[Any, ...]:
    """Sort key of an element: fields, then keys, then values, then indexes, each in order."""
    kind, payload = parse_element(element)
    if kind == "f":
        return (0, payload)
    if kind == "k":
        return (1, tuple((name, _value_order(payload[name])) for name in sorted(payload)))
    if kind == "v":
        return (2, _value_order(payload))
    return (3, payload)


# --- messages --------------------------------------------------------------------------------

_GO_QUOTE_ESCAPES = {
    ord(char): "\\" + short for char, short in zip('"\\\a\b\f\n\r\t\v', '"\\abfnrtv', strict=True)
}


def go_quote(text: str) -> str:
    """`text` as Go's %q prints it."""
    parts = ['"']
    for char in text:
        code = ord(char)
        if code in _GO_QUOTE_ESCAPES:
            parts.append(_GO_QUOTE_ESCAPES[code])
        elif code < 0x20 or code == 0x7F:
            parts.append(f"\\x{code:02x}")
        elif not char.isprintable():
            parts.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            parts.append(char)
    return "".join(parts) + '"'


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, list):
        return "[" + ",".join(_value_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "".join(f"{k}={_value_text(v)}" for k, v in value.items())
    return _go_float(value) if isinstance(value, float) else str(value)


def format_element(element: str) -> str:
    """One element as structured-merge-diff's PathElement.String() prints it."""
    kind, payload = parse_element(element)
    if kind == "f":
        return f".{payload}"
    if kind == "k":
        return "[" + ",".join(f"{n}={_value_text(payload[n])}" for n in sorted(payload)) + "]"
    if kind == "v":
        return f"[={_value_text(payload)}]"
    return f"[{payload}]"


def format_path(path: Path) -> str:
    """A path as the API server prints it in conflict messages, e.g. `.spec.channel`."""
    return "".join(format_element(element) for element in path)


# --- type-aware walking ------------------------------------------------------------------------


def list_type(node: TypeNode | None) -> ListType:
    """How the list of type `node` merges; a list its type does not describe is atomic."""
    return node.list_type if node is not None and node.kind == "list" else ATOMIC


def item_element(item: Any, index: int, kind: ListType, path: Path) -> str:
    """The element naming one item of a set or map list."""
    if kind.kind == "set":
        return value_element(item)
    if kind.kind == "map":
        if not isinstance(item, dict):
            raise FieldSetError(f"{format_path(path)}: element {index}: expected a map")
        for name in kind.keys:
            if name not in item:
                raise FieldSetError(
                    f"{format_path(path)}: element {index}: associative list with keys has an "
                    f"element that omits key field {go_quote(name)} "
                    "(and doesn't have default value)"
                )
        return key_element({name: item[name] for name in kind.keys})
    return index_element(index)


Children = dict[str, tuple[Any, TypeNode | None]]


def children(value: Any, node: TypeNode | None, path: Path = ()) -> Children | None:
    """Child nodes of a granular value by element, with their types; None for a leaf.

    Scalars, atomic lists and atomic structs are leaves: owned and compared as one value."""
    if isinstance(value, dict):
        if node is not None and node.kind == "map" and node.atomic:
            return None
        return {field_element(k): (v, node.child(k) if node else None) for k, v in value.items()}
    if isinstance(value, list):
        kind = list_type(node)
        if kind.kind == "atomic":
            return None
        element = node.element if node is not None else None
        out: Children = {}
        for index, item in enumerate(value):
            # Repeated items are ignored, as the server does.
            out.setdefault(item_element(item, index, kind, path), (item, element))
        return out
    return None


def _owns_node(parent: TypeNode | None, element: str) -> bool:
    """Whether an applier owns a child as a node of its own, not only through its leaves:
    list items and the entries of a free-form map are; the fields of a struct are not."""
    if not element.startswith("f:"):
        return True
    if parent is None:
        return False
    if parent.kind == "untyped":
        return True
    return parent.kind == "map" and parent.element is not None and not parent.declares(element[2:])


def field_set(obj: Mapping[str, Any], types: TypeNode | None) -> FieldSet:
    """Every path an applied configuration sets, as its applier comes to own them."""
    out: set[Path] = set()
    _collect(dict(obj), types, (), out)
    return frozenset(out)


def _collect(value: Any, node: TypeNode | None, path: Path, out: set[Path]) -> None:
    kids = children(value, node, path)
    if kids is None or (not kids and isinstance(value, dict)):
        # A leaf; an empty struct or map is owned as a node of its own.
        if path:
            out.add(path)
        return
    for element, (child, child_node) in kids.items():
        child_path = (*path, element)
        if _owns_node(node, element):
            out.add(child_path)
        _collect(child, child_node, child_path, out)


# --- comparing two objects --------------------------------------------------------------------

_ABSENT: Any = object()


def same_value(left: Any, right: Any) -> bool:
    """Deep equality as the server judges it: 1 == 1.0, but true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_value(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_value, left, right))
    return type(left) is type(right) and left == right


def _emptyish(value: Any, kids: Children | None) -> bool:
    return value is _ABSENT or value is None or (kids is not None and not kids)


def compare(old: Any, new: Any, types: TypeNode | None) -> Comparison:
    """What `new` adds, modifies and removes relative to `old`, path by path.

    A node with children that `old` lacks counts as added (the `"."` of an Update)."""
    acc: tuple[set[Path], set[Path], set[Path]] = (set(), set(), set())
    _compare(old, new, types, (), acc=acc)
    return Comparison(frozenset(acc[0]), frozenset(acc[1]), frozenset(acc[2]))


def _compare(
    old: Any,
    new: Any,
    node: TypeNode | None,
    path: Path,
    *,
    acc: tuple[set[Path], set[Path], set[Path]],
) -> None:
    added, modified, removed = acc
    old_kids = None if old is _ABSENT else children(old, node, path)
    new_kids = None if new is _ABSENT else children(new, node, path)
    both_empty = _emptyish(old, old_kids) and _emptyish(new, new_kids)
    mismatched = (old_kids is None and not _emptyish(old, None)) or (
        new_kids is None and not _emptyish(new, None)
    )
    kinds_differ = old_kids is not None and new_kids is not None and type(old) is not type(new)
    if both_empty or mismatched or kinds_differ or (old_kids is None and new_kids is None):
        # A leaf; empty-or-null on both sides stays a leaf so {} and null remain distinct.
        if not path:
            return
        if old is _ABSENT:
            added.add(path)
        elif new is _ABSENT:
            removed.add(path)
        elif not same_value(old, new):
            modified.add(path)
        return
    old_kids, new_kids = old_kids or {}, new_kids or {}
    for element in {**old_kids, **new_kids}:
        old_child, old_node = old_kids.get(element, (_ABSENT, None))
        new_child, new_node = new_kids.get(element, (_ABSENT, None))
        child_node = old_node if old_node is not None else new_node
        _compare(old_child, new_child, child_node, (*path, element), acc=acc)
    if path and old is _ABSENT:
        added.add(path)
    elif path and new is _ABSENT:
        removed.add(path)
