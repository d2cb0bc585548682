"""What a cycle writes: the apply body holds exactly git's fields, never status or another
clusterID, and never takes a cluster that is ahead of git back without an explicit rollback.

Live objects are the corpus in ../shared/corpus; git documents go through the real parser.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS_CLUSTER_VERSIONS, corpus_bytes

from agent.model.documents import ManifestDocument
from agent.model.gates import GateDecision, GateRow, UpgradeCheck, Verdict, WindowState
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION, ApplyPlan
from agent.model.policy import DriftAction, DriftActions
from agent.model.revision import Revision
from agent.spec.normalize import desired_state
from agent.spec.parse import parse_file, parse_text
from agent.sync.diff import diff
from agent.sync.drift_policy import GitChanges, taken_back
from agent.sync.plan import Mode, plan_apply

CLUSTER_VERSIONS = CORPUS_CLUSTER_VERSIONS
IDLE_4_16 = "4.16.27-idle-failing-monitoring-unavailable.yaml"
UPDATING_4_14 = "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
MANAGED_FIELDS = "4.20.0-nightly-progressing-forced-unverified-managedfields.yaml"
OVERRIDES = "4.22.0-nightly-idle-overrides-unmanaged-nochannel.yaml"


def live_object(name: str) -> dict[str, Any]:
    [doc] = parse_file(corpus_bytes(name), name).documents
    return copy.deepcopy(doc.body)


def git_document(spec: dict[str, Any], **metadata: Any) -> ManifestDocument:
    """A git file as cvsync reads it: through the real parser (JSON is YAML)."""
    body = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version", **metadata},
        "spec": spec,
    }
    [doc] = parse_text(json.dumps(body), "clusters/prod/clusterversion.yaml").documents
    return doc


def plan_for(
    doc: ManifestDocument, live: dict[str, Any] | None, mode: Mode = "enforce"
) -> ApplyPlan:
    return plan_apply(desired_state(doc), live, diff(desired_state(doc).spec, live), mode=mode)


def body_of(plan: ApplyPlan) -> dict[str, Any]:
    assert plan.body is not None
    return plan.body


def manage(live: dict[str, Any], manager: str, fields: dict[str, Any], operation: str) -> None:
    live["metadata"].setdefault("managedFields", []).append(
        {
            "apiVersion": "config.openshift.io/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
            "manager": manager,
            "operation": operation,
            "time": "2025-09-01T10:00:00Z",
        }
    )


def test_an_identical_spec_writes_nothing() -> None:
    live = live_object(IDLE_4_16)
    plan = plan_for(git_document(live["spec"]), live)
    assert (plan.body, plan.stalled, plan.corrected, plan.reported) == (None, None, (), ())
    assert "in sync" in plan.message


def test_the_body_holds_exactly_the_spec_fields_git_declares() -> None:
    live = live_object(IDLE_4_16)
    spec = {"clusterID": live["spec"]["clusterID"], "channel": "stable-4.16"}
    plan = plan_for(git_document(spec, labels={"team": "platform"}), live)
    assert plan.body == {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version", "labels": {"team": "platform"}},
        "spec": {"clusterID": live["spec"]["clusterID"], "channel": "stable-4.16"},
    }
    assert plan.corrected == (".spec.channel",)
    assert "status" not in plan.body


def test_a_spec_copied_with_status_and_server_metadata_sends_neither() -> None:
    live = live_object(IDLE_4_16)
    copied = copy.deepcopy(live)
    copied["spec"]["channel"] = "stable-4.16"
    [doc] = parse_text(json.dumps(copied), "clusterversion.yaml").documents
    plan = plan_for(doc, live)
    assert plan.body is not None
    assert set(plan.body) == {"apiVersion", "kind", "metadata", "spec"}
    assert body_of(plan)["metadata"] == {"name": "version"}
    assert body_of(plan)["spec"] == {**live["spec"], "channel": "stable-4.16"}


def test_desired_update_is_sent_whole_as_one_unit() -> None:
    live = live_object(IDLE_4_16)
    spec = {**live["spec"], "desiredUpdate": {"version": "4.16.28"}}
    plan = plan_for(git_document(spec), live)
    assert body_of(plan)["spec"]["desiredUpdate"] == {
        "architecture": "",
        "force": False,
        "image": "",
        "version": "4.16.28",
    }
    assert plan.corrected == (".spec.desiredUpdate",)


def test_a_different_cluster_id_stalls_and_names_both_ids() -> None:
    live = live_object(IDLE_4_16)
    other = "5e65da93-4167-4f1e-9571-f99963cda23e"
    plan = plan_for(git_document({**live["spec"], "clusterID": other, "channel": "x"}), live)
    assert (plan.body, plan.stalled) == (None, "ClusterIDMismatch")
    assert other in plan.message
    assert live["spec"]["clusterID"] in plan.message
    assert plan.corrected == ()
    assert ".spec.clusterID" in plan.reported


def test_a_cluster_without_its_cluster_version_stalls_and_creates_nothing() -> None:
    plan = plan_for(git_document({"clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e"}), None)
    assert (plan.body, plan.stalled) == (None, "ClusterVersionNotFound")


def test_observe_mode_reports_everything_and_writes_nothing() -> None:
    live = live_object(IDLE_4_16)
    spec = {**live["spec"], "channel": "stable-4.16", "desiredUpdate": {"version": "4.16.20"}}
    plan = plan_for(git_document(spec), live, mode="observe")
    assert (plan.body, plan.stalled, plan.corrected) == (None, None, ())
    assert plan.reported == (".spec.channel", ".spec.desiredUpdate")
    assert "observe mode" in plan.message
    assert "RollbackRefused" in plan.message


# --- forward drift and rollbacks ---------------------------------------------------------------


def test_forward_drift_alone_writes_nothing_and_says_rollback_refused() -> None:
    live = live_object(IDLE_4_16)
    plan = plan_for(git_document({**live["spec"], "desiredUpdate": {"version": "4.16.20"}}), live)
    assert (plan.body, plan.stalled) == (None, None)
    assert plan.reported == (".spec.desiredUpdate",)
    assert "RollbackRefused" in plan.message
    assert "4.16.27" in plan.message
    assert f'{ALLOW_ROLLBACK_ANNOTATION}: "4.16.20"' in plan.message


def test_forward_drift_leaves_desired_update_out_of_the_body_but_corrects_the_rest() -> None:
    live = live_object(UPDATING_4_14)
    spec = {**live["spec"], "channel": "fast-4.14", "desiredUpdate": {"version": "4.14.0"}}
    plan = plan_for(git_document(spec), live)
    assert plan.body is not None
    assert "desiredUpdate" not in body_of(plan)["spec"]
    assert body_of(plan)["spec"]["channel"] == "fast-4.14"
    assert (plan.corrected, plan.reported) == ((".spec.channel",), (".spec.desiredUpdate",))


def test_forward_drift_keeps_a_desired_update_cvsync_owns_instead_of_dropping_it() -> None:
    live = live_object(UPDATING_4_14)
    fields: dict[str, Any] = {"f:architecture": {}, "f:force": {}, "f:image": {}, "f:version": {}}
    manage(live, "cvsync", {"f:spec": {"f:desiredUpdate": {".": {}, **fields}}}, "Apply")
    spec = {**live["spec"], "channel": "fast-4.14", "desiredUpdate": {"version": "4.14.0"}}
    plan = plan_for(git_document(spec), live)
    assert body_of(plan)["spec"]["desiredUpdate"]["version"] == "4.14.1"
    assert body_of(plan)["spec"]["desiredUpdate"]["image"] == live["spec"]["desiredUpdate"]["image"]
    assert plan.reported == (".spec.desiredUpdate",)


def test_the_rollback_annotation_for_the_git_version_applies_it() -> None:
    live = live_object(IDLE_4_16)
    spec = {**live["spec"], "desiredUpdate": {"version": "4.16.20"}}
    doc = git_document(spec, annotations={ALLOW_ROLLBACK_ANNOTATION: "4.16.20"})
    plan = plan_for(doc, live)
    assert body_of(plan)["spec"]["desiredUpdate"]["version"] == "4.16.20"
    assert body_of(plan)["metadata"]["annotations"] == {ALLOW_ROLLBACK_ANNOTATION: "4.16.20"}
    assert plan.corrected == (".spec.desiredUpdate",)
    assert "RollbackAllowed" in plan.message


def test_a_rollback_annotation_for_another_version_does_not_allow_it() -> None:
    live = live_object(IDLE_4_16)
    spec = {**live["spec"], "desiredUpdate": {"version": "4.16.20"}}
    plan = plan_for(git_document(spec, annotations={ALLOW_ROLLBACK_ANNOTATION: "4.16.19"}), live)
    assert plan.body is None
    assert "RollbackRefused" in plan.message


def test_an_image_only_rollback_is_allowed_by_annotating_the_image() -> None:
    live = live_object(MANAGED_FIELDS)
    old = live["status"]["history"][1]["image"]
    spec = {**live["spec"], "desiredUpdate": {"image": old, "force": True}}
    refused = plan_for(git_document(spec), live)
    allowed = plan_for(git_document(spec, annotations={ALLOW_ROLLBACK_ANNOTATION: old}), live)
    assert refused.body is None
    assert "RollbackRefused" in refused.message
    assert body_of(allowed)["spec"]["desiredUpdate"]["image"] == old


def test_git_dropping_a_desired_update_cvsync_applied_keeps_the_target() -> None:
    live = live_object(UPDATING_4_14)
    manage(live, "cvsync", {"f:spec": {"f:desiredUpdate": {"f:version": {}, "f:image": {}}}},
           "Apply")  # fmt: skip
    spec = {k: v for k, v in live["spec"].items() if k != "desiredUpdate"}
    plan = plan_for(git_document({**spec, "channel": "fast-4.14"}), live)
    assert body_of(plan)["spec"]["desiredUpdate"]["version"] == "4.14.1"
    assert plan.reported == (".spec.desiredUpdate",)
    assert "DesiredUpdateKept" in plan.message


def test_a_field_git_dropped_that_cvsync_alone_owns_is_corrected_by_leaving_it_out() -> None:
    live = live_object(IDLE_4_16)
    manage(live, "cvsync", {"f:spec": {"f:upstream": {}}}, "Apply")
    spec = {k: v for k, v in live["spec"].items() if k != "upstream"}
    plan = plan_for(git_document(spec), live)
    assert plan.corrected == (".spec.upstream",)
    assert "upstream" not in body_of(plan)["spec"]


def test_a_plan_that_writes_overrides_says_they_block_minor_upgrades() -> None:
    live = live_object(OVERRIDES)
    spec = copy.deepcopy(live["spec"])
    spec["overrides"][0]["unmanaged"] = False
    plan = plan_for(git_document(spec), live)
    assert plan.corrected == (
        ".spec.overrides[kind=ClusterImagePolicy,group=config.openshift.io,namespace=,"
        "name=openshift].unmanaged",
    )
    assert body_of(plan)["spec"]["overrides"] == spec["overrides"]
    assert "ClusterVersionOverridesSet" in plan.message


@pytest.mark.corpus
@pytest.mark.parametrize("path", CLUSTER_VERSIONS, ids=lambda path: Path(path).name)
def test_a_real_cluster_s_own_spec_plans_no_write(path: Path) -> None:
    live = live_object(path.name)
    plan = plan_for(git_document(live["spec"]), live)
    assert (plan.body, plan.stalled, plan.reported) == (None, None, ())


# The policy's drift actions and the upgrade gates' decision.
def _owned_override(live: dict[str, Any], manager: str) -> None:
    entry = '{"group":"config.openshift.io","kind":"ClusterImagePolicy","name":"openshift",'
    entry += '"namespace":""}'
    manage(
        live,
        manager,
        {"f:spec": {"f:overrides": {f"k:{entry}": {"f:unmanaged": {}}}}},
        "Update",
    )


def test_report_leaves_an_override_another_writer_set_and_applies_the_rest() -> None:
    live = live_object(OVERRIDES)
    _owned_override(live, "oc")  # someone flipped unmanaged with oc patch
    spec = copy.deepcopy(live["spec"])
    spec["overrides"][0]["unmanaged"] = False
    spec["channel"] = "stable-4.22"
    doc = git_document(spec)
    plan = plan_apply(
        desired_state(doc),
        live,
        diff(desired_state(doc).spec, live),
        mode="enforce",
        drift_actions=DriftActions(),
    )
    assert plan.corrected == (".spec.channel",)
    assert plan.reported == (
        ".spec.overrides[kind=ClusterImagePolicy,group=config.openshift.io,namespace=,"
        "name=openshift].unmanaged",
    )
    # The held entry is sent with its live value: applying it moves nothing.
    assert body_of(plan)["spec"]["overrides"] == live["spec"]["overrides"]
    assert body_of(plan)["spec"]["channel"] == "stable-4.22"
    assert 'drift action for overrides is report and "oc" set the live value' in plan.message
    # `correct` takes the same entry back.
    corrected = plan_apply(
        desired_state(doc),
        live,
        diff(desired_state(doc).spec, live),
        mode="enforce",
        drift_actions=DriftActions(overrides=DriftAction.CORRECT),
    )
    assert body_of(corrected)["spec"]["overrides"] == spec["overrides"]


def test_report_still_applies_a_value_nobody_else_owns() -> None:
    live = live_object(OVERRIDES)
    spec = copy.deepcopy(live["spec"])
    spec["overrides"][0]["unmanaged"] = False  # no managedFields: git's change, not drift
    doc = git_document(spec)
    plan = plan_apply(
        desired_state(doc),
        live,
        diff(desired_state(doc).spec, live),
        mode="enforce",
        drift_actions=DriftActions(),
    )
    assert plan.reported == ()
    assert body_of(plan)["spec"]["overrides"] == spec["overrides"]


def _check(action: str, resolved: dict[str, Any] | None = None) -> UpgradeCheck:
    verdict = {"block": Verdict.BLOCK, "wait": Verdict.WAIT}.get(action, Verdict.PASS)
    row = GateRow("recommended", verdict, "Reason", "evidence")
    decision = GateDecision(action, (row,), resolved)  # type: ignore[arg-type]
    return UpgradeCheck(decision, WindowState(None, ""), "4.16.28")


def test_a_blocked_target_stays_pending_while_the_channel_applies() -> None:
    live = live_object(IDLE_4_16)
    spec = {**live_spec_of(live), "channel": "fast-4.16", "desiredUpdate": {"version": "4.16.28"}}
    doc = git_document(spec)
    drift = diff(desired_state(doc).spec, live)
    plan = plan_apply(desired_state(doc), live, drift, mode="enforce", upgrade=_check("block"))
    assert plan.corrected == (".spec.channel",)
    assert plan.reported == (".spec.desiredUpdate",)
    assert "desiredUpdate" not in body_of(plan)["spec"]
    assert "UpgradeBlocked: desiredUpdate stays pending" in plan.message
    waiting = plan_apply(desired_state(doc), live, drift, mode="enforce", upgrade=_check("wait"))
    assert "UpgradeWaiting" in waiting.message
    assert "desiredUpdate" not in body_of(waiting)["spec"]


def test_an_allowed_version_is_applied_as_version_and_digest_and_then_is_in_sync() -> None:
    live = live_object(IDLE_4_16)
    image = "quay.io/openshift-release-dev/ocp-release@sha256:" + "ab" * 32
    spec = {**live_spec_of(live), "desiredUpdate": {"version": "4.16.28"}}
    doc = git_document(spec)
    resolved = {"version": "4.16.28", "image": image}
    plan = plan_apply(
        desired_state(doc),
        live,
        diff(desired_state(doc).spec, live),
        mode="enforce",
        upgrade=_check("apply", resolved),
    )
    sent = body_of(plan)["spec"]["desiredUpdate"]
    assert sent == {"architecture": "", "force": False, "image": image, "version": "4.16.28"}
    # Once the cluster holds the pinned target, git's version-only spec is in sync with it,
    # and a later apply for another field keeps the pin instead of clearing the image.
    live["spec"]["desiredUpdate"] = sent
    assert not diff(desired_state(doc).spec, live)
    spec["channel"] = "fast-4.16"
    later = git_document(spec)
    again = plan_apply(
        desired_state(later), live, diff(desired_state(later).spec, live), mode="enforce"
    )
    assert body_of(again)["spec"]["desiredUpdate"]["image"] == image


def live_spec_of(live: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in live["spec"].items() if k in ("clusterID", "channel", "upstream")}


# desiredUpdate ownership: after any write cvsync owns all of the unit or none of it.
def _split_target(live: dict[str, Any]) -> dict[str, Any]:
    """cvsync applied 4.16.28 whole; then `oc adm upgrade --to` moved version and image on."""
    image = "quay.io/openshift-release-dev/ocp-release@sha256:" + "cd" * 32
    update = {"architecture": "", "force": False, "image": image, "version": "4.16.30"}
    live["spec"]["desiredUpdate"] = update
    manage(
        live,
        "cvsync",
        {"f:spec": {"f:desiredUpdate": {"f:architecture": {}, "f:force": {}}}},
        "Apply",
    )
    manage(live, "oc", {"f:spec": {"f:desiredUpdate": {"f:image": {}, "f:version": {}}}}, "Update")
    return update


def test_git_asking_for_a_target_it_owns_only_half_of_takes_the_whole_unit_over() -> None:
    live = live_object(IDLE_4_16)
    update = _split_target(live)
    doc = git_document({**live_spec_of(live), "desiredUpdate": {"version": "4.16.30"}})
    plan = plan_for(doc, live)
    # The live value, every field of it: the apply moves nothing and owns the whole unit.
    assert body_of(plan)["spec"]["desiredUpdate"] == update
    assert (plan.corrected, plan.reported) == ((), ())
    assert plan.message == (
        "applies no new value; takes over .spec.desiredUpdate as one unit: git asks for the "
        'live value, and "oc" held image, version of it'
    )
    observed = plan_for(doc, live, mode="observe")
    assert observed.body is None
    assert "takes over .spec.desiredUpdate" in observed.message


def test_a_target_someone_else_owns_whole_is_left_to_them_while_it_matches_git() -> None:
    live = live_object(IDLE_4_16)
    _split_target(live)
    live["metadata"]["managedFields"] = [
        e for e in live["metadata"]["managedFields"] if e["manager"] != "cvsync"
    ]
    doc = git_document({**live_spec_of(live), "desiredUpdate": {"version": "4.16.30"}})
    assert plan_for(doc, live).body is None


def test_a_held_newer_target_is_sent_back_whole_when_cvsync_owns_part_of_it() -> None:
    live = live_object(IDLE_4_16)
    update = _split_target(live)
    del update["architecture"]  # as a server holds a unit someone wrote without it
    spec = {**live_spec_of(live), "channel": "fast-4.16", "desiredUpdate": {"version": "4.16.28"}}
    plan = plan_for(git_document(spec), live)
    assert plan.reported == (".spec.desiredUpdate",)
    assert "RollbackRefused" in plan.message
    assert body_of(plan)["spec"]["desiredUpdate"] == update


# Whose change: git's (applied) or someone else's (drift taken back, or reported).
def test_a_field_git_changed_is_git_s_change_until_an_apply_carries_it_out() -> None:
    live = live_object(OVERRIDES)
    _owned_override(live, "oc")
    before = desired_state(git_document(copy.deepcopy(live["spec"]))).spec
    spec = copy.deepcopy(live["spec"])
    spec["overrides"][0]["unmanaged"] = False
    after = desired_state(git_document(spec))
    drift = diff(after.spec, live)
    changes = GitChanges(before).seen(after.spec, drift, live)
    [item] = changes.marked(drift).items
    assert item.by_git
    # `report` leaves someone else's value alone, never git's own change to the field.
    plan = plan_apply(
        after, live, changes.marked(drift), mode="enforce", drift_actions=DriftActions()
    )
    assert plan.reported == ()
    # Not applied (held, refused, failed): still git's at the next cycle.
    kept = changes.settled(drift, ()).seen(after.spec, drift, live)
    assert kept.marked(drift).items[0].by_git
    # Applied: a later difference there is someone else's.
    done = changes.settled(drift, (item.path,)).seen(after.spec, drift, live)
    assert not done.marked(drift).items[0].by_git


def test_without_an_earlier_spec_managed_fields_times_tell_whose_change_it_is() -> None:
    live = live_object(OVERRIDES)
    spec = copy.deepcopy(live["spec"])
    spec["overrides"][0]["unmanaged"] = False
    want = desired_state(git_document(spec)).spec
    _owned_override(live, "oc")  # oc wrote at 2025-09-01T10:00:00Z
    # cvsync never wrote: nothing of git's was changed away from.
    assert GitChanges().seen(want, diff(want, live), live).marked(diff(want, live)).items[0].by_git
    manage(live, "cvsync", {"f:spec": {"f:channel": {}}}, "Apply")
    live["metadata"]["managedFields"][-1]["time"] = "2025-08-01T10:00:00Z"
    # cvsync wrote before oc did: oc changed it since.
    [item] = GitChanges().seen(want, diff(want, live), live).marked(diff(want, live)).items
    assert not item.by_git


def test_only_conflicts_on_someone_else_s_change_count_as_taken_back() -> None:
    live = live_object(IDLE_4_16)
    doc = git_document({**live_spec_of(live), "channel": "fast-4.16"})
    drift = diff(desired_state(doc).spec, live)
    conflicts = ((".spec.channel", "cluster-bootstrap"),)
    git_change = GitChanges(desired_state(git_document(live_spec_of(live))).spec)
    marked = git_change.seen(desired_state(doc).spec, drift, live).marked(drift)
    assert taken_back(conflicts, marked) == ()
    unchanged = GitChanges(desired_state(doc).spec).seen(desired_state(doc).spec, drift, live)
    assert taken_back(conflicts, unchanged.marked(drift)) == conflicts


def test_a_revision_reads_back_from_its_text_form() -> None:
    assert Revision.parse("feature@x@sha1:" + "ab" * 20) == Revision("feature@x", "ab" * 20)
    assert Revision.parse("main@sha1:short") is None
