"""Release versions for the sandbox: SemVer 2.0.0 precedence, and the deterministic fake images,
payload sizes and version hashes derived from a version.

Pure. OpenShift versions are SemVer (4.15.3, 4.16.0-rc.2, 4.20.0-0.nightly-...); others are None.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field

RELEASE_REPOSITORY = "quay.io/openshift-release-dev/ocp-release"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A parsed version; comparisons follow SemVer precedence and ignore build metadata."""

    key: tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]
    text: str = field(compare=False)

    @property
    def major(self) -> int:
        return self.key[0]

    @property
    def minor(self) -> int:
        return self.key[1]

    def same_minor(self, other: Version) -> bool:
        return self.key[:2] == other.key[:2]


def _identifier_key(identifier: str) -> tuple[int, int, str]:
    # Numeric identifiers sort numerically and before alphanumeric ones (SemVer rule 11.4).
    if identifier.isdigit():
        return (0, int(identifier), "")
    return (1, 0, identifier)


def parse_version(text: str) -> Version | None:
    match = _SEMVER.match(text)
    if match is None:
        return None
    major, minor, patch, pre = int(match[1]), int(match[2]), int(match[3]), match[4]
    pre_key = tuple(_identifier_key(part) for part in pre.split(".")) if pre else ()
    # A release sorts after every pre-release of the same major.minor.patch.
    return Version((major, minor, patch, 0 if pre else 1, pre_key), text)


def version_sort_key(text: str) -> tuple[int, Version | str]:
    """Sorts SemVer versions by precedence and puts anything unparsable first, by text."""
    parsed = parse_version(text)
    return (0, text) if parsed is None else (1, parsed)


def release_image(version: str) -> str:
    """The sandbox's by-digest pull spec for a version: stable, fake, and unique per version."""
    digest = hashlib.sha256(f"cvsync-sandbox-release/{version}".encode()).hexdigest()
    return f"{RELEASE_REPOSITORY}@sha256:{digest}"


def version_hash(image: str) -> str:
    """A versionHash in the real field's shape (8 bytes, URL-safe base64) derived from an image."""
    raw = hashlib.sha256(f"cvsync-sandbox-manifests/{image}".encode()).digest()[:8]
    return base64.urlsafe_b64encode(raw).decode()


def manifest_count(version: str) -> int:
    """How many manifests the simulated payload of a version holds (real ones: 800-1000)."""
    digest = hashlib.sha256(f"cvsync-sandbox-payload/{version}".encode()).digest()
    return 820 + int.from_bytes(digest[:2], "big") % 120
