"""The three validation passes kube-apiserver runs on a custom resource, over our Schema.

Pure. OpenAPI (kube-openapi's validators and messages), list-type uniqueness, then CEL rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from agent.sandbox.apiserver import field_errors as fe
from agent.sandbox.apiserver.crd_rules import CelEvalError, is_date_time, is_request_uri
from agent.sandbox.apiserver.crd_schema import Schema
from agent.sandbox.apiserver.field_errors import Cause

# Errors after which the CEL rules are not run (strategy.go's hasBlockingErr).
BLOCKING = frozenset({fe.NOT_SUPPORTED, fe.REQUIRED, fe.TOO_LONG, fe.TOO_MANY, fe.TYPE_INVALID})
BLOCKED_RULES = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)
_FORMATS: dict[str, Callable[[str], bool]] = {"uri": is_request_uri, "date-time": is_date_time}
_INT64 = range(-(2**63), 2**63)
_GO_FORMAT = {"integer": "int64", "number": "float64"}


def json_type(value: Any) -> str:
    """The JSON type kube-openapi infers from a decoded value (ints beyond int64 are floats)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer" if value in _INT64 else "number"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _whole(value: Any) -> bool:
    """swag.IsFloat64AJSONInteger, which only says yes for 0 <= f <= 2**53."""
    return isinstance(value, float) and value.is_integer() and 0 <= value <= 2**53


