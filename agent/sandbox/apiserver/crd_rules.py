"""The ClusterVersion CRD's CEL rules and string formats, as Python checks with CEL's semantics.

Pure. A field read on an absent key raises CelEvalError("no such key: ..."), as cel-go does;
`&&` and `||` absorb an error when another operand decides the result, as CEL's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class CelEvalError(Exception):
    """A rule that failed to evaluate (the API server rejects the object with this text)."""


Thunk = Callable[[], bool]


def select(value: Any, key: str) -> Any:
    """`value.key`: absent keys are evaluation errors, not false."""
    if not isinstance(value, Mapping) or key not in value:
        raise CelEvalError(f"no such key: {key}")
    return value[key]


def dig(value: Any, *path: str) -> Any:
    """`value.a.b.c`."""
    for key in path:
        value = select(value, key)
    return value


def has(value: Any, *path: str) -> bool:
    """`has(value.a.b.c)`: every step but the last must exist; the last is tested."""
    parent = dig(value, *path[:-1])
    return isinstance(parent, Mapping) and path[-1] in parent


def cel_and(*operands: Thunk) -> bool:
    """`a && b && ...`: false wins over an error, an error wins over true."""
    error: CelEvalError | None = None
    for operand in operands:
        try:
            if not operand():
                return False
        except CelEvalError as exc:
            error = error or exc
    if error is not None:
        raise error
    return True


def cel_or(*operands: Thunk) -> bool:
    """`a || b || ...`: true wins over an error, an error wins over false."""
    error: CelEvalError | None = None
    for operand in operands:
        try:
            if operand():
                return True
        except CelEvalError as exc:
            error = error or exc
    if error is not None:
        raise error
    return False


def _contains(name: str, value: Any) -> bool:
    return isinstance(value, list) and name in value


# --- The rules of the CRDs, one function each ---------------------------------------------


def architecture_excludes_image(update: Any) -> bool:
    """has(self.architecture) && has(self.image) ? (self.architecture == "" || ...) : true"""
    if not cel_and(lambda: has(update, "architecture"), lambda: has(update, "image")):
        return True
    return cel_or(
        lambda: select(update, "architecture") == "", lambda: select(update, "image") == ""
    )


def architecture_needs_version(update: Any) -> bool:
    """has(self.architecture) && self.architecture != "" ? self.version != "" : true"""
    if not cel_and(
        lambda: has(update, "architecture"), lambda: select(update, "architecture") != ""
    ):
        return True
    return bool(select(update, "version") != "")


def _capability_requires(root: Any, wanted: str, needed: str, *, baseline_none: bool) -> bool:
    """The shape of both capability rules: `guards ? needed in spec || needed in status : true`."""
    caps = ("spec", "capabilities")
    additional = (*caps, "additionalEnabledCapabilities")
    enabled = ("status", "capabilities", "enabledCapabilities")
    guards: list[Thunk] = [lambda: has(root, *caps), lambda: has(root, *additional)]
    if baseline_none:
        guards.append(lambda: dig(root, *caps, "baselineCapabilitySet") == "None")
    guards.append(lambda: _contains(wanted, dig(root, *additional)))
    if not cel_and(*guards):
        return True
    return cel_or(
        lambda: _contains(needed, dig(root, *additional)),
        lambda: cel_and(
            lambda: has(root, "status"),
            lambda: has(root, *enabled[:2]),
            lambda: has(root, *enabled),
            lambda: _contains(needed, dig(root, *enabled)),
        ),
    )


def marketplace_needs_olm(root: Any) -> bool:
    """The `marketplace` capability with baseline None needs OperatorLifecycleManager."""
    return _capability_requires(root, "marketplace", "OperatorLifecycleManager", baseline_none=True)


def cluster_api_needs_compatibility(root: Any) -> bool:
    """The `ClusterAPI` capability needs CompatibilityRequirements (TechPreviewNoUpgrade)."""
    return _capability_requires(
        root, "ClusterAPI", "CompatibilityRequirements", baseline_none=False
    )


def one_applies_condition(conditions: Any) -> bool:
    """self.exists_one(x, x.type == 'Applies')"""
    if not isinstance(conditions, list):
        raise CelEvalError("no such overload")
    return sum(1 for item in conditions if select(item, "type") == "Applies") == 1


def url_is_absolute(url: Any) -> bool:
    """isURL(self): Kubernetes' CEL URL library, which is Go's url.ParseRequestURI."""
    return isinstance(url, str) and is_request_uri(url)


# --- String formats (kube-openapi strfmt) and Go's url.ParseRequestURI -------------------

_HEX = "0123456789abcdefABCDEF"
_HOST_PUNCTUATION = set("-_.~!$&'()*+,;=:[]<>\"")
_USERINFO_PUNCTUATION = set("-._:~!$&'()*+,;=%@")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _escapes_ok(text: str, host: bool) -> bool:
    """net/url unescape's checks: well-formed %XX, and in a host only legal ASCII."""
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            code = text[index + 1 : index + 3]
            if len(code) < 2 or any(c not in _HEX for c in code):
                return False
            if host and int(code[0], 16) < 8 and code != "25":
                return False
            index += 3
            continue
        if host and ord(char) < 0x80 and not (char.isalnum() or char in _HOST_PUNCTUATION):
            return False
        index += 1
    return True


def _port_ok(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _authority_ok(authority: str) -> bool:
    userinfo, _, host = authority.rpartition("@")
    if "@" in authority and not all(
        (c.isascii() and c.isalnum()) or c in _USERINFO_PUNCTUATION for c in userinfo
    ):
        return False
    if host.startswith("["):
        closing = host.rfind("]")
        if closing < 0 or not _port_ok(host[closing + 1 :]):
            return False
    elif ":" in host and not _port_ok(host[host.rfind(":") :]):
        return False
    return _escapes_ok(host, host=True) and _escapes_ok(userinfo, host=False)


def _scheme(raw: str) -> tuple[str, str] | None:
    """getScheme: (scheme, rest), or None for a leading colon (missing protocol scheme)."""
    for index, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if index == 0:
                return "", raw
            continue
        if char == ":":
            return None if index == 0 else (raw[:index], raw[index + 1 :])
        return "", raw
    return "", raw


def is_request_uri(raw: str) -> bool:
    """Whether Go's url.ParseRequestURI accepts raw (an absolute URI or an absolute path)."""
    if raw == "" or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return False
    if raw == "*":
        return True
    split = _scheme(raw)
    if split is None:
        return False
    scheme, rest = split
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.split("?", 1)[0]
    if not rest.startswith("/"):
        return scheme != ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not _authority_ok(authority):
            return False
        rest = slash + path
    return _escapes_ok(rest, host=False)


def _is_date(text: str) -> bool:
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return 1 <= day <= _DAYS[month - 1] + (1 if month == 2 and leap else 0)


def is_date_time(text: str) -> bool:
    """strfmt.IsDateTime: a date, a 't', then a time; only the first two 't' parts count."""
    parts = text.lower().split("t")
    if len(text) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME.fullmatch(parts[1])
    return match is not None and all(
        value <= limit for value, limit in zip(match.groups()[:3], ("23", "59", "59"), strict=True)
    )
