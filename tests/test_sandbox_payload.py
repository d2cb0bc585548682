"""The simulated operator loading the payload a desiredUpdate names, before any precondition:
signature verification (RetrievePayload), the version check (VerifyPayloadVersion), and what
force goes past. Sources, in openshift/cluster-version-operator: pkg/cvo/sync_worker.go
(syncPayload: the steps and their messages, which become ReleaseAccepted's reason and message)
and pkg/cvo/updatepayload.go (RetrievePayload: verification, and force past it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from operator_support import ETCD_RISK, T0, cluster, image, must, reconciled, request, walk

UNKNOWN = "quay.io/openshift-release-dev/ocp-release@sha256:" + "0" * 64


def unverified(image_: str) -> str:
    """The verifier's error for a digest no trusted signature covers."""
    digest = image_.split("@", 1)[1]
    return f"unable to verify {digest} against keyrings: verifier-public-key-redhat"


def refused(obj: dict[str, Any], reason: str) -> str:
    accepted = must(obj, "ReleaseAccepted")
    assert (accepted["status"], accepted["reason"]) == ("False", reason)
    return str(accepted["message"])


def test_a_release_whose_signature_cannot_be_verified_is_refused_until_forced() -> None:
    simulator, obj = cluster("unverified-release")
    before = [dict(entry) for entry in obj["status"]["history"]]
    target = image("4.15.15")
    reconciled(simulator, request(obj, version="4.15.15"), T0)
    assert refused(obj, "RetrievePayload") == (
        f'Retrieving payload failed version="4.15.15" image="{target}" failure=The update cannot '
        f"be verified: {unverified(target)}"
    )
    assert obj["status"]["history"] == before
    assert obj["status"]["desired"]["version"] == "4.15.12"
    assert must(obj, "Progressing")["message"] == "Cluster version is 4.15.12"

    # updatepayload.go: with force the verification error is kept and the payload taken.
    reconciled(simulator, request(obj, version="4.15.15", force=True), T0)
    assert must(obj, "ReleaseAccepted")["reason"] == "PayloadLoaded"
    entry = obj["status"]["history"][0]
    assert (entry["version"], entry["state"], entry["verified"]) == ("4.15.15", "Partial", False)
    assert entry["acceptedRisks"] == (
        f'Target release version="4.15.15" image="{target}" cannot be verified, but continuing '
        f"anyway because the update was forced: {unverified(target)}"
    )
    walk(simulator, obj, T0)
    assert obj["status"]["history"][0]["state"] == "Completed"


def test_the_other_releases_of_that_cluster_update_normally() -> None:
    simulator, obj = cluster("unverified-release")
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    entry = obj["status"]["history"][0]
    assert (entry["version"], entry["verified"]) == ("4.15.13", True)
    assert "acceptedRisks" not in entry


def test_a_forced_unverified_release_lists_the_signature_before_the_precondition_warnings() -> None:
    # The order a real forced update recorded: the signature line, then the preconditions'
    # summary (corpus 4.15.0-ec.2-progressing-forced-tag-image-custom-upstream).
    simulator, obj = cluster("idle-4.15")
    simulator.knobs = replace(simulator.knobs, unverified_releases=("4.15.14",))
    target = image("4.15.14")
    reconciled(simulator, request(obj, version="4.15.14", image=target, force=True), T0)
    assert obj["status"]["history"][0]["acceptedRisks"] == (
        f'Target release version="4.15.14" image="{target}" cannot be verified, but continuing '
        f"anyway because the update was forced: {unverified(target)}\n"
        'Precondition "ClusterVersionRecommendedUpdate" failed because of "EtcdDefragStall": '
        f"Update from 4.15.12 to 4.15.14 is not recommended:\n\n{ETCD_RISK}"
    )


def test_an_image_by_tag_cannot_be_verified() -> None:
    # The words a real cluster recorded for a tag image (corpus 4.15.0-ec.2-progressing-forced-...).
    simulator, obj = cluster("idle-4.15")
    tagged = "quay.io/openshift-release-dev/ocp-release:4.15.13-x86_64"
    reconciled(simulator, request(obj, image=tagged), T0)
    assert refused(obj, "RetrievePayload") == (
        f'Retrieving payload failed version="" image="{tagged}" failure=The update cannot be '
        "verified: release images that are not accessed via digest cannot be verified"
    )


def test_an_image_no_release_has_fails_verification_and_force_cannot_conjure_it() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, image=UNKNOWN), T0)
    assert refused(obj, "RetrievePayload") == (
        f'Retrieving payload failed version="" image="{UNKNOWN}" failure=The update cannot be '
        f"verified: {unverified(UNKNOWN)}"
    )
    # Forced past verification the operator would try to pull it; the sandbox has nothing to
    # pull, so it stays refused at the same step (the detail after the prefix is the sandbox's).
    reconciled(simulator, request(obj, image=UNKNOWN, force=True), T0)
    assert refused(obj, "RetrievePayload").startswith(
        f'Retrieving payload failed version="" image="{UNKNOWN}" failure=Unable to download and '
        "prepare the update: "
    )
    assert obj["status"]["desired"]["version"] == "4.15.12"


def test_an_image_of_another_version_than_the_one_asked_for_fails_the_version_check() -> None:
    # sync_worker.go: after loading, a payload whose version is not spec's is refused at
    # VerifyPayloadVersion, before the preconditions, so force does not go past it.
    simulator, obj = cluster("idle-4.15")
    other = image("4.15.15")
    for force in (False, True):
        reconciled(simulator, request(obj, version="4.15.13", image=other, force=force), T0)
        assert refused(obj, "VerifyPayloadVersion") == (
            f'Verifying payload failed version="4.15.13" image="{other}" failure=release image '
            "version 4.15.15 does not match the expected upstream version 4.15.13"
        )
        assert obj["status"]["desired"]["version"] == "4.15.12"
