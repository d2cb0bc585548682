"""The conflicts an apply would meet, predicted from managedFields before it is sent, against
what the sandbox API server's field manager answers to the same apply (its 409's causes)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from agent.sandbox.apiserver.handlers import APPLY_PATCH, MERGE_PATCH, Api, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.apiserver.store import Store
from agent.sync.takeover import Conflict, predict_takeover

CLUSTER_ID = "bb39d7b1-588e-4cd6-bc8e-b8f2f8509321"
UPSTREAM = "https://api.openshift.com/api/upgrades_info/v1/graph"
TARGET = Target(CLUSTER_VERSIONS, "", "version")
CMO = {"group": "apps", "kind": "Deployment", "name": "cmo", "namespace": "openshift-monitoring"}
DNS = {"group": "apps", "kind": "Deployment", "name": "dns", "namespace": "openshift-dns"}
DNS_FIELD = (
    '.spec.overrides[group="apps",kind="Deployment",name="dns",namespace="openshift-dns"].unmanaged'
)
IMAGE = "quay.io/openshift-release-dev/ocp-release@sha256:" + "a" * 64


def body(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": CLUSTER_ID, **spec},
    }


class Server:
    """The sandbox's API in process, seeded as the real server's recording was: the installer
    created the object with an Update (kubectl create --field-manager=cluster-bootstrap)."""

    def __init__(self) -> None:
        self.api = Api(Store(None, 1000), "Default")
        seed = body(channel="stable-4.16", upstream=UPSTREAM)
        self.api.create(Target(CLUSTER_VERSIONS, "", ""), seed, WriteOptions("cluster-bootstrap"))

    def apply(self, manager: str, sent: dict[str, Any], *, force: bool = False) -> None:
        self.api.patch(TARGET, APPLY_PATCH, sent, WriteOptions(manager, force=force))

    def merge_patch(self, manager: str, spec: dict[str, Any]) -> None:
        self.api.patch(TARGET, MERGE_PATCH, {"spec": spec}, WriteOptions(manager))

    def live(self) -> dict[str, Any]:
        found = self.api.store.get(self.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return copy.deepcopy(found)

    def answered_conflicts(self, sent: dict[str, Any]) -> set[tuple[str, str]]:
        """(field, manager) from the 409 an unforced dry-run apply as cvsync gets."""
        try:
            self.api.patch(TARGET, APPLY_PATCH, sent, WriteOptions("cvsync", dry_run=True))
        except ApiError as refused:
            if refused.code != 409:
                raise
            causes = refused.body["details"]["causes"]
            return {(c["field"], c["message"].split('"')[1]) for c in causes}
        return set()


def predicted(server: Server, sent: dict[str, Any]) -> set[tuple[str, str]]:
    return set(predict_takeover(sent, server.live(), "cvsync").taken())


def test_the_installer_s_channel_is_an_imperative_conflict_and_an_equal_value_none() -> None:
    server = Server()
    changed = body(channel="fast-4.16")
    takeover = predict_takeover(changed, server.live(), "cvsync")
    assert takeover.conflicts == (Conflict(".spec.channel", "cluster-bootstrap", "Update"),)
    assert takeover.only_imperative
    assert set(takeover.taken()) == server.answered_conflicts(changed)
    # clusterID is the installer's too, but applied with its own value it is shared.
    same = body(channel="stable-4.16")
    assert predict_takeover(same, server.live(), "cvsync").conflicts == ()
    assert server.answered_conflicts(same) == set()


def test_a_hand_edit_after_cvsync_applied_is_an_imperative_conflict() -> None:
    server = Server()
    server.apply("cvsync", body(channel="fast-4.16"), force=True)
    server.merge_patch("human", {"channel": "stable-4.16"})
    sent = body(channel="fast-4.16")
    takeover = predict_takeover(sent, server.live(), "cvsync")
    assert takeover.only_imperative
    assert set(takeover.taken()) == server.answered_conflicts(sent) == {(".spec.channel", "human")}


def test_a_field_another_applier_holds_is_never_an_imperative_conflict() -> None:
    server = Server()
    server.apply("other-gitops", body(channel="eus-4.16"), force=True)
    sent = body(channel="fast-4.16")
    takeover = predict_takeover(sent, server.live(), "cvsync")
    assert not takeover.only_imperative
    assert set(takeover.taken()) == server.answered_conflicts(sent)
    assert takeover.conflicts[0].operation == "Apply"


def test_an_applier_sharing_a_field_keeps_the_decision_with_the_server() -> None:
    server = Server()
    server.apply("other-gitops", body(channel="stable-4.16"))  # the same value: shared
    sent = body(channel="stable-4.16", upstream="https://example.com/graph")
    takeover = predict_takeover(sent, server.live(), "cvsync")
    assert set(takeover.taken()) == server.answered_conflicts(sent)
    assert takeover.co_appliers == {"other-gitops"}
    assert not takeover.only_imperative  # an unforced apply asks the server first


def test_override_entries_conflict_only_where_another_manager_owns_the_entry() -> None:
    server = Server()
    server.apply("cvsync", body(overrides=[{**CMO, "unmanaged": True}]))
    server.apply("sre", body(overrides=[{**DNS, "unmanaged": True}]))
    own_entry = body(overrides=[{**CMO, "unmanaged": False}])
    assert predicted(server, own_entry) == server.answered_conflicts(own_entry) == set()
    others = body(overrides=[{**CMO, "unmanaged": True}, {**DNS, "unmanaged": False}])
    assert predicted(server, others) == server.answered_conflicts(others) == {(DNS_FIELD, "sre")}
    assert not predict_takeover(others, server.live(), "cvsync").only_imperative


def test_desired_update_fields_set_by_oc_conflict_one_by_one() -> None:
    server = Server()
    server.merge_patch("oc", {"desiredUpdate": {"version": "4.16.3", "image": "", "force": False}})
    sent = body(desiredUpdate={"version": "4.16.4", "image": IMAGE, "force": False})
    expected = {(".spec.desiredUpdate.version", "oc"), (".spec.desiredUpdate.image", "oc")}
    assert predicted(server, sent) == server.answered_conflicts(sent) == expected
    assert predict_takeover(sent, server.live(), "cvsync").only_imperative


@pytest.mark.parametrize("mine", [["Console"], ["Console", "Insights"], []])
def test_an_atomic_list_set_by_hand_conflicts_as_a_whole(mine: list[str]) -> None:
    server = Server()
    capabilities = {"baselineCapabilitySet": "None", "additionalEnabledCapabilities": ["Console"]}
    server.merge_patch("human", {"capabilities": capabilities})
    sent = body(capabilities={**capabilities, "additionalEnabledCapabilities": mine})
    assert predicted(server, sent) == server.answered_conflicts(sent)


def test_an_object_without_managed_fields_is_left_to_the_server() -> None:
    server = Server()
    live = server.live()
    del live["metadata"]["managedFields"]
    assert not predict_takeover(body(channel="fast-4.16"), live, "cvsync").certain
    assert predict_takeover(body(channel="fast-4.16"), None, "cvsync").conflicts == ()


_CHANNELS = st.sampled_from(["stable-4.16", "fast-4.16", "eus-4.16"])
_ENTRIES = st.sampled_from([CMO, DNS])


@st.composite
def _specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["channel"] = draw(_CHANNELS)
    if draw(st.booleans()):
        spec["upstream"] = draw(st.sampled_from([UPSTREAM, "https://example.com/graph"]))
    if draw(st.booleans()):
        spec["desiredUpdate"] = {"version": draw(st.sampled_from(["4.16.3", "4.16.4"]))}
    entries = draw(st.lists(_ENTRIES, unique_by=lambda e: e["name"], max_size=2))
    if entries:
        spec["overrides"] = [{**e, "unmanaged": draw(st.booleans())} for e in entries]
    return spec


_WRITES = st.lists(
    st.tuples(st.sampled_from(["cvsync", "sre", "argocd", "oc", "human"]), _specs()),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(writes=_WRITES, mine=_specs())
def test_a_certain_prediction_names_exactly_the_conflicts_the_server_answers(
    writes: list[tuple[str, dict[str, Any]]], mine: dict[str, Any]
) -> None:
    server = Server()
    sent = body(**mine)
    try:
        for manager, spec in writes:
            # "oc" and "human" write imperatively; the others apply, forced so each lands.
            if manager in ("oc", "human"):
                server.merge_patch(manager, spec)
            else:
                server.apply(manager, body(**spec), force=True)
        answered = server.answered_conflicts(sent)
    except ApiError as refused:
        # A write the schema refuses (an applier dropped a required field it alone owned).
        assume(refused.code != 422)
        raise
    takeover = predict_takeover(sent, server.live(), "cvsync")
    if takeover.certain:
        assert set(takeover.taken()) == answered
