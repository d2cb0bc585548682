"""Field errors as kube-apiserver words them: causes, their messages and the aggregate line.

Pure. Wording follows k8s.io/apimachinery/pkg/util/validation/field (Kubernetes 1.33), Go's fmt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"

# The field a path-less error reports: Go's (*field.Path)(nil).String().
NIL_FIELD = "<nil>"

_GO_ESCAPES = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r"}


@dataclass(frozen=True)
class Cause:
    """One entry of a 422's details.causes: reason (the error type), message, field."""

    reason: str
    message: str
    field: str

    def error(self) -> str:
        """The `field: message` line the Status message aggregates."""
        return f"{self.field}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        """metav1.StatusCause as JSON; its fields are omitempty."""
        body = {"reason": self.reason, "message": self.message, "field": self.field}
        return {key: value for key, value in body.items() if value}


def go_quote(text: str) -> str:
    """strconv.Quote: Go's %q of a string."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif code in _GO_ESCAPES:
            out.append(_GO_ESCAPES[code])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_float(number: float) -> str:
    """%v of a float64: shortest digits, exponent form outside [1e-4, 1e6)."""
    if number == 0:
        return "-0" if str(number).startswith("-") else "0"
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exponent, int)
    point = len("".join(map(str, digit_tuple))) + exponent
    prefix = "-" if sign else ""
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{prefix}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"


def go_sharp_v(value: Any) -> str:
    """%#v of a decoded JSON value (map[string]interface {}, []interface {}, scalars)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        entries = (f"{go_quote(k)}:{go_sharp_v(value[k])}" for k in sorted(value))
        return "map[string]interface {}{" + ", ".join(entries) + "}"
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_sharp_v(item) for item in value) + "}"
    return repr(value)


def bad_value(value: Any) -> str:
    """How field.Error.ErrorBody prints a bad value: %v for numbers, %q for strings, else %#v;
    no value at all is a bare null (Kubernetes 1.36; older servers printed it quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        # Go decodes integers beyond int64 as float64.
        return str(value) if -(2**63) <= value < 2**63 else go_float(float(value))
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_sharp_v(value)


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(field: str, detail: str = "") -> Cause:
    return Cause(REQUIRED, _with_detail("Required value", detail), field)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(INVALID, _with_detail(f"Invalid value: {bad_value(value)}", detail), field)


def type_invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(TYPE_INVALID, _with_detail(f"Invalid value: {bad_value(value)}", detail), field)


def not_supported(field: str, value: Any, supported: Sequence[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(item) for item in supported)
    return Cause(NOT_SUPPORTED, f"Unsupported value: {bad_value(value)}: {detail}", field)


def duplicate(field: str, value: Any) -> Cause:
    return Cause(DUPLICATE, f"Duplicate value: {bad_value(value)}", field)


def too_long(field: str, max_length: int) -> Cause:
    return Cause(TOO_LONG, f"Too long: may not be more than {max_length} bytes", field)


def too_many(field: str, actual: int, max_items: int) -> Cause:
    return Cause(TOO_MANY, f"Too many: {actual}: must have at most {max_items} items", field)


def aggregate(causes: Iterable[Cause]) -> str:
    """ErrorList.ToAggregate().Error(): distinct lines, bracketed when more than one."""
    lines = list(dict.fromkeys(cause.error() for cause in causes))
    if len(lines) == 1:
        return lines[0]
    return "[" + ", ".join(lines) + "]"
