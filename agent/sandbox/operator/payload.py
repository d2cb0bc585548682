"""Loading the release spec.desiredUpdate asks for, as the cluster-version operator's sync worker
does before any precondition: resolve it, retrieve and verify it, and check its version.

Pure: the spec, the status, the graph and the knobs in; a payload, a refusal or nothing out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.sandbox.operator.knobs import ScenarioKnobs
from agent.sandbox.operator.releases import Release
from agent.sandbox.operator.update_service import UpdateService

RETRIEVE_PAYLOAD = "RetrievePayload"
VERIFY_PAYLOAD_VERSION = "VerifyPayloadVersion"
KEYRING = "verifier-public-key-redhat"


@dataclass(frozen=True, slots=True)
class Payload:
    """A retrieved release ready for the preconditions. `version` is what the sync worker
    reports (spec's version, or the payload's when spec named only an image)."""

    release: Release
    image: str
    force: bool
    verified: bool
    # The operator's note on a signature it could not verify and went past because of force;
    # it opens the history entry's acceptedRisks.
    unverified: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """ReleaseAccepted=False: the step that failed is the reason."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A desiredUpdate the operator cannot act on; it keeps reconciling what it has."""

    message: str


def load(
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    available: Iterable[Mapping[str, Any]] | None,
    graph: UpdateService,
    knobs: ScenarioKnobs,
) -> Payload | Refusal | Invalid | None:
    """The requested release when it differs from the one being reconciled, else None.
    `available` is availableUpdates as the operator has just retrieved them."""
    update = spec.get("desiredUpdate") or {}
    image, version = str(update.get("image") or ""), str(update.get("version") or "")
    force = bool(update.get("force"))
    desired = status["desired"]
    if update and not image and not version:
        return Invalid(
            "The cluster version is invalid: spec.desiredUpdate.version: Required value: must "
            "specify version or image"
        )
    if image:
        if image == desired.get("image"):
            return None
    elif not version or version == desired.get("version"):
        return None
    else:
        found = _image_for(version, [*(available or ()), *(status.get("history") or ())])
        if found is None:
            return Invalid(
                "The cluster version is invalid: spec.desiredUpdate.version: Invalid value: "
                f'"{version}": when image is empty the update must be a previous version or an '
                "available update"
            )
        image = found
    release = graph.release_by_image(image)
    failure = _verification_failure(image, release, knobs)
    if failure is not None and not force:
        return Refusal(RETRIEVE_PAYLOAD, _retrieve_failed(version, image, failure))
    if release is None:
        # Forced past verification, the operator would pull the image and fail: the sandbox
        # has no such release. The words after the operator's prefix are the sandbox's own.
        reason = (
            "Unable to download and prepare the update: the sandbox's update graph has no "
            "release with this image"
        )
        return Refusal(RETRIEVE_PAYLOAD, _retrieve_failed(version, image, reason))
    if version and version != release.version:
        return Refusal(
            VERIFY_PAYLOAD_VERSION,
            f'Verifying payload failed version="{version}" image="{image}" failure=release image '
            f"version {release.version} does not match the expected upstream version {version}",
        )
    unverified = None
    if failure is not None:
        unverified = (
            f'Target release version="{version}" image="{image}" cannot be verified, but '
            f"continuing anyway because the update was forced: {failure.removeprefix(_PREFIX)}"
        )
    return Payload(release, image, force, failure is None, unverified)


_PREFIX = "The update cannot be verified: "


def _verification_failure(image: str, release: Release | None, knobs: ScenarioKnobs) -> str | None:
    """Why the release signature check fails (pkg/cvo/updatepayload.go's words), or None."""
    if "@sha256:" not in image:
        return f"{_PREFIX}release images that are not accessed via digest cannot be verified"
    if release is None or release.version in knobs.unverified_releases:
        digest = image.split("@", 1)[1]
        return f"{_PREFIX}unable to verify {digest} against keyrings: {KEYRING}"
    return None


def _retrieve_failed(version: str, image: str, failure: str) -> str:
    return f'Retrieving payload failed version="{version}" image="{image}" failure={failure}'


def _image_for(version: str, known: Iterable[Mapping[str, Any]]) -> str | None:
    """A version-only desiredUpdate resolves through availableUpdates, then the history, as the
    operator's validation does; a conditional update that is not recommended needs its image."""
    for release in known:
        if release.get("version") == version and release.get("image"):
            return str(release["image"])
    return None
