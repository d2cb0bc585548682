"""Recognisers for the value formats the ClusterVersion API documents.

Pure: UUIDs, semantic versions, image pull specs, channel names and update-service URLs.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from agent.model.clusterversion_api import CHANNEL_PREFIXES, OKD_CHANNEL_STREAMS

_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-([0-9a-fA-F])[0-9a-fA-F]{3}-([0-9a-fA-F])[0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z"
)
_NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Semantic Versioning 2.0.0, as the cluster-version operator parses release versions.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_PRE_PART = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER = re.compile(
    rf"^{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-{_PRE_PART}(?:\.{_PRE_PART})*)?"
    r"(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?\Z"
)

# The distribution reference grammar (docker/distribution `reference` package).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?\Z"
)
_SHA256_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\Z")

_CHANNEL = re.compile(
    rf"^(?:{'|'.join(CHANNEL_PREFIXES)})-(?:(?:{'|'.join(OKD_CHANNEL_STREAMS)})-)?"
    r"[0-9]+(?:\.[0-9]+)?\Z"
)


_CHARACTER_NAMES = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
# Control and format characters (Cc, Cf) and the Unicode line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _character_name(character: str) -> str:
    return _CHARACTER_NAMES.get(character, f"the character U+{ord(character):04X}")


def invisible_problem(value: str) -> str | None:
    """What hidden character `value` carries, or None: whitespace at either end, or a
    control character anywhere. Identifiers, versions and URLs never hold one."""
    if value[:1].isspace():
        return f"starts with {_character_name(value[0])}"
    if value[-1:].isspace():
        return f"ends with {_character_name(value[-1])}"
    if value.isprintable():  # the common case, and a fast one: no Cc, Cf, Zl or Zp in it
        return None
    for character in value:
        if unicodedata.category(character) in _INVISIBLE_CATEGORIES:
            return f"holds {_character_name(character)}"
    return None


def uuid_problem(value: str) -> str | None:
    """Why `value` is not an RFC 4122 UUID, or None when it is one."""
    match = _UUID.match(value)
    if match is None:
        return "it is not in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hexadecimal)"
    if value != _NIL_UUID and match.group(2).lower() not in "89ab":
        return "its variant bits are not the RFC 4122 variant (the 17th digit must be 8, 9, a or b)"
    return None


def uuid_version(value: str) -> int:
    match = _UUID.match(value)
    return int(match.group(1), 16) if match else 0


def is_semver(value: str) -> bool:
    return _SEMVER.match(value) is not None


def is_image_reference(value: str) -> bool:
    return len(value) <= 4096 and _REFERENCE.match(value) is not None


def is_digest_pinned(value: str) -> bool:
    return _SHA256_DIGEST.search(value) is not None


def is_known_channel_form(value: str) -> bool:
    return _CHANNEL.match(value) is not None


def url_problem(value: str) -> str | None:
    """Why `value` is not an absolute URL, or None when it is one."""
    if value != value.strip() or any(ch.isspace() for ch in value):
        return "it contains whitespace"
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"it cannot be parsed ({exc})"
    if not parts.scheme:
        return "it has no scheme (such as https://)"
    if not parts.netloc:
        return "it has no host"
    return None


def url_scheme(value: str) -> str:
    return urlsplit(value).scheme.lower()
