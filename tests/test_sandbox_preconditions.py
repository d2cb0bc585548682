"""The simulated cluster-version operator's update preconditions against the real operator's:
which failures block (refused with ReleaseAccepted=False, reason PreconditionChecks), which only
warn (the update starts and the history entry's acceptedRisks records them), and what force
goes past. Sources, in openshift/cluster-version-operator:
pkg/payload/precondition/precondition.go (Summarize), pkg/cvo/sync_worker.go (ReleaseAccepted and
acceptedRisks), and pkg/payload/precondition/clusterversion/{rollback,gianthop,upgradeable,
recommendedupdate}.go."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from operator_support import (
    ADMIN_ACK,
    ETCD_RISK,
    OVERRIDES,
    T0,
    cluster,
    condition,
    image,
    must,
    reconciled,
    refusal,
    request,
    walk,
)

from agent.sandbox.operator.knobs import ScenarioKnobs, UpgradeableBlock
from agent.sandbox.operator.risks import ClusterFacts

ETCD_WARNING = (
    'Precondition "ClusterVersionRecommendedUpdate" failed because of "EtcdDefragStall": '
    f"Update from 4.15.12 to 4.15.14 is not recommended:\n\n{ETCD_RISK}"
)


def test_a_conditional_update_that_is_not_recommended_starts_with_the_warning_recorded() -> None:
    # recommendedupdate.go: Recommended=False is a NonBlockingWarning; Summarize blocks only on
    # blocking failures, so the payload loads and the warning becomes acceptedRisks.
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, version="4.15.14", image=image("4.15.14")), T0)
    accepted = must(obj, "ReleaseAccepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "PayloadLoaded")
    assert accepted["message"] == (
        f'Payload loaded version="4.15.14" image="{image("4.15.14")}" architecture="amd64"'
    )
    assert obj["status"]["desired"]["version"] == "4.15.14"
    assert obj["status"]["history"][0] == {
        "acceptedRisks": ETCD_WARNING,
        "completionTime": None,
        "image": image("4.15.14"),
        "startedTime": "2025-01-10T09:00:00Z",
        "state": "Partial",
        "verified": True,
        "version": "4.15.14",
    }
    walk(simulator, obj, T0)
    done = obj["status"]["history"][0]
    assert (done["state"], done["acceptedRisks"]) == ("Completed", ETCD_WARNING)


def test_force_adds_nothing_to_a_warning_that_did_not_block() -> None:
    # Summarize prefixes "Forced through blocking failures: " only when force went past a
    # blocking failure; on a real cluster a forced update with only the NoChannel warning
    # recorded the bare warning (corpus 4.20.0-nightly-progressing-forced-unverified-managedfields).
    simulator, obj = cluster("idle-4.15")
    forced = request(obj, version="4.15.14", image=image("4.15.14"), force=True)
    reconciled(simulator, forced, T0)
    assert obj["status"]["history"][0]["acceptedRisks"] == ETCD_WARNING


def test_a_version_alone_does_not_reach_a_conditional_update_that_is_not_recommended() -> None:
    # lib/validation: a version-only desiredUpdate must be in availableUpdates or the history;
    # a Recommended=False conditional update is in neither, so the spec is invalid and the
    # operator keeps what it runs (`oc adm upgrade --to` sends the image for these).
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, version="4.15.14"), T0)
    assert must(obj, "Invalid")["message"] == (
        'The cluster version is invalid: spec.desiredUpdate.version: Invalid value: "4.15.14": '
        "when image is empty the update must be a previous version or an available update"
    )
    assert must(obj, "ReleaseAccepted")["reason"] == "PayloadLoaded"
    assert obj["status"]["desired"]["version"] == "4.15.12"


def test_blocking_failures_and_warnings_are_summarised_together_and_force_prefixes_them() -> None:
    simulator, obj = cluster("admin-ack-required")
    azure = ClusterFacts({"AzureNodeBootDelay": True})
    simulator.knobs = replace(simulator.knobs, facts=azure)
    target = {"version": "4.16.3", "image": image("4.16.3")}
    upgradeable = (
        'Precondition "ClusterVersionUpgradeable" failed because of "AdminAckRequired": '
        f"{ADMIN_ACK}"
    )
    recommended = (
        'Precondition "ClusterVersionRecommendedUpdate" failed because of "AzureNodeBootDelay": '
        "Update from 4.15.12 to 4.16.3 is not recommended:\n\nAzure clusters may see new nodes "
        "take more than 20 minutes to become Ready after the update, delaying machine scale-up. "
        "https://issues.sandbox.invalid/browse/SANDBOX-102"
    )
    both = f"Multiple precondition checks failed:\n* {upgradeable}\n* {recommended}"
    reconciled(simulator, request(obj, **target), T0)
    assert refusal(obj) == (
        f'Preconditions failed for payload loaded version="4.16.3" image="{image("4.16.3")}": '
        f"{both}"
    )
    assert obj["status"]["history"][0]["version"] == "4.15.12"
    # The shape a real forced update recorded (corpus 4.15.0-ec.2-progressing-forced-...).
    reconciled(simulator, request(obj, **target, force=True), T0)
    assert must(obj, "ReleaseAccepted")["reason"] == "PayloadLoaded"
    assert obj["status"]["history"][0]["acceptedRisks"] == (
        f"Forced through blocking failures: {both}"
    )


def test_a_refusal_clears_once_the_request_is_withdrawn() -> None:
    # sync_worker.go: with the payload it runs asked for again, the operator resets
    # ReleaseAccepted to that payload.
    simulator, obj = cluster("admin-ack-required")
    reconciled(simulator, request(obj, version="4.16.2"), T0)
    assert refusal(obj).startswith('Preconditions failed for payload loaded version="4.16.2"')
    del obj["spec"]["desiredUpdate"]
    obj["metadata"]["generation"] += 1
    reconciled(simulator, obj, T0)
    accepted = must(obj, "ReleaseAccepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "PayloadLoaded")
    assert accepted["message"].startswith('Payload loaded version="4.15.12"')


def test_upgradeable_false_refuses_a_minor_update_but_lets_a_z_stream_through() -> None:
    simulator, obj = cluster("admin-ack-required")
    assert must(obj, "Upgradeable") == {
        "lastTransitionTime": "2025-01-07T15:10:04Z",
        "message": ADMIN_ACK,
        "reason": "AdminAckRequired",
        "status": "False",
        "type": "Upgradeable",
    }
    reconciled(simulator, request(obj, version="4.16.2"), T0)
    assert refusal(obj) == (
        f'Preconditions failed for payload loaded version="4.16.2" image="{image("4.16.2")}": '
        f'Precondition "ClusterVersionUpgradeable" failed because of "AdminAckRequired": '
        f"{ADMIN_ACK}"
    )
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    assert must(obj, "ReleaseAccepted")["status"] == "True"
    assert obj["status"]["history"][0]["version"] == "4.15.13"
    assert "acceptedRisks" not in obj["status"]["history"][0]


def test_a_forced_minor_update_past_the_admin_ack_gate_lifts_it_once_at_4_16() -> None:
    simulator, obj = cluster("admin-ack-required")
    reconciled(simulator, request(obj, version="4.16.2", force=True), T0)
    assert obj["status"]["history"][0]["acceptedRisks"] == (
        'Forced through blocking failures: Precondition "ClusterVersionUpgradeable" failed '
        f'because of "AdminAckRequired": {ADMIN_ACK}'
    )
    assert condition(obj, "Upgradeable") is not None
    walk(simulator, obj, T0)
    assert obj["status"]["history"][0]["state"] == "Completed"
    assert condition(obj, "Upgradeable") is None


def test_overrides_set_upgradeable_false_and_block_even_z_stream_updates() -> None:
    # upgradeable.go of the operators of this era (4.6 to 4.21): overrides make even a patch
    # update a blocking failure; openshift/cluster-version-operator pull request 1314 (2026)
    # later turned that case into a warning with new wording.
    simulator, obj = cluster("overrides-set")
    assert must(obj, "Upgradeable") == {
        "lastTransitionTime": "2025-01-07T15:10:04Z",
        "message": OVERRIDES,
        "reason": "ClusterVersionOverridesSet",
        "status": "False",
        "type": "Upgradeable",
    }
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    assert refusal(obj).endswith(
        'Precondition "ClusterVersionUpgradeable" failed because of "ClusterVersionOverridesSet": '
        f"{OVERRIDES}"
    )
    del obj["spec"]["overrides"]
    obj["metadata"]["generation"] += 1
    reconciled(simulator, obj, T0 + timedelta(minutes=1))
    assert condition(obj, "Upgradeable") is None
    assert obj["status"]["history"][0]["version"] == "4.15.13"


def test_an_override_that_keeps_the_resource_managed_sets_nothing() -> None:
    simulator, obj = cluster("idle-4.15")
    obj["spec"]["overrides"] = [
        {"group": "apps", "kind": "Deployment", "name": "x", "namespace": "y", "unmanaged": False}
    ]
    reconciled(simulator, obj, T0)
    assert condition(obj, "Upgradeable") is None


def test_overrides_and_an_admin_ack_together_give_multiple_reasons() -> None:
    block = UpgradeableBlock("AdminAckRequired", ADMIN_ACK, "4.15")
    simulator, obj = cluster("overrides-set", knobs=ScenarioKnobs(upgradeable_false=block))
    reconciled(simulator, obj, T0)
    types = [c["type"] for c in obj["status"]["conditions"]]
    assert types[-3:] == [
        "Upgradeable",
        "UpgradeableAdminAckRequired",
        "UpgradeableClusterVersionOverrides",
    ]
    upgradeable = must(obj, "Upgradeable")
    assert upgradeable["reason"] == "MultipleReasons"
    assert upgradeable["message"] == (
        "Cluster should not be upgraded between minor versions for multiple reasons: "
        f"ClusterVersionOverridesSet,AdminAckRequired\n* {OVERRIDES}\n* {ADMIN_ACK}"
    )
    assert must(obj, "UpgradeableAdminAckRequired")["reason"] == "AdminAckRequired"


def test_a_downgrade_is_refused_unless_it_returns_to_the_previous_z_stream() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, image=image("4.15.11")), T0)
    assert refusal(obj) == (
        f'Preconditions failed for payload loaded version="4.15.11" image="{image("4.15.11")}": '
        "Multiple precondition checks failed:\n"
        '* Precondition "ClusterVersionRollback" failed because of "LowDesiredVersion": 4.15.11 '
        "is less than the current target 4.15.12, and the only supported rollback is to the "
        f"cluster's previous version 4.15.10 ({image('4.15.10')})\n"
        '* Precondition "ClusterVersionRecommendedUpdate" failed because of "UnknownUpdate": '
        "RetrievedUpdates=True (), so the update from 4.15.12 to 4.15.11 is probably neither "
        "recommended nor supported."
    )
    # A version-only rollback resolves its image from the history, as the operator does.
    reconciled(simulator, request(obj, version="4.15.10"), T0)
    entry = obj["status"]["history"][0]
    assert (entry["version"], entry["image"]) == ("4.15.10", image("4.15.10"))
    assert entry["acceptedRisks"].startswith(
        'Precondition "ClusterVersionRecommendedUpdate" failed because of "UnknownUpdate": '
    )


def test_rolling_back_across_a_minor_version_is_refused_even_to_the_previous_release() -> None:
    simulator, obj = cluster("idle-4.15")
    obj["spec"]["channel"] = "stable-4.16"
    reconciled(simulator, request(obj, version="4.16.2"), T0)
    walk(simulator, obj, T0)
    reconciled(simulator, request(obj, version="4.15.12"), T0 + timedelta(hours=2))
    assert (
        '* Precondition "ClusterVersionRollback" failed because of "LowDesiredVersion": 4.15.12 '
        "is less than the current target 4.16.2 and matches the cluster's previous version, but "
        "rollbacks that change major or minor versions are not recommended\n"
    ) in refusal(obj)


def test_a_giant_hop_is_refused_with_the_operators_reason() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, image=image("4.17.1")), T0)
    assert (
        '* Precondition "ClusterVersionGiantHop" failed because of "MultipleMinorVersionsUpdate": '
        "4.17.1 is more than one minor version beyond the current target 4.15.12 (4.17 > 4.(15+1)),"
        " and only updates within the current minor version or to the next minor version are "
        "supported.\n"
    ) in refusal(obj)


def test_a_version_only_target_that_is_not_offered_makes_the_spec_invalid() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, version="4.15.11"), T0)
    assert must(obj, "Invalid") == {
        "lastTransitionTime": "2025-01-10T09:00:00Z",
        "message": "The cluster version is invalid: spec.desiredUpdate.version: Invalid value: "
        '"4.15.11": when image is empty the update must be a previous version or an available '
        "update",
        "reason": "InvalidClusterVersion",
        "status": "True",
        "type": "Invalid",
    }
    assert must(obj, "ReleaseAccepted")["status"] == "True"
    progressing = must(obj, "Progressing")
    assert progressing["reason"] == "InvalidClusterVersion"
    assert progressing["message"] == "Stopped at 4.15.12: the cluster version is invalid"
    assert simulator.reconcile(obj, T0 + timedelta(minutes=1)) is None
    del obj["spec"]["desiredUpdate"]
    reconciled(simulator, obj, T0 + timedelta(minutes=2))
    assert condition(obj, "Invalid") is None
    assert must(obj, "Progressing")["message"] == "Cluster version is 4.15.12"
