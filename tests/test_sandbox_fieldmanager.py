"""Server-side apply field management of the sandbox API server, against the documented rules
and against managedFields a real API server wrote (../shared/corpus, skipped when absent)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import corpus_path
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from agent.sandbox.apiserver.fieldmanager import (
    CLUSTER_VERSION,
    ApplyConflictError,
    Conflict,
    ManagedFieldsEntry,
    ManagedFieldsError,
    apply,
    crd_reset_fields,
    managed_fields_from_json,
    managed_fields_to_json,
    update,
)
from agent.sandbox.apiserver.fields_v1 import decode_fields_v1, encode_fields_v1, fields_v1_json
from agent.sandbox.apiserver.fieldsets import (
    FieldSet,
    FieldSetError,
    field_element,
    field_set,
    format_path,
    index_element,
    key_element,
    value_element,
)
from agent.sandbox.apiserver.typemodel import EVENT, LEASE, NAMESPACE

API = "config.openshift.io/v1"
T0, T1, T2 = "2025-08-19T18:46:31Z", "2025-08-19T19:32:58Z", "2025-08-19T21:36:53Z"
DEPLOYMENT = {"group": "apps", "kind": "Deployment", "name": "x", "namespace": "y"}
CIP = {"group": "config.openshift.io", "kind": "ClusterImagePolicy", "name": "openshift"}
CIP_OVERRIDE = {**CIP, "namespace": "", "unmanaged": True}
CORPUS_CV = "4.20.0-nightly-progressing-forced-unverified-managedfields.yaml"


def cv(spec: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": API, "kind": "ClusterVersion"}
    obj["metadata"] = sections.pop("metadata", {"name": "version"})
    if spec is not None:
        obj["spec"] = spec
    obj.update(sections)
    return obj


def owned(
    entries: list[ManagedFieldsEntry] | tuple[ManagedFieldsEntry, ...],
) -> dict[str, set[str]]:
    return {e.manager: {format_path(p) for p in e.fields} for e in entries}


def override(unmanaged: bool, **keys: str) -> dict[str, Any]:
    return {**DEPLOYMENT, **keys, "unmanaged": unmanaged}


def paths(*dotted: str) -> FieldSet:
    return frozenset(tuple(field_element(n) for n in d.split(".")) for d in dotted)


def corpus_cv() -> dict[str, Any]:
    with corpus_path("clusterversions", CORPUS_CV).open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = YAML(typ="safe").load(handle)
    return loaded


# --- paths and FieldsV1 ----------------------------------------------------------------------


def test_field_paths_print_the_way_api_server_conflict_messages_print_them() -> None:
    assert format_path(("f:spec", "f:channel")) == ".spec.channel"
    item = ("f:spec", "f:overrides", key_element(DEPLOYMENT), "f:unmanaged")
    # Key fields print sorted by name, as structured-merge-diff keeps them.
    assert format_path(item) == (
        '.spec.overrides[group="apps",kind="Deployment",name="x",namespace="y"].unmanaged'
    )
    assert format_path(("f:status", "f:desired", "f:channels", value_element("a"))) == (
        '.status.desired.channels[="a"]'
    )
    assert format_path(("f:a", index_element(0))) == ".a[0]"


def test_key_elements_are_compact_json_with_their_fields_sorted() -> None:
    keys = {"namespace": "y", "name": "x", "kind": "Deployment", "group": "apps"}
    assert key_element(keys) == 'k:{"group":"apps","kind":"Deployment","name":"x","namespace":"y"}'
    assert value_element("stable-4.16") == 'v:"stable-4.16"'


def test_fields_v1_lists_fields_then_keys_then_values_then_indexes() -> None:
    fields = frozenset(
        {
            ("f:b",),
            ("f:a",),
            (key_element({"name": "second"}),),
            (key_element({"name": "first"}),),
            (value_element(True),),
            (value_element("aa"),),
            (value_element(2),),
            (index_element(1),),
        }
    )
    assert fields_v1_json(fields) == (
        '{"f:a":{},"f:b":{},"k:{\\"name\\":\\"first\\"}":{},"k:{\\"name\\":\\"second\\"}":{},'
        '"v:2":{},"v:\\"aa\\"":{},"v:true":{},"i:1":{}}'
    )


def test_a_dot_comes_first_in_a_node_that_is_owned_and_has_owned_children() -> None:
    fields = frozenset({("f:spec",), ("f:spec", "f:channel"), ("f:status", "f:history")})
    assert encode_fields_v1(fields) == {
        "f:spec": {".": {}, "f:channel": {}},
        "f:status": {"f:history": {}},
    }
    assert (
        fields_v1_json(fields) == '{"f:spec":{".":{},"f:channel":{}},"f:status":{"f:history":{}}}'
    )


_names = st.sampled_from(["a", "b", "spec", "type", "x.y"])
_scalars = st.one_of(st.text(max_size=4), st.integers(-3, 3), st.booleans())
_elements = st.one_of(
    _names.map(field_element),
    st.dictionaries(_names, _scalars, min_size=1, max_size=2).map(key_element),
    _scalars.map(value_element),
    st.integers(0, 5).map(index_element),
)


@settings(max_examples=200, deadline=None)
@given(st.frozensets(st.lists(_elements, min_size=1, max_size=4).map(tuple), max_size=12))
def test_fields_v1_round_trips_any_set_of_paths(fields: FieldSet) -> None:
    encoded = fields_v1_json(fields)
    decoded = decode_fields_v1(json.loads(encoded))
    assert decoded == fields
    assert fields_v1_json(decoded) == encoded


def test_decoding_fields_v1_drops_element_types_it_does_not_know() -> None:
    assert decode_fields_v1({"f:a": {}, "r:b": {}, "f:c": {"x:d": {}}}) == paths("a", "c")


def test_map_list_items_without_all_their_key_fields_are_rejected() -> None:
    config = cv({"overrides": [{"kind": "Deployment", "group": "apps", "name": "x"}]})
    with pytest.raises(FieldSetError, match='omits key field "namespace"'):
        apply(None, [], config, "cvsync", force=False, now=T0)


@pytest.mark.corpus
def test_real_managed_fields_decode_and_reencode_byte_for_byte() -> None:
    written = corpus_cv()["metadata"]["managedFields"]
    for entry in written:
        assert fields_v1_json(decode_fields_v1(entry["fieldsV1"])) == json.dumps(
            entry["fieldsV1"], separators=(",", ":")
        )
    reencoded = managed_fields_to_json(managed_fields_from_json(written))
    assert [json.dumps(e, sort_keys=True) for e in reencoded] == [
        json.dumps(e, sort_keys=True) for e in written
    ]


@pytest.mark.corpus
def test_replaying_create_then_spec_and_status_updates_reproduces_the_real_managed_fields() -> None:
    real = corpus_cv()
    metadata = {k: v for k, v in real["metadata"].items() if k != "managedFields"}
    created = cv({"clusterID": real["spec"]["clusterID"]}, metadata=metadata)
    managed = update(None, created, [], "cluster-bootstrap", now=T0)
    requested = {**created, "spec": real["spec"]}
    managed = update(created, requested, managed, "openshift-tests", now=T1)
    reported = {**requested, "status": real["status"]}
    managed = update(
        requested,
        reported,
        managed,
        "cluster-version-operator",
        operation_subresource="status",
        now=T2,
        reset_fields=crd_reset_fields("status"),
    )
    assert json.dumps(managed_fields_to_json(managed)) == json.dumps(
        [
            {k: e[k] for k in sorted(e, key=_go_field_order)}
            for e in real["metadata"]["managedFields"]
        ]
    )


def _go_field_order(name: str) -> int:
    order = ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"]
    return order.index(name)


def test_a_clusterversion_spec_with_overrides_has_the_exact_fields_v1_of_a_real_server() -> None:
    spec = {
        "channel": "stable-4.16",
        "clusterID": "faf5ca13-bbd4-42f4-956c-5e62afe7be1f",
        "capabilities": {"baselineCapabilitySet": "v4.16", "additionalEnabledCapabilities": []},
        "desiredUpdate": {"version": "4.16.3", "force": False},
        "overrides": [override(True), CIP_OVERRIDE],
    }
    result = apply(None, [], cv(spec), "cvsync", force=False, now=T0)
    item = '{".":{},"f:group":{},"f:kind":{},"f:name":{},"f:namespace":{},"f:unmanaged":{}}'
    assert fields_v1_json(result.managed[0].fields) == (
        '{"f:spec":{"f:capabilities":{"f:additionalEnabledCapabilities":{},'
        '"f:baselineCapabilitySet":{}},"f:channel":{},"f:clusterID":{},'
        '"f:desiredUpdate":{"f:force":{},"f:version":{}},"f:overrides":{'
        '"k:{\\"group\\":\\"apps\\",\\"kind\\":\\"Deployment\\",\\"name\\":\\"x\\",'
        f'\\"namespace\\":\\"y\\"}}":{item},'
        '"k:{\\"group\\":\\"config.openshift.io\\",\\"kind\\":\\"ClusterImagePolicy\\",'
        f'\\"name\\":\\"openshift\\",\\"namespace\\":\\"\\"}}":{item}}}}}}}'
    )
    created = update(None, cv({"overrides": [CIP_OVERRIDE]}), [], "oc", now=T0)
    assert fields_v1_json(created[0].fields) == (
        '{"f:spec":{".":{},"f:overrides":{".":{},"k:{\\"group\\":\\"config.openshift.io\\",'
        '\\"kind\\":\\"ClusterImagePolicy\\",\\"name\\":\\"openshift\\",\\"namespace\\":\\"\\"}":'
        f"{item}}}}}}}"
    )


# --- apply -----------------------------------------------------------------------------------


def test_apply_with_no_live_object_creates_it_and_the_applier_owns_what_it_sent() -> None:
    config = cv({"channel": "stable-4.16", "clusterID": "abc"})
    result = apply(None, [], config, "cvsync", force=False, now=T0)
    assert result.changed
    assert result.object["spec"] == {"channel": "stable-4.16", "clusterID": "abc"}
    assert result.object["metadata"]["managedFields"] == [
        {
            "manager": "cvsync",
            "operation": "Apply",
            "apiVersion": API,
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:channel": {}, "f:clusterID": {}}},
        }
    ]


def test_server_maintained_metadata_is_never_owned_but_labels_and_annotations_are() -> None:
    metadata = {
        "name": "version",
        "uid": "u",
        "resourceVersion": "7",
        "generation": 2,
        "creationTimestamp": T0,
        "labels": {"team": "ota"},
        "annotations": {"note": "x"},
    }
    result = apply(None, [], cv({"channel": "a"}, metadata=metadata), "cvsync", force=False, now=T0)
    assert owned(result.managed) == {
        "cvsync": {".metadata.labels.team", ".metadata.annotations.note", ".spec.channel"}
    }


def test_applying_a_different_value_to_a_field_another_manager_owns_is_a_conflict() -> None:
    live = cv({"channel": "a"})
    managed = update(None, live, [], "console", now=T0)
    with pytest.raises(ApplyConflictError) as raised:
        apply(live, managed, cv({"channel": "b"}), "cvsync", force=False, now=T1)
    assert raised.value.conflicts == (Conflict("console", ("f:spec", "f:channel"), "Update", API),)
    assert str(raised.value) == (
        'Apply failed with 1 conflict: conflict with "console" using config.openshift.io/v1: '
        ".spec.channel"
    )
    assert raised.value.causes() == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "console" using config.openshift.io/v1',
            "field": ".spec.channel",
        }
    ]


def test_a_conflict_message_lists_every_field_grouped_by_owner() -> None:
    first = apply(
        None,
        [],
        cv({"upstream": "u", "desiredUpdate": {"version": "1"}}),
        "ops",
        force=False,
        now=T0,
    )
    live = copy.deepcopy(first.object)
    live["spec"]["channel"] = "a"
    managed = update(first.object, live, first.managed, "console", now=T1)
    config = cv({"channel": "b", "upstream": "v", "desiredUpdate": {"version": "2"}})
    with pytest.raises(ApplyConflictError) as raised:
        apply(live, managed, config, "cvsync", force=False, now=T2)
    assert raised.value.message == (
        "Apply failed with 3 conflicts: "
        'conflicts with "console" using config.openshift.io/v1:\n- .spec.channel\n'
        'conflicts with "ops":\n- .spec.upstream\n- .spec.desiredUpdate.version'
    )


def test_forcing_a_conflicting_apply_moves_ownership_and_empty_managers_disappear() -> None:
    created = cv({"clusterID": "c"})
    managed = update(None, created, [], "bootstrap", now=T0)
    live = cv({"clusterID": "c", "channel": "a"})
    managed = update(created, live, managed, "console", now=T1)
    assert owned(managed)["console"] == {".spec.channel"}
    result = apply(live, managed, cv({"channel": "b"}), "cvsync", force=True, now=T2)
    assert result.object["spec"] == {"clusterID": "c", "channel": "b"}
    assert owned(result.managed) == {
        "cvsync": {".spec.channel"},
        "bootstrap": {".spec", ".spec.clusterID"},
    }


def test_applying_the_value_another_manager_set_shares_ownership_without_a_change() -> None:
    live = cv({"channel": "a"})
    managed = update(None, live, [], "console", now=T0)
    result = apply(live, managed, cv({"channel": "a"}), "cvsync", force=False, now=T1)
    assert not result.changed
    # The creating update also owns the spec map it brought into being.
    assert owned(result.managed) == {
        "cvsync": {".spec.channel"},
        "console": {".spec", ".spec.channel"},
    }
    # The server stamps an applier only when the object changed.
    assert [e.time for e in result.managed] == [None, T0]


def test_a_no_op_reapply_keeps_the_appliers_timestamp() -> None:
    first = apply(None, [], cv({"channel": "a"}), "cvsync", force=False, now=T0)
    again = apply(first.object, first.managed, cv({"channel": "a"}), "cvsync", force=False, now=T1)
    assert not again.changed
    assert again.managed == first.managed


def test_a_field_the_applier_stops_sending_is_removed_when_nobody_else_owns_it() -> None:
    first = apply(None, [], cv({"channel": "a", "upstream": "u"}), "cvsync", force=False, now=T0)
    second = apply(first.object, first.managed, cv({"channel": "a"}), "cvsync", force=False, now=T1)
    assert second.object["spec"] == {"channel": "a"}
    assert owned(second.managed) == {"cvsync": {".spec.channel"}}
    assert second.managed[0].time == T1


def test_a_field_the_applier_stops_sending_is_only_released_when_another_manager_owns_it() -> None:
    first = apply(None, [], cv({"channel": "a", "upstream": "u"}), "cvsync", force=False, now=T0)
    shared = apply(first.object, first.managed, cv({"upstream": "u"}), "ops", force=False, now=T1)
    final = apply(
        shared.object, shared.managed, cv({"channel": "a"}), "cvsync", force=False, now=T2
    )
    assert final.object["spec"] == {"channel": "a", "upstream": "u"}
    assert owned(final.managed) == {"cvsync": {".spec.channel"}, "ops": {".spec.upstream"}}


def test_a_struct_the_applier_stops_sending_is_removed_with_its_unowned_fields() -> None:
    config = cv({"desiredUpdate": {"version": "4.16.3", "force": False}})
    first = apply(None, [], config, "cvsync", force=False, now=T0)
    live = copy.deepcopy(first.object)
    live["spec"]["desiredUpdate"]["image"] = "quay.io/x@sha256:1"
    managed = update(first.object, live, first.managed, "admin", now=T1)
    final = apply(live, managed, cv({"channel": "a"}), "cvsync", force=False, now=T2)
    assert final.object["spec"] == {
        "channel": "a",
        "desiredUpdate": {"image": "quay.io/x@sha256:1"},
    }
    cleared = apply(live, first.managed, cv({"channel": "a"}), "cvsync", force=False, now=T2)
    assert cleared.object["spec"] == {"channel": "a"}


def test_map_list_items_merge_per_key_and_keep_other_managers_items() -> None:
    first = apply(None, [], cv({"overrides": [CIP_OVERRIDE]}), "admin", force=False, now=T0)
    config = cv({"overrides": [override(True)]})
    result = apply(first.object, first.managed, config, "cvsync", force=False, now=T1)
    assert result.object["spec"]["overrides"] == [CIP_OVERRIDE, override(True)]
    cip = '.spec.overrides[group="config.openshift.io",kind="ClusterImagePolicy",name="openshift",'
    deployment = '.spec.overrides[group="apps",kind="Deployment",name="x",namespace="y"]'
    assert owned(result.managed)["admin"] == {
        f'{cip}namespace=""]{suffix}' for suffix in ("", ".group", ".kind", ".name", ".namespace")
    } | {f'{cip}namespace=""].unmanaged'}
    assert f"{deployment}.unmanaged" in owned(result.managed)["cvsync"]


def test_changing_a_field_inside_another_managers_map_list_item_conflicts_at_that_field() -> None:
    first = apply(None, [], cv({"overrides": [override(True)]}), "admin", force=False, now=T0)
    config = cv({"overrides": [override(False)]})
    with pytest.raises(ApplyConflictError) as raised:
        apply(first.object, first.managed, config, "cvsync", force=False, now=T1)
    assert [c.field for c in raised.value.conflicts] == [
        '.spec.overrides[group="apps",kind="Deployment",name="x",namespace="y"].unmanaged'
    ]


def test_a_map_list_item_the_applier_stops_sending_is_removed() -> None:
    config = cv({"overrides": [override(True), CIP_OVERRIDE]})
    first = apply(None, [], config, "cvsync", force=False, now=T0)
    again = cv({"overrides": [CIP_OVERRIDE]})
    result = apply(first.object, first.managed, again, "cvsync", force=False, now=T1)
    assert result.object["spec"]["overrides"] == [CIP_OVERRIDE]


def test_set_lists_merge_per_value() -> None:
    live = cv({"channel": "a"}, status={"desired": {"channels": ["a", "b"]}})
    managed = update(None, live, [], "cvo", now=T0)
    config = cv(status={"desired": {"channels": ["b", "c"]}})
    reset = crd_reset_fields("status")
    result = apply(
        live, managed, config, "sim", force=False, subresource="status", now=T1, reset_fields=reset
    )
    assert result.object["status"]["desired"]["channels"] == ["a", "b", "c"]
    assert owned(result.managed)["sim"] == {
        '.status.desired.channels[="b"]',
        '.status.desired.channels[="c"]',
    }
    assert result.managed[0].subresource == "status"


def test_atomic_lists_are_replaced_whole_and_owned_as_one_field() -> None:
    caps = ["Console", "Insights"]
    config = cv({"capabilities": {"additionalEnabledCapabilities": caps}})
    first = apply(None, [], config, "admin", force=False, now=T0)
    fewer = cv({"capabilities": {"additionalEnabledCapabilities": ["Console"]}})
    with pytest.raises(ApplyConflictError) as raised:
        apply(first.object, first.managed, fewer, "cvsync", force=False, now=T1)
    assert [c.field for c in raised.value.conflicts] == [
        ".spec.capabilities.additionalEnabledCapabilities"
    ]
    forced = apply(first.object, first.managed, fewer, "cvsync", force=True, now=T1)
    assert forced.object["spec"]["capabilities"]["additionalEnabledCapabilities"] == ["Console"]
    assert owned(forced.managed) == {"cvsync": {".spec.capabilities.additionalEnabledCapabilities"}}


def test_an_apply_to_the_main_resource_neither_changes_nor_owns_status() -> None:
    live = cv({"channel": "a"}, status={"observedGeneration": 1})
    managed = update(None, live, [], "cvo", now=T0)
    config = cv({"channel": "a"}, status={"observedGeneration": 5})
    result = apply(
        live, managed, config, "cvsync", force=False, now=T1, reset_fields=crd_reset_fields("")
    )
    assert result.object["status"] == {"observedGeneration": 1}
    assert owned(result.managed)["cvsync"] == {".spec.channel"}


def test_an_apply_to_an_untracked_object_first_credits_its_fields_to_before_first_apply() -> None:
    with pytest.raises(ApplyConflictError) as raised:
        apply(cv({"channel": "a"}), [], cv({"channel": "b"}), "cvsync", force=False, now=T0)
    assert raised.value.message == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using '
        "config.openshift.io/v1: .spec.channel"
    )


def test_apply_and_update_leave_their_inputs_untouched() -> None:
    live = cv({"channel": "a", "overrides": [override(True)]})
    managed = update(None, live, [], "console", now=T0)
    config = cv({"overrides": [override(False), CIP_OVERRIDE]})
    snapshot = copy.deepcopy((live, managed, config))
    result = apply(live, managed, config, "cvsync", force=True, now=T1)
    update(live, result.object, managed, "other", now=T2)
    assert (live, managed, config) == snapshot


# --- update ----------------------------------------------------------------------------------


def test_creating_an_object_owns_each_new_map_with_a_dot() -> None:
    managed = update(None, cv({"channel": "a"}), [], "oc", now=T0)
    assert managed_fields_to_json(managed) == [
        {
            "manager": "oc",
            "operation": "Update",
            "apiVersion": API,
            "time": T0,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {".": {}, "f:channel": {}}},
        }
    ]


def test_an_update_takes_the_fields_it_changes_from_their_owners() -> None:
    first = apply(None, [], cv({"channel": "a", "upstream": "u"}), "ops", force=False, now=T0)
    changed = cv({"channel": "b", "upstream": "u"})
    managed = update(first.object, changed, first.managed, "console", now=T1)
    assert owned(managed) == {"ops": {".spec.upstream"}, "console": {".spec.channel"}}


def test_an_update_that_changes_nothing_keeps_every_owner_and_timestamp() -> None:
    first = apply(None, [], cv({"channel": "a"}), "ops", force=False, now=T0)
    managed = update(first.object, cv({"channel": "a"}), first.managed, "console", now=T1)
    assert managed == list(first.managed)


def test_an_update_that_removes_a_field_takes_it_from_every_manager() -> None:
    first = apply(None, [], cv({"channel": "a", "upstream": "u"}), "ops", force=False, now=T0)
    managed = update(first.object, cv({"channel": "a"}), first.managed, "console", now=T1)
    assert owned(managed) == {"ops": {".spec.channel"}}


def test_updates_by_one_manager_accumulate_in_one_entry_with_the_latest_time() -> None:
    one = cv({"channel": "a"})
    managed = update(None, one, [], "console", now=T0)
    two = cv({"channel": "a", "upstream": "u"})
    managed = update(one, two, managed, "console", now=T1)
    assert len(managed) == 1
    assert managed[0].fields == paths("spec", "spec.channel", "spec.upstream")
    assert managed[0].time == T1


def test_a_status_update_is_recorded_under_its_subresource_and_ignores_spec() -> None:
    old = cv({"channel": "a"})
    new = cv({"channel": "b"}, status={"observedGeneration": 2})
    managed = update(
        old,
        new,
        [],
        "cvo",
        operation_subresource="status",
        now=T0,
        reset_fields=crd_reset_fields("status"),
    )
    assert managed_fields_to_json(managed)[0]["subresource"] == "status"
    assert owned(managed) == {"cvo": {".status", ".status.observedGeneration"}}


# --- metadata.managedFields --------------------------------------------------------------------


def test_managed_fields_put_appliers_first_then_order_by_time_and_manager() -> None:
    entries = [
        ManagedFieldsEntry("b", "Update", API, paths("spec.a"), T1),
        ManagedFieldsEntry("z", "Apply", API, paths("spec.b"), T2),
        ManagedFieldsEntry("a", "Update", API, paths("spec.c"), T1),
        ManagedFieldsEntry("c", "Update", API, paths("spec.d"), T0),
    ]
    assert [e["manager"] for e in managed_fields_to_json(entries)] == ["z", "c", "a", "b"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"operation": "Patch", "apiVersion": API, "fieldsType": "FieldsV1"}, "operation must be"),
        ({"operation": "Update", "fieldsType": "FieldsV1"}, "apiVersion must not be empty"),
        ({"operation": "Update", "apiVersion": API}, "missing fieldsType"),
        (
            {"operation": "Update", "apiVersion": API, "fieldsType": "FieldsV2"},
            "invalid fieldsType",
        ),
    ],
)
def test_managed_fields_entries_the_server_would_refuse_are_rejected(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(ManagedFieldsError, match=message):
        managed_fields_from_json([{"manager": "m", **entry}])


def test_field_set_owns_list_items_whole_but_structs_only_through_their_leaves() -> None:
    spec = {"desiredUpdate": {"version": "1"}, "overrides": [override(True)]}
    fields = field_set({"spec": spec}, CLUSTER_VERSION)
    item = ("f:spec", "f:overrides", key_element(DEPLOYMENT))
    assert ("f:spec", "f:desiredUpdate") not in fields
    assert ("f:spec", "f:desiredUpdate", "f:version") in fields
    assert item in fields
    assert (*item, "f:unmanaged") in fields


# --- the type model: structs, maps, atomic structs and zero-valued Go objects ----------------


def test_an_applied_empty_struct_is_owned_as_a_node_of_its_own() -> None:
    # kubernetes-sigs/structured-merge-diff pull 184 ("Fix remove structures"): an applier
    # owns an empty struct it sends, so pruning cannot drop it behind its back.
    assert ("f:spec", "f:desiredUpdate") in field_set(
        {"spec": {"desiredUpdate": {}}}, CLUSTER_VERSION
    )
    result = apply(None, [], cv({"desiredUpdate": {}}), "cvsync", force=False, now=T0)
    [entry] = result.managed
    assert encode_fields_v1(entry.fields) == {"f:spec": {"f:desiredUpdate": {}}}


def test_an_update_records_a_dot_only_for_a_node_a_zero_valued_object_lacks() -> None:
    # Recorded from kube-apiserver v1.36.2: lease-create (a Lease's spec is a Go value, present
    # in the zero Lease: no "."), namespace-create (labels is a map the zero Namespace lacks:
    # a "."), get-object (a custom resource is unstructured: its spec is new, a ".").
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "cvsync", "namespace": "cvsync"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    [entry] = update(None, lease, [], "Python-urllib", now=T0, types=LEASE)
    assert encode_fields_v1(entry.fields) == {
        "f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}
    }
    labels = {"kubernetes.io/metadata.name": "cvsync-extra"}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"labels": labels}}
    [entry] = update(None, namespace, [], "Python-urllib", now=T0, types=NAMESPACE)
    assert encode_fields_v1(entry.fields) == {
        "f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}
    }
    [entry] = update(None, cv({"clusterID": "x"}), [], "cluster-bootstrap", now=T0)
    assert encode_fields_v1(entry.fields) == {"f:spec": {".": {}, "f:clusterID": {}}}


def test_an_atomic_struct_is_one_field_that_changes_hands_whole() -> None:
    # Recorded: event-involved-ns-matches (an Event's involvedObject, an ObjectReference,
    # is +structType=atomic: `f:involvedObject: {}` with no children).
    reference = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion", "name": "v"}
    event = {"apiVersion": "v1", "kind": "Event", "involvedObject": reference}
    event |= {"source": {"component": "cvsync"}}
    created = update(None, event, [], "recorder", now=T0, types=EVENT)
    assert encode_fields_v1(created[0].fields) == {
        "f:involvedObject": {},
        "f:source": {"f:component": {}},
    }
    moved = {**event, "involvedObject": {**reference, "namespace": "cvsync"}}
    after = update(event, moved, created, "mover", now=T1, types=EVENT)
    assert owned(after) == {"recorder": {".source.component"}, "mover": {".involvedObject"}}
    merged = apply(
        event,
        created,
        {**event, "involvedObject": {"name": "w"}},
        "a",
        force=True,
        now=T1,
        types=EVENT,
    )
    assert merged.object["involvedObject"] == {"name": "w"}  # replaced, never merged per field
