"""Releases as the sandbox's update service serves them: the deterministic fake by-digest
images and errata URLs, payload sizes and version hashes derived from a version.

Pure; each release renders itself in the ClusterVersion status shape.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

RELEASE_REPOSITORY = "quay.io/openshift-release-dev/ocp-release"


@dataclass(frozen=True, slots=True)
class Release:
    """A release as the update service lists it (status.desired, availableUpdates)."""

    version: str
    image: str
    url: str
    channels: tuple[str, ...]

    def as_status(self) -> dict[str, Any]:
        return {
            "channels": list(self.channels),
            "image": self.image,
            "url": self.url,
            "version": self.version,
        }


def release_url(version: str) -> str:
    return f"https://releases.sandbox.invalid/errata/{version}"


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
