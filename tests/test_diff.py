"""Drift between git and real ClusterVersion objects: keyed overrides, desiredUpdate as one unit,
owners from managedFields, and forward drift when the cluster is ahead of git.

Live objects are the corpus in ../shared/corpus, changed in memory where a case needs it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS_CLUSTER_VERSIONS, corpus_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.model.drift import Drift, DriftKind
from agent.model.versions import is_older, version_key
from agent.spec.normalize import desired_spec, live_spec
from agent.spec.parse import parse_file
from agent.sync.diff import diff as diff_of_normalized
from agent.sync.owners import owned_leaves, owner_of

CLUSTER_VERSIONS = CORPUS_CLUSTER_VERSIONS
MANAGED_FIELDS = "4.20.0-nightly-progressing-forced-unverified-managedfields.yaml"
IDLE_4_16 = "4.16.27-idle-failing-monitoring-unavailable.yaml"
UPDATING_4_14 = "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
FAILING_4_14 = "4.14.1-progressing-failing-etcd-kas-degraded.yaml"
EC_4_15 = "4.15.0-ec.2-progressing-70-history-generation-112.yaml"
IMAGE_ONLY = "4.17.0-ec.0-progressing-image-only-nochannel-compact.yaml"
OVERRIDES = "4.22.0-nightly-idle-overrides-unmanaged-nochannel.yaml"
CIP = "[kind=ClusterImagePolicy,group=config.openshift.io,namespace=,name=openshift]"


def diff(spec: Mapping[str, Any], live: Mapping[str, Any] | None, **options: Any) -> Drift:
    """The diff of a spec written by hand, normalized first as a cycle does once."""
    return diff_of_normalized(desired_spec({"spec": spec}), live, **options)


def live_object(name: str) -> dict[str, Any]:
    """A corpus ClusterVersion as the API server returns it (plain dicts)."""
    [doc] = parse_file(corpus_bytes(name), name).documents
    return copy.deepcopy(doc.body)


def own_spec(live: dict[str, Any]) -> dict[str, Any]:
    return desired_spec(live)


def manage(live: dict[str, Any], manager: str, fields: dict[str, Any], **extra: str) -> None:
    """Add a managedFields entry, as the API server records one."""
    live["metadata"].setdefault("managedFields", []).append(
        {
            "apiVersion": "config.openshift.io/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
            "manager": manager,
            "operation": extra.get("operation", "Update"),
            "time": extra.get("time", "2025-09-01T10:00:00Z"),
        }
    )


# --- equality and plain fields ----------------------------------------------------------------


def test_an_identical_spec_gives_no_drift() -> None:
    live = live_object(IDLE_4_16)
    assert diff(own_spec(live), live).items == ()


def test_a_channel_changed_by_another_manager_is_one_item_with_its_owner() -> None:
    live = live_object(IDLE_4_16)
    want = own_spec(live)
    live["spec"]["channel"] = "fast-4.16"
    manage(live, "oc", {"f:spec": {"f:channel": {}}}, time="2025-02-03T04:05:06Z")
    [item] = diff(want, live).items
    assert (item.path, item.desired, item.live) == (".spec.channel", "candidate-4.16", "fast-4.16")
    assert item.kind is DriftKind.CHANGED
    assert (item.owner, item.owner_since) == ("oc", "2025-02-03T04:05:06Z")


def test_a_field_the_cluster_lacks_is_missing_and_has_no_owner() -> None:
    live = live_object(MANAGED_FIELDS)
    want = {**own_spec(live), "channel": "candidate-4.20"}
    [item] = diff(want, live).items
    assert (item.path, item.kind, item.live, item.owner) == (
        ".spec.channel",
        DriftKind.MISSING,
        None,
        None,
    )


def test_an_empty_string_and_an_absent_field_are_different_values() -> None:
    live = live_object(MANAGED_FIELDS)
    [item] = diff({**own_spec(live), "channel": ""}, live).items
    assert (item.path, item.desired, item.kind) == (".spec.channel", "", DriftKind.MISSING)


def test_capabilities_null_in_git_is_the_same_as_absent() -> None:
    live = live_object(IDLE_4_16)
    assert diff({**own_spec(live), "capabilities": None}, live).items == ()
    assert "capabilities" not in desired_spec({"spec": {"capabilities": None}})


def test_fields_only_the_cluster_has_are_not_drift() -> None:
    live = live_object(IDLE_4_16)
    want = own_spec(live)
    del want["upstream"]
    live["spec"]["capabilities"] = {"baselineCapabilitySet": "vCurrent"}
    assert diff(want, live).items == ()


def test_a_changed_capability_list_is_reported_whole_never_by_index() -> None:
    live = live_object(IDLE_4_16)
    live["spec"]["capabilities"] = {"additionalEnabledCapabilities": ["Console", "Build"]}
    want = {**own_spec(live), "capabilities": {"additionalEnabledCapabilities": ["Console"]}}
    [item] = diff(want, live).items
    assert item.path == ".spec.capabilities.additionalEnabledCapabilities"
    assert (item.desired, item.live) == (["Console"], ["Console", "Build"])


def test_a_boolean_is_not_equal_to_an_integer() -> None:
    live = live_object(OVERRIDES)
    want = own_spec(live)
    want["overrides"][0]["unmanaged"] = 1
    [item] = diff(want, live).items
    assert item.path == f".spec.overrides{CIP}.unmanaged"


def test_a_missing_live_object_makes_every_declared_field_missing() -> None:
    want = own_spec(live_object(OVERRIDES))
    assert {(i.path, i.kind) for i in diff(want, None).items} == {
        (".spec.clusterID", DriftKind.MISSING),
        (f".spec.overrides{CIP}", DriftKind.MISSING),
    }


# --- overrides, keyed ---------------------------------------------------------------------------

DEPLOYMENT = {"kind": "Deployment", "group": "apps", "namespace": "x", "name": "y"}
DEPLOYMENT_PATH = ".spec.overrides[kind=Deployment,group=apps,namespace=x,name=y]"


def test_reordered_overrides_are_not_drift() -> None:
    live = live_object(OVERRIDES)
    live["spec"]["overrides"].append({**DEPLOYMENT, "unmanaged": True})
    want = own_spec(live)
    want["overrides"].reverse()
    assert diff(want, live).items == ()


def test_an_override_added_in_git_is_missing_at_its_keyed_path() -> None:
    live = live_object(OVERRIDES)
    want = own_spec(live)
    want["overrides"].insert(0, {**DEPLOYMENT, "unmanaged": True})
    [item] = diff(want, live).items
    assert (item.path, item.kind) == (DEPLOYMENT_PATH, DriftKind.MISSING)
    assert item.desired == {**DEPLOYMENT, "unmanaged": True}


def test_a_changed_override_is_reported_at_its_keyed_field() -> None:
    live = live_object(OVERRIDES)
    want = own_spec(live)
    want["overrides"][0]["unmanaged"] = False
    manage(
        live,
        "oc",
        {"f:spec": {"f:overrides": {'k:{"group":"config.openshift.io","kind":"ClusterImagePolicy",'
                                    '"name":"openshift","namespace":""}': {"f:unmanaged": {}}}}},
    )  # fmt: skip
    [item] = diff(want, live).items
    assert item.path == f".spec.overrides{CIP}.unmanaged"
    assert (item.desired, item.live, item.kind, item.owner) == (
        False,
        True,
        DriftKind.CHANGED,
        "oc",
    )


def test_an_override_someone_else_added_on_the_cluster_stays_and_is_not_drift() -> None:
    live = live_object(OVERRIDES)
    want = own_spec(live)
    live["spec"]["overrides"].append({**DEPLOYMENT, "unmanaged": True})
    assert diff(want, live).items == ()


def test_an_override_removed_from_git_that_cvsync_applied_is_extra() -> None:
    live = live_object(OVERRIDES)
    want = own_spec(live)
    live["spec"]["overrides"].append({**DEPLOYMENT, "unmanaged": True})
    key = 'k:{"group":"apps","kind":"Deployment","name":"y","namespace":"x"}'
    fields: dict[str, Any] = {".": {}, "f:group": {}, "f:kind": {}, "f:name": {}, "f:namespace": {}}
    manage(live, "cvsync", {"f:spec": {"f:overrides": {key: {**fields, "f:unmanaged": {}}}}},
           operation="Apply")  # fmt: skip
    [item] = diff(want, live).items
    assert (item.path, item.kind, item.desired, item.owner) == (
        DEPLOYMENT_PATH,
        DriftKind.EXTRA,
        None,
        "cvsync",
    )


def test_a_field_cvsync_shares_with_another_manager_is_not_extra() -> None:
    live = live_object(IDLE_4_16)
    want = own_spec(live)
    del want["channel"]
    manage(live, "cvsync", {"f:spec": {"f:channel": {}}}, operation="Apply")
    manage(live, "oc", {"f:spec": {"f:channel": {}}})
    assert diff(want, live).items == ()
    del live["metadata"]["managedFields"][1]
    [item] = diff(want, live).items
    assert (item.path, item.kind, item.live) == (".spec.channel", DriftKind.EXTRA, "candidate-4.16")


# --- desiredUpdate, one unit --------------------------------------------------------------------


def test_a_desired_update_field_change_is_one_item_for_the_whole_unit() -> None:
    live = live_object(FAILING_4_14)
    want = own_spec(live)
    want["desiredUpdate"]["force"] = True
    want["desiredUpdate"]["architecture"] = "Multi"
    [item] = diff(want, live).items
    assert (item.path, item.kind) == (".spec.desiredUpdate", DriftKind.CHANGED)
    assert item.desired == want["desiredUpdate"]
    assert item.live == live["spec"]["desiredUpdate"]


def test_a_desired_update_field_left_out_counts_as_its_zero_value() -> None:
    live = live_object(FAILING_4_14)  # carries architecture: "" and force: false, as oc writes
    want = own_spec(live)
    raw = {k: v for k, v in want["desiredUpdate"].items() if k in ("image", "version")}
    assert diff({**want, "desiredUpdate": raw}, live).items == ()


def test_a_live_desired_update_holding_only_the_fields_written_is_git_s_whole_unit() -> None:
    # A writer that sends only version and image (kubectl patch) leaves architecture and force
    # absent: no default fills them in (the CRD declares none), and the operator reads zero.
    live = live_object(FAILING_4_14)
    want = own_spec(live)
    live["spec"]["desiredUpdate"] = {
        k: v for k, v in live["spec"]["desiredUpdate"].items() if k in ("image", "version")
    }
    assert diff(want, live).items == ()


def test_git_s_desired_update_is_reported_as_written() -> None:
    live = live_object(FAILING_4_14)
    [item] = diff({**own_spec(live), "desiredUpdate": {"version": "4.14.2"}}, live).items
    assert (item.path, item.desired) == (".spec.desiredUpdate", {"version": "4.14.2"})
    assert item.live == live["spec"]["desiredUpdate"]


def test_a_desired_update_change_names_the_manager_that_set_it() -> None:
    live = live_object(MANAGED_FIELDS)
    want = own_spec(live)
    want["desiredUpdate"]["force"] = False
    [item] = diff(want, live).items
    assert (item.path, item.owner, item.owner_since) == (
        ".spec.desiredUpdate",
        "openshift-tests",
        "2025-08-19T19:32:58Z",
    )


# --- forward drift -----------------------------------------------------------------------------


def test_a_cluster_that_completed_a_newer_z_stream_is_forward_drift() -> None:
    live = live_object(IDLE_4_16)
    [item] = diff({**own_spec(live), "desiredUpdate": {"version": "4.16.20"}}, live).items
    assert (item.path, item.kind) == (".spec.desiredUpdate", DriftKind.FORWARD)
    assert "4.16.27" in item.detail
    assert "runs" in item.detail


def test_a_cluster_updating_to_a_newer_version_is_forward_drift() -> None:
    live = live_object(UPDATING_4_14)  # Partial 4.14.1 leads a Completed 4.14.0
    want = {**own_spec(live), "desiredUpdate": {"version": "4.14.0"}}
    [item] = diff(want, live).items
    assert item.kind is DriftKind.FORWARD
    assert "is updating to 4.14.1" in item.detail


def test_an_older_pre_release_than_the_running_one_is_forward_drift() -> None:
    live = live_object(EC_4_15)  # Partial 4.15.0-ec.2 over Completed 4.15.0-ec.1
    [older] = diff({**own_spec(live), "desiredUpdate": {"version": "4.15.0-ec.1"}}, live).items
    [newer] = diff({**own_spec(live), "desiredUpdate": {"version": "4.15.0"}}, live).items
    assert (older.kind, newer.kind) == (DriftKind.FORWARD, DriftKind.CHANGED)


def test_an_image_only_target_of_an_older_history_entry_is_forward_drift() -> None:
    live = live_object(IMAGE_ONLY)
    old_image = live["status"]["history"][1]["image"]
    want = {**own_spec(live), "desiredUpdate": {"image": old_image, "force": False}}
    [item] = diff(want, live).items
    assert item.kind is DriftKind.FORWARD
    assert "4.16.0-0.nightly-2024-08-01-082745" in item.detail


def test_retrying_a_newer_update_that_was_rolled_back_is_not_forward_drift() -> None:
    live = live_object(UPDATING_4_14)  # Partial 4.14.1 leads a Completed 4.14.0
    history = live["status"]["history"]
    newer, older = history[0]["image"], history[1]["image"]
    history.insert(0, {**history[1], "state": "Completed"})  # rolled back to 4.14.0
    live["status"]["desired"] = {"image": older, "version": "4.14.0"}
    [item] = diff({**own_spec(live), "desiredUpdate": {"image": newer}}, live).items
    assert item.kind is DriftKind.CHANGED


def test_an_image_only_target_of_the_current_target_is_plain_drift() -> None:
    live = live_object(IMAGE_ONLY)
    want = own_spec(live)
    want["desiredUpdate"]["force"] = True
    [item] = diff(want, live).items
    assert (item.kind, item.detail) == (DriftKind.CHANGED, "")


def test_an_image_the_cluster_never_ran_is_not_forward_drift() -> None:
    live = live_object(IDLE_4_16)
    image = "quay.io/openshift-release-dev/ocp-release@sha256:" + "a" * 64
    [item] = diff({**own_spec(live), "desiredUpdate": {"image": image}}, live).items
    assert item.kind is DriftKind.MISSING


def _target_set_by(live: dict[str, Any], manager: str, update: dict[str, Any]) -> None:
    """spec.desiredUpdate as `manager` left it (an Update, as `oc adm upgrade --to` writes)."""
    live["spec"]["desiredUpdate"] = {"architecture": "", "force": False, "image": "", **update}
    fields: dict[str, Any] = {f"f:{name}": {} for name in update}
    manage(live, manager, {"f:spec": {"f:desiredUpdate": fields}})


def test_a_newer_target_someone_else_set_is_forward_drift_before_the_operator_starts_it() -> None:
    live = live_object(IDLE_4_16)  # runs 4.16.27; 4.16.30 is an available update
    _target_set_by(live, "oc", {"version": "4.16.30"})
    [item] = diff({**own_spec(live), "desiredUpdate": {"version": "4.16.27"}}, live).items
    assert item.kind is DriftKind.FORWARD
    assert item.detail == (
        'git asks for 4.16.27; "oc" set the target to 4.16.30, and the operator has not '
        "started it yet"
    )


def test_an_image_only_target_someone_else_set_is_compared_by_its_listed_version() -> None:
    live = live_object(IDLE_4_16)
    image = next(
        u["image"] for u in live["status"]["availableUpdates"] if u["version"] == "4.16.30"
    )
    _target_set_by(live, "console", {"image": image})
    [item] = diff({**own_spec(live), "desiredUpdate": {"version": "4.16.28"}}, live).items
    assert item.kind is DriftKind.FORWARD
    assert '"console" set the target to 4.16.30' in item.detail


def test_a_newer_target_cvsync_set_alone_is_git_s_to_change() -> None:
    live = live_object(IDLE_4_16)
    _target_set_by(live, "cvsync", {"version": "4.16.30"})
    [item] = diff({**own_spec(live), "desiredUpdate": {"version": "4.16.28"}}, live).items
    assert (item.kind, item.detail) == (DriftKind.CHANGED, "")


def test_a_newer_or_equal_version_is_not_forward_drift() -> None:
    live = live_object(IDLE_4_16)
    for version in ("4.16.27", "4.16.28", "4.17.0-ec.0"):
        [item] = diff({**own_spec(live), "desiredUpdate": {"version": version}}, live).items
        assert item.kind is DriftKind.MISSING, version


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("4.15.0-ec.2", "4.15.0"),
        ("4.15.0", "4.15.1"),
        ("4.15.0-ec.1", "4.15.0-ec.2"),
        ("4.15.0-ec.2", "4.15.0-rc.0"),
        ("4.14.0-rc.7", "4.14.1"),
        ("4.15.0-1", "4.15.0-ec.0"),
        ("4.15.0-ec", "4.15.0-ec.0"),
        ("4.20.0-0.nightly-2025-08-12-153542", "4.20.0-0.nightly-2025-08-19-180353"),
        ("4.9.0", "4.10.0"),
    ],
)
def test_versions_compare_as_semantic_versions_with_pre_releases(older: str, newer: str) -> None:
    assert is_older(older, newer)
    assert not is_older(newer, older)


def test_build_metadata_and_non_semver_versions_never_count_as_older() -> None:
    assert version_key("4.15.0+abc") == version_key("4.15.0")
    assert not is_older("latest", "4.15.0")
    assert not is_older("4.15.0", "")


# --- owners from real managedFields -------------------------------------------------------------


@pytest.mark.corpus
def test_owners_are_read_from_real_managed_fields() -> None:
    live = live_object(MANAGED_FIELDS)
    cluster_id = owner_of(live, ("spec", "clusterID"))
    assert cluster_id is not None
    assert (cluster_id.manager, cluster_id.since) == ("cluster-bootstrap", "2025-08-19T18:46:31Z")
    update = owner_of(live, ("spec", "desiredUpdate", "force"))
    assert update is not None
    assert update.manager == "openshift-tests"
    desired = owner_of(live, ("status", "desired", "version"))
    assert desired is not None
    assert desired.manager == "cluster-version-operator"
    available = owner_of(live, ("status", "conditions", {"type": "Available"}, "message"))
    assert available is not None
    assert available.manager == "cluster-version-operator"
    assert owner_of(live, ("spec", "channel")) is None
    assert owned_leaves(live, "cvsync") == ()


def test_a_shared_field_reports_every_owner_and_the_latest_time() -> None:
    live = live_object(MANAGED_FIELDS)
    manage(live, "oc", {"f:spec": {"f:clusterID": {}}}, time="2025-09-01T10:00:00Z")
    owner = owner_of(live, ("spec", "clusterID"))
    assert owner is not None
    assert (owner.manager, owner.since) == ("cluster-bootstrap, oc", "2025-09-01T10:00:00Z")


def test_a_manager_that_only_created_a_node_yields_to_the_one_owning_its_leaves() -> None:
    live = live_object(MANAGED_FIELDS)
    manage(live, "console", {"f:spec": {"f:desiredUpdate": {".": {}}}})
    owner = owner_of(live, ("spec", "desiredUpdate"))
    assert owner is not None
    assert owner.manager == "openshift-tests"


# --- the whole corpus -------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("path", CLUSTER_VERSIONS, ids=lambda path: Path(path).name)
def test_a_real_cluster_s_own_spec_gives_no_drift(path: Path) -> None:
    live = live_object(path.name)
    assert diff(own_spec(live), live).items == ()
    assert diff(live["spec"], live).items == ()


# --- the property -------------------------------------------------------------------------------

ZERO = {"architecture": "", "force": False, "image": "", "version": ""}
KEYS = [
    {"kind": "Deployment", "group": "apps", "namespace": "a", "name": "b"},
    {"kind": "Deployment", "group": "apps", "namespace": "a", "name": "c"},
    {"kind": "ClusterImagePolicy", "group": "config.openshift.io", "namespace": "", "name": "o"},
]


def _key(entry: dict[str, Any]) -> tuple[str, ...]:
    return tuple(entry[k] for k in ("kind", "group", "namespace", "name"))


overrides = st.lists(
    st.builds(lambda key, flag: {**key, "unmanaged": flag}, st.sampled_from(KEYS), st.booleans()),
    max_size=3,
    unique_by=_key,
)
updates = st.fixed_dictionaries(
    {},
    optional={
        "version": st.sampled_from(["", "4.16.26", "4.16.27", "4.16.28"]),
        "image": st.sampled_from(["", "quay.io/r@sha256:" + "b" * 64]),
        "force": st.booleans(),
        "architecture": st.sampled_from(["", "Multi"]),
    },
)
capabilities = st.fixed_dictionaries(
    {},
    optional={
        "baselineCapabilitySet": st.sampled_from(["None", "vCurrent"]),
        "additionalEnabledCapabilities": st.lists(st.sampled_from(["Console", "Build"])),
    },
)
specs = st.fixed_dictionaries(
    {"clusterID": st.just("bb39d7b1-588e-4cd6-bc8e-b8f2f8509321")},
    optional={
        "channel": st.sampled_from(["", "stable-4.16", "fast-4.16"]),
        "upstream": st.sampled_from(["https://u.example/graph", ""]),
        "desiredUpdate": updates,
        "overrides": overrides,
        "capabilities": capabilities,
    },
)


def declared_fields_equal(git: dict[str, Any], live: dict[str, Any]) -> bool:
    """The oracle, written apart from diff: git's fields against the live ones."""
    for key, value in git.items():
        if key == "overrides":
            live_map = {_key(e): e for e in live.get("overrides", [])}
            if any(live_map.get(_key(e)) != e for e in value):
                return False
        elif key == "desiredUpdate":
            if key not in live:
                return False
            wanted, found = {**ZERO, **value}, {**ZERO, **live[key]}
            # A version git names that the cluster targets by digest is cvsync's pin of it.
            pinned = not wanted["image"] and "@sha256:" in str(found["image"])
            if pinned and wanted["version"] and wanted["version"] == found["version"]:
                wanted["image"] = found["image"]
            if wanted != found:
                return False
        elif key == "capabilities":
            if key not in live or any(live[key].get(k, ...) != v for k, v in value.items()):
                return False
        elif key not in live or live[key] != value:
            return False
    return True


@st.composite
def spec_pairs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    git: dict[str, Any] = draw(specs)
    if draw(st.booleans()):
        return git, draw(specs)
    live = copy.deepcopy(git)  # an equal cluster, with what git cannot see shuffled in
    extra: list[dict[str, Any]] = draw(overrides)
    ours: list[dict[str, Any]] = live.get("overrides", [])
    mine = {_key(e) for e in ours}
    live_overrides = ours + [e for e in extra if _key(e) not in mine]
    if live_overrides:
        live["overrides"] = draw(st.permutations(live_overrides))
    if "upstream" not in live and draw(st.booleans()):
        live["upstream"] = "https://other.example/graph"
    return git, live


@settings(max_examples=300, deadline=None)
@given(pair=spec_pairs())
def test_diff_is_empty_exactly_when_the_declared_fields_equal_the_live_ones(
    pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    git, live_spec_value = pair
    live = live_object(IDLE_4_16)
    live["spec"] = live_spec_value
    drift = diff(git, live)
    assert (not drift) == declared_fields_equal(git, live_spec_value)
    assert len({item.path for item in drift.items}) == len(drift.items)
    assert all("[0]" not in item.path and "[1]" not in item.path for item in drift.items)
    assert live_spec(live) == desired_spec(live)