def _type_mismatch(value: Any, kind: str, schema: Schema) -> tuple[str, str] | None:
    """kube-openapi's typeValidator: (the type it asks for, the type it saw), or None."""
    if kind == "null":
        return None if schema.nullable else (schema.type, "null")
    fits = (
        kind == schema.type
        or (kind == "number" and schema.type == "integer" and _whole(value))
        or (kind == "integer" and schema.type == "number")
    )
    go_format = _GO_FORMAT.get(kind, "")
    text_like = kind in ("string", "array")
    if schema.format and not text_like and not (fits or go_format == schema.format):
        return schema.format, go_format
    # A string or list given to a formatted non-numeric field is never type-checked there.
    if schema.format and text_like and schema.type not in ("integer", "number"):
        return None
    return None if fits else (schema.type, kind)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _OpenAPI:
    """One kube-openapi SchemaValidator run: messages name `path`, causes name prefix+path."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.causes: list[Cause] = []

    def field(self, path: str) -> str:
        if self.prefix and path:
            return f"{self.prefix}.{path}"
        return self.prefix or path or fe.NIL_FIELD

    def node(self, value: Any, schema: Schema, path: str) -> None:
        kind = json_type(value)
        self.type(value, kind, schema, path)
        if kind == "null":
            self.enum(value, schema, path)
            return
        if isinstance(value, str):
            self.string(value, schema, path)
        if kind in ("integer", "number") and schema.minimum is not None:
            self.minimum(value, schema.minimum, path)
        if isinstance(value, list):
            self.array(value, schema, path)
        self.enum(value, schema, path)
        if isinstance(value, dict):
            self.object(value, schema, path)

    def type(self, value: Any, kind: str, schema: Schema, path: str) -> None:
        mismatch = _type_mismatch(value, kind, schema)
        if mismatch is not None:
            expected, shown = mismatch
            detail = f"{path} in body must be of type {expected}: {fe.go_quote(shown)}"
            self.causes.append(fe.type_invalid(self.field(path), shown, detail))

    def string(self, value: str, schema: Schema, path: str) -> None:
        where = self.field(path)
        if schema.max_length is not None and len(value) > schema.max_length:
            self.causes.append(fe.too_long(where, schema.max_length))
        if schema.min_length is not None and len(value) < schema.min_length:
            detail = f"{path} in body should be at least {schema.min_length} chars long"
            self.causes.append(fe.invalid(where, value, detail))
        if schema.pattern and not _regex(schema.pattern).search(value):
            detail = f"{path} in body should match '{schema.pattern}'"
            self.causes.append(fe.invalid(where, value, detail))
        check = _FORMATS.get(schema.format)
        if check is not None and not check(value):
            detail = f"{path} in body must be of type {schema.format}: {fe.go_quote(value)}"
            self.causes.append(fe.type_invalid(where, value, detail))

    def minimum(self, value: float, minimum: int, path: str) -> None:
        if value < minimum:
            detail = f"{path} in body should be greater than or equal to {minimum}"
            self.causes.append(fe.invalid(self.field(path), value, detail))

    def array(self, value: list[Any], schema: Schema, path: str) -> None:
        if schema.items is not None:
            for index, item in enumerate(value):
                self.node(item, schema.items, f"{path}[{index}]")
        where = self.field(path)
        if schema.min_items is not None and len(value) < schema.min_items:
            detail = f"{path} in body should have at least {schema.min_items} items"
            self.causes.append(fe.invalid(where, len(value), detail))
        if schema.max_items is not None and len(value) > schema.max_items:
            self.causes.append(fe.too_many(where, len(value), schema.max_items))

    def enum(self, value: Any, schema: Schema, path: str) -> None:
        if schema.enum and not (isinstance(value, str) and value in schema.enum):
            self.causes.append(fe.not_supported(self.field(path), value, schema.enum))

    def object(self, value: dict[str, Any], schema: Schema, path: str) -> None:
        for name, child in schema.properties.items():
            if name in value:
                self.node(value[name], child, _join(path, name))
        for name in schema.required:
            if name not in value:
                self.causes.append(fe.required(self.field(_join(path, name))))


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    # Go's `$` is end of text; Python's would also match before a final newline.
    anchored = pattern.endswith("$") and not pattern.endswith("\\$")
    return re.compile(pattern[:-1] + r"\Z" if anchored else pattern)


def openapi_errors(value: Any, schema: Schema, prefix: str = "") -> list[Cause]:
    """kube-openapi's result for value, as field errors; prefix is the validator's field path."""
    run = _OpenAPI(prefix)
    run.node(value, schema, "")
    return run.causes


# --- x-kubernetes-list-type: map and set ------------------------------------------------


class _Unspecified:
    """A list-map key the item does not set (Go prints it as an empty key map)."""


_UNSPECIFIED = _Unspecified()


def _go_json(value: Any) -> Any:
    """Values as Go's json.Marshal writes them: a whole float64 prints like an integer."""
    if isinstance(value, dict):
        return {key: _go_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_go_json(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def _identity(value: Any) -> Any:
    """Go map-key identity: compounds by their JSON, scalars by type and value."""
    if value is _UNSPECIFIED:
        return ("unspecified", None)
    if isinstance(value, dict | list):
        return ("json", json.dumps(_go_json(value), sort_keys=True, separators=(",", ":")))
    return (json_type(value), value)


def _second_occurrences(values: list[Any]) -> list[int]:
    """validateListSet: the index of the second appearance of each repeated value."""
    seen: dict[Any, int] = {}
    found: list[int] = []
    for index, value in enumerate(values):
        key = _identity(value)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            found.append(index)
    return found


def _list_map(path: str, schema: Schema, items: list[Any]) -> list[Cause]:
    for index, item in enumerate(items):
        if item is not None and not isinstance(item, dict):
            detail = "must be an object for an array of list-type map"
            return [fe.invalid(f"{path}[{index}]", item, detail)]
    keys: list[Any] = []
    for item in items:
        present = {k: item[k] for k in schema.list_map_keys if k in (item or {})}
        keys.append(present)
    if len(schema.list_map_keys) == 1:
        (name,) = schema.list_map_keys
        singles = [key.get(name, _UNSPECIFIED) for key in keys]
        return [
            fe.duplicate(f"{path}[{i}]", {} if singles[i] is _UNSPECIFIED else {name: singles[i]})
            for i in _second_occurrences(singles)
        ]
    return [fe.duplicate(f"{path}[{i}]", keys[i]) for i in _second_occurrences(keys)]


def _list_types(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    if isinstance(value, dict):
        for name, child in value.items():
            if name in schema.properties:
                _list_types(child, schema.properties[name], _join(path, name), out)
    elif isinstance(value, list):
        if schema.list_type == "set":
            out.extend(fe.duplicate(f"{path}[{i}]", value[i]) for i in _second_occurrences(value))
        elif schema.list_type == "map":
            out.extend(_list_map(path, schema, value))
        if schema.items is not None:
            for index, item in enumerate(value):
                _list_types(item, schema.items, f"{path}[{index}]", out)


def list_type_errors(value: Any, schema: Schema) -> list[Cause]:
    """ValidateListSetsAndMaps over the whole object."""
    out: list[Cause] = []
    if isinstance(value, dict):
        _list_types(value, schema, "", out)
    return out


# --- x-kubernetes-validations ------------------------------------------------------------


def _rules_at(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    where = path or fe.NIL_FIELD
    for rule in schema.rules:
        try:
            if rule.check(value):
                continue
            out.append(fe.invalid(where, schema.type, rule.message))
        except CelEvalError as exc:
            out.append(fe.invalid(where, schema.type, f"{exc} evaluating rule: {rule.message}"))


def _cel(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    if value is None:
        return
    _rules_at(value, schema, path, out)
    if isinstance(value, dict):
        for name, child in schema.properties.items():
            if name in value:
                _cel(value[name], child, _join(path, name), out)
    elif isinstance(value, list) and schema.items is not None:
        for index, item in enumerate(value):
            _cel(item, schema.items, f"{path}[{index}]", out)


def cel_errors(value: Any, schema: Schema) -> list[Cause]:
    """Every x-kubernetes-validations rule, root first, then depth first in schema order."""
    out: list[Cause] = []
    _cel(value, schema, "", out)
    return out


def blocked_rules_cause() -> Cause:
    """The path-less cause that stands for the CEL rules skipped after a blocking error."""
    return fe.invalid(fe.NIL_FIELD, None, BLOCKED_RULES)
