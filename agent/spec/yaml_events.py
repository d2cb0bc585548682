"""Build plain JSON-like data from a YAML event stream, recording where every field sits.

Pure. Works from ruamel.yaml's parser events (libyaml-backed when ruamel.yaml.clib is
installed) with an explicit stack, so hostile nesting or alias bombs end in a located
error instead of a crash, and duplicate keys are caught with both positions.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from agent.model.source import FieldPath, Position

MAX_DEPTH = 64
MAX_EXPANDED_NODES = 100_000

_CORE_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_TRUE = frozenset({"true", "True", "TRUE"})
_BOOL_FALSE = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_FLOAT_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_FLOAT_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")

# How kubectl and oc read a plain scalar: go-yaml v2's resolver (resolve.go), YAML 1.1 style,
# which sigs.k8s.io/yaml runs before converting a manifest to JSON.
_GO_BOOLEANS = frozenset(
    {
        "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE",
        "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE",
    }
)  # fmt: skip
_GO_TRUE_WORDS = frozenset({"y", "yes", "on", "true"})
_GO_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
# resolve.go's resolveTable: the first characters of everything it does not keep as text.
_GO_NUMBER_HINTS = frozenset("+-0123456789")
_GO_HINTS = _GO_NUMBER_HINTS | frozenset("yYnNtTfFoO~.")
_GO_SPECIAL_FLOATS = frozenset(
    f"{sign}.{word}" for sign in ("", "+", "-") for word in ("inf", "Inf", "INF")
) | {".nan", ".NaN", ".NAN"}
# strconv.ParseInt/ParseUint with base 0, after go-yaml removed every underscore.
_GO_INT = re.compile(
    r"([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))\Z"
)
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def _go_int_fits(match: re.Match[str]) -> bool:
    sign, hexa, octal, binary, zero_octal, decimal = match.groups()
    for digits, base in ((hexa, 16), (octal, 8), (binary, 2), (zero_octal, 8), (decimal, 10)):
        if digits is not None:
            value = int(digits or "0", base)
            break
    if sign == "-":
        return -value >= _INT64_MIN
    # ParseUint takes what ParseInt cannot hold, but never with a sign.
    return value < 2**63 or (not sign and value <= _UINT64_MAX)


def _go_finite_float(text: str) -> bool:
    # strconv.ParseFloat fails with ErrRange past float64's range; go-yaml then keeps text.
    return math.isfinite(float(text))


def yaml11_type(value: str) -> str | None:
    """The JSON type kubectl gives the plain scalar `value`, or None when it reads text."""
    if not value:
        return "null"
    if value[0] not in _GO_HINTS:  # go-yaml reads the rest as text without looking further
        return None
    if value in _GO_BOOLEANS:
        return "boolean"
    if value in _GO_NULLS:
        return "null"
    if value in _GO_SPECIAL_FLOATS:
        return "number"
    if value[0] == ".":
        matched = _GO_DOT_FLOAT.match(value) is not None
        return "number" if matched and _go_finite_float(value) else None
    if value[0] not in _GO_NUMBER_HINTS:
        return None
    digits = value.replace("_", "")
    number = _GO_INT.match(digits)
    if number is not None and _go_int_fits(number):
        return "integer"
    if _GO_FLOAT.match(digits) and _go_finite_float(digits):
        return "number"
    return None


def yaml11_key_text(value: str) -> str | None:
    """The label kubectl and oc make of the plain key `value` (sigs.k8s.io/yaml turns each key
    go-yaml read back into text its own way), or None where they refuse the file: a null key,
    or one only a uint64 holds."""
    kubectl_type = yaml11_type(value)
    if kubectl_type is None:
        return value
    if kubectl_type == "boolean":
        return "true" if value.lower() in _GO_TRUE_WORDS else "false"
    if kubectl_type == "integer":
        number = _go_int_value(_GO_INT.match(value.replace("_", "")))
        return str(number) if _INT64_MIN <= number < 2**63 else None
    if kubectl_type == "number":
        return _go_float32_text(value)
    return None


def _go_int_value(match: re.Match[str] | None) -> int:
    assert match is not None  # yaml11_type said integer
    sign, hexa, octal, binary, zero_octal, decimal = match.groups()
    for digits, base in ((hexa, 16), (octal, 8), (binary, 2), (zero_octal, 8), (decimal, 10)):
        if digits is not None:
            return -int(digits or "0", base) if sign == "-" else int(digits or "0", base)
    raise AssertionError(match.string)


def _go_float32_text(value: str) -> str:
    """strconv.FormatFloat(v, 'g', -1, 32), with go-yaml's .inf/-.inf/.nan, as sigs.k8s.io/yaml
    writes a float key."""
    if value in _GO_SPECIAL_FLOATS:
        word = value.lstrip("+-.").lower()
        return ".nan" if word == "nan" else ("-.inf" if value.startswith("-") else ".inf")
    number = float(value.replace("_", ""))
    try:
        single = struct.unpack("<f", struct.pack("<f", number))[0]
    except OverflowError:  # past float32's range: Go's conversion gives an infinity
        return "-.inf" if number < 0 else ".inf"
    if single == 0:
        return "-0" if math.copysign(1.0, single) < 0 else "0"
    packed = struct.pack("<f", single)
    for places in range(9):  # the fewest digits that read back as the same float32
        shortest = f"{single:.{places}e}"
        if struct.pack("<f", float(shortest)) == packed:
            break
    mantissa, exponent_text = shortest.split("e")
    exponent = int(exponent_text)
    if exponent < -4 or exponent >= 6:  # %e, as Go's shortest 'g' decides
        return f"{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return f"{Decimal(shortest):f}"


class Mark(Protocol):
    line: int
    column: int


class YamlStructureError(Exception):
    """A document the decoder must refuse; carries the rule kind and a 1-based position."""

    def __init__(self, kind: str, message: str, where: Position) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.where = where


@dataclass
class BuiltDocument:
    body: Any
    keys: dict[FieldPath, Position]
    values: dict[FieldPath, Position]
    start: Position
    duplicate_keys: list[tuple[str, Position, Position]] = field(default_factory=list)
    # Plain scalars read here as text that kubectl reads as another type (yaml11_type).
    yaml11_types: dict[FieldPath, str] = field(default_factory=dict)
    # Plain mapping keys kubectl names otherwise (yaml11_key_text; None: it refuses them), by
    # the path of the value under them.
    yaml11_keys: dict[FieldPath, str | None] = field(default_factory=dict)


@dataclass
class _Frame:
    container: dict[str, Any] | list[Any]
    path: FieldPath
    anchor: str | None
    size: int = 1
    pending_key: str | None = None
    seen_keys: dict[str, Position] = field(default_factory=dict)


def _position(mark: Mark) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def resolve_scalar(value: str, tag: str | None, plain: bool, where: Position) -> Any:
    """Give a scalar its YAML 1.2 core-schema type; quoted scalars and timestamps stay text."""
    if tag in (None, "!"):
        if not plain or tag == "!":
            return value
        if _NULL.match(value):
            return None
        if value in _BOOL_TRUE:
            return True
        if value in _BOOL_FALSE:
            return False
        if _INT.match(value):
            return int(value)
        if _INT_OCT.match(value):
            return int(value[2:], 8)
        if _INT_HEX.match(value):
            return int(value[2:], 16)
        if _FLOAT.match(value):
            return float(value)
        if _FLOAT_INF.match(value):
            return float("-inf") if value.startswith("-") else float("inf")
        if _FLOAT_NAN.match(value):
            return float("nan")
        return value
    short = tag.removeprefix(_CORE_TAG)
    try:
        if short in ("str", "timestamp"):
            return value
        if short == "int":
            return int(value, 0)
        if short == "float":
            return float(value)
        if short == "bool":
            return value.lower() == "true"
        if short == "null":
            return None
    except ValueError as exc:
        raise YamlStructureError("syntax", f"{value!r} is not a valid !!{short}", where) from exc
    raise YamlStructureError(
        "unsupported", f"the tag {tag} is not supported in Kubernetes manifests", where
    )


class _DocumentBuilder:
    def __init__(self, start: Position) -> None:
        self.doc = BuiltDocument(None, {}, {}, start)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.expanded = 0

    def _child_path(self, where: Position) -> FieldPath:
        """Path of the value about to be added, recording its position on the way."""
        if not self.stack:
            self.doc.values[()] = where
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            path = (*top.path, len(top.container))
            self.doc.keys[path] = where
        else:
            assert top.pending_key is not None
            path = (*top.path, top.pending_key)
        self.doc.values[path] = where
        return path

    def _add(self, value: Any, size: int, anchor: str | None) -> None:
        self.expanded += size
        if self.expanded > MAX_EXPANDED_NODES:
            raise YamlStructureError(
                "alias",
                f"aliases expand this document beyond {MAX_EXPANDED_NODES:,} nodes",
                self.doc.start,
            )
        if anchor is not None:
            self.anchors[anchor] = (value, size)
        if not self.stack:
            self.doc.body = value
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.container, list):
            top.container.append(value)
        else:
            assert top.pending_key is not None
            top.container[top.pending_key] = value
            top.pending_key = None

    def _expects_key(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1].container, dict)
            and (self.stack[-1].pending_key is None)
        )

    def _take_key(self, text: str, where: Position) -> None:
        top = self.stack[-1]
        if text == "<<":
            raise YamlStructureError(
                "unsupported", "merge keys (<<) are not supported; write the fields out", where
            )
        if len(self.stack) == 1 and not top.seen_keys:
            # libyaml marks a root block mapping after `---` at the separator's line;
            # the first key is where a reader sees the object start.
            self.doc.values[()] = where
        first = top.seen_keys.get(text)
        if first is not None:
            self.doc.duplicate_keys.append((text, first, where))
        top.seen_keys[text] = where
        path = (*top.path, text)
        self.doc.keys[path] = where
        top.pending_key = text

    def scalar(self, event: Any) -> None:
        where = _position(event.start_mark)
        plain = event.style in (None, "")
        if self._expects_key():
            # Keys stay as written here; kubectl turns a key it reads as another type back
            # into text its own way (on -> "true", 0x1F -> "31"), so those are noted.
            self._take_key(event.value, where)
            if plain and event.tag is None:
                kubectl_key = yaml11_key_text(event.value)
                if kubectl_key != event.value:
                    self.doc.yaml11_keys[(*self.stack[-1].path, event.value)] = kubectl_key
            return
        path = self._child_path(where)
        value = resolve_scalar(event.value, event.tag, plain, where)
        if plain and event.tag is None and isinstance(value, str):
            kubectl_type = yaml11_type(value)
            if kubectl_type is not None:
                self.doc.yaml11_types[path] = kubectl_type
        self._add(value, 1, event.anchor)

    def alias(self, event: Any) -> None:
        where = _position(event.start_mark)
        if self._expects_key():
            raise YamlStructureError("unsupported", "an alias cannot be a mapping key", where)
        if any(frame.anchor == event.anchor for frame in self.stack):
            raise YamlStructureError(
                "alias", f"the alias *{event.anchor} refers to a node that contains it", where
            )
        if event.anchor not in self.anchors:
            raise YamlStructureError("syntax", f"the alias *{event.anchor} is undefined", where)
        self._child_path(where)
        value, size = self.anchors[event.anchor]
        self._add(value, size, None)

    def open(self, event: Any, container: dict[str, Any] | list[Any]) -> None:
        where = _position(event.start_mark)
        if self._expects_key():
            raise YamlStructureError("unsupported", "mapping keys must be scalars (strings)", where)
        tag = event.tag
        if tag not in (None, "!", f"{_CORE_TAG}map", f"{_CORE_TAG}seq"):
            raise YamlStructureError(
                "unsupported", f"the tag {tag} is not supported in Kubernetes manifests", where
            )
        if len(self.stack) >= MAX_DEPTH:
            raise YamlStructureError(
                "syntax", f"the document nests deeper than {MAX_DEPTH} levels", where
            )
        path = self._child_path(where)
        self.stack.append(_Frame(container, path, event.anchor))

    def close(self) -> None:
        frame = self.stack.pop()
        self._add(frame.container, frame.size, frame.anchor)


def build_documents(events: Iterable[Any]) -> Iterator[BuiltDocument]:
    """Yield one BuiltDocument per YAML document; raise YamlStructureError on refusal."""
    builder: _DocumentBuilder | None = None
    for event in events:
        name = type(event).__name__
        if name == "DocumentStartEvent":
            builder = _DocumentBuilder(_position(event.start_mark))
        elif builder is None:
            continue
        elif name == "ScalarEvent":
            builder.scalar(event)
        elif name == "MappingStartEvent":
            builder.open(event, {})
        elif name == "SequenceStartEvent":
            builder.open(event, [])
        elif name in ("MappingEndEvent", "SequenceEndEvent"):
            builder.close()
        elif name == "AliasEvent":
            builder.alias(event)
        elif name == "DocumentEndEvent":
            yield builder.doc
            builder = None
