"""Release versions in the order the API's documentation implies: Semantic Versioning 2.0
precedence, so 4.15.0-rc.0 < 4.15.0 < 4.15.1 and build metadata does not count.

Pure. The one version parser: the diff (forward drift), the gates, the update-graph reader
and the sandbox's operator all order releases with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
VersionKey = tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]


def version_key(text: str) -> VersionKey | None:
    """A sort key with Semantic Versioning 2.0 precedence, or None for a non-semver text:
    4.15.0-ec.2 < 4.15.0-rc.0 < 4.15.0 < 4.15.1; build metadata does not count."""
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return int(major), int(minor), int(patch), 1, ()
    # Numeric identifiers sort numerically and before alphanumeric ones.
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return int(major), int(minor), int(patch), 0, parts


def is_older(version: str, than: str) -> bool:
    mine, theirs = version_key(version), version_key(than)
    return mine is not None and theirs is not None and mine < theirs


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A parsed version; comparisons follow SemVer precedence and ignore build metadata."""

    key: VersionKey
    text: str = field(compare=False)

    @property
    def major(self) -> int:
        return self.key[0]

    @property
    def minor(self) -> int:
        return self.key[1]

    def same_minor(self, other: Version) -> bool:
        return self.key[:2] == other.key[:2]


def parse_version(text: str) -> Version | None:
    """OpenShift versions are SemVer (4.15.3, 4.16.0-rc.2, 4.20.0-0.nightly-...); others None."""
    key = version_key(text)
    return None if key is None else Version(key, text)


def version_sort_key(text: str) -> tuple[int, Version | str]:
    """Sorts SemVer versions by precedence and puts anything unparsable first, by text."""
    parsed = parse_version(text)
    return (0, text) if parsed is None else (1, parsed)
