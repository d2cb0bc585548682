"""Release versions in the order the API's documentation implies: Semantic Versioning 2.0
precedence, so 4.15.0-rc.0 < 4.15.0 < 4.15.1 and build metadata does not count.

Pure. Shared by the diff (forward drift), the gates and the readers of update lists.
"""

from __future__ import annotations

import re

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
