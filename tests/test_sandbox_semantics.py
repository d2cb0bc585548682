"""The sandbox over plain HTTP, one test per rule of the Kubernetes API conventions and of
server-side apply, so a client that works against it works against a real API server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from agent.sandbox.server import Sandbox, SandboxOptions

CVS = "/apis/config.openshift.io/v1/clusterversions"
CV = f"{CVS}/version"
EVENTS = "/api/v1/namespaces/default/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/cvsync/leases"
API_VERSION = "config.openshift.io/v1"
CLUSTER_ID = "5e65da93-4167-4f1e-9571-f99963cda23e"
JSON = "application/json"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
STATUS = {
    "desired": {"version": "4.15.3", "image": "quay.io/ocp/release@sha256:" + "a" * 64},
    "observedGeneration": 1,
    "versionHash": "abc",
    "availableUpdates": None,
}
DEPLOYMENT_X = {"kind": "Deployment", "group": "apps", "namespace": "y", "name": "x"}
DEPLOYMENT_Z = {"kind": "Deployment", "group": "apps", "namespace": "y", "name": "z"}


def cluster_version(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": CLUSTER_ID, **spec},
    }


def event(name: str, message: str = "synced") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "involvedObject": {"apiVersion": API_VERSION, "kind": "ClusterVersion", "name": "version"},
        "reason": "Synced",
        "message": message,
        "type": "Normal",
        "count": 1,
    }


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def resource_version(self) -> int:
        return int(self.body["metadata"]["resourceVersion"])

    @property
    def generation(self) -> int:
        return int(self.body["metadata"]["generation"])


class Http:
    """Raw requests to the sandbox with the admin bearer token."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox) -> None:
        self.session = session
        self.sandbox = sandbox

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = JSON,
        token: str | None = None,
        **params: str,
    ) -> Reply:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Reply(response.status, parsed, dict(response.headers))

    async def get(self, path: str = CV, **params: str) -> Reply:
        return await self.call("GET", path, **params)

    async def apply(self, body: Any, manager: str, path: str = CV, **params: str) -> Reply:
        return await self.call(
            "PATCH", path, body, content_type=APPLY, fieldManager=manager, **params
        )

    async def applied(self, manager: str, **spec: Any) -> Reply:
        reply = await self.apply(cluster_version(**spec), manager)
        assert reply.status in (200, 201), reply.body["message"]
        return reply

    async def merge(self, patch: Any, path: str = CV) -> Reply:
        return await self.call("PATCH", path, patch, content_type=MERGE)


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with Sandbox(SandboxOptions(tls=False)) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
        async with aiohttp.ClientSession(sandbox.url, headers=headers) as session:
            yield Http(session, sandbox)


def owned_spec_fields(obj: dict[str, Any]) -> dict[str, set[str]]:
    return {
        entry["manager"]: set(entry["fieldsV1"].get("f:spec", {})) - {"."}
        for entry in obj["metadata"].get("managedFields", [])
    }


def assert_status_body(reply: Reply, code: int, reason: str) -> None:
    assert reply.status == code
    body = reply.body
    assert isinstance(body, dict), body
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert (body["code"], body["reason"]) == (code, reason)
    assert isinstance(body["message"], str)
    assert body["message"]
    assert body["metadata"] == {}


# --- status and spec live apart --------------------------------------------------------------


async def test_writes_to_the_main_resource_ignore_status(http: Http) -> None:
    created = await http.call("POST", CVS, {**cluster_version(channel="a"), "status": STATUS})
    assert created.status == 201
    assert "status" not in created.body
    assert "status" not in (await http.get()).body

    with_status = await http.call("PUT", f"{CV}/status", {**created.body, "status": STATUS})
    assert with_status.status == 200
    rv = with_status.resource_version

    other = {**STATUS, "versionHash": "changed-through-the-main-resource"}
    patched = await http.merge({"status": other})
    assert patched.status == 200
    assert patched.body["status"]["versionHash"] == "abc"
    assert patched.resource_version == rv  # nothing but status changed, so nothing was stored

    replaced = await http.call(
        "PUT",
        CV,
        {**with_status.body, "spec": {"clusterID": CLUSTER_ID, "channel": "b"}} | {"status": other},
    )
    assert replaced.status == 200
    assert replaced.body["spec"]["channel"] == "b"
    assert replaced.body["status"]["versionHash"] == "abc"

    applied = await http.apply({**cluster_version(channel="b"), "status": other}, "cvsync")
    assert applied.status == 200
    assert applied.body["status"]["versionHash"] == "abc"
    [applier] = [e for e in applied.body["metadata"]["managedFields"] if e["manager"] == "cvsync"]
    assert "f:status" not in applier["fieldsV1"]


async def test_writes_to_the_status_subresource_ignore_everything_but_status(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    body = created.body
    body["spec"]["channel"] = "changed-through-status"
    body["metadata"]["labels"] = {"changed": "through-status"}
    body["status"] = STATUS
    replaced = await http.call("PUT", f"{CV}/status", body)
    assert replaced.status == 200
    assert replaced.body["status"] == STATUS
    assert replaced.body["spec"]["channel"] == "stable-4.15"
    assert "labels" not in replaced.body["metadata"]

    patched = await http.merge(
        {"spec": {"channel": "patched-through-status"}, "status": {"versionHash": "def"}},
        f"{CV}/status",
    )
    assert patched.status == 200
    assert patched.body["status"]["versionHash"] == "def"
    live = (await http.get()).body
    assert live["spec"]["channel"] == "stable-4.15"
    assert live["status"]["versionHash"] == "def"


async def test_the_generation_increments_only_when_the_spec_changes(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    assert created.generation == 1

    labelled = await http.merge({"metadata": {"labels": {"team": "updates"}}})
    assert labelled.status == 200
    assert labelled.resource_version > created.resource_version
    assert labelled.generation == 1

    with_status = await http.call("PUT", f"{CV}/status", {**labelled.body, "status": STATUS})
    assert with_status.status == 200
    assert with_status.resource_version > labelled.resource_version
    assert with_status.generation == 1

    changed = await http.applied("cvsync", channel="fast-4.15")
    assert changed.generation == 2
    same_again = await http.applied("cvsync", channel="fast-4.15")
    assert same_again.generation == 2
    patched = await http.merge({"spec": {"upstream": "https://updates.example.com/graph"}})
    assert patched.generation == 3


# --- resourceVersion -------------------------------------------------------------------------


async def test_the_resource_version_changes_on_every_write_and_never_goes_backwards(
    http: Http,
) -> None:
    seen = [int((await http.get(CVS)).body["metadata"]["resourceVersion"])]
    replies = [
        await http.applied("cvsync", channel="a"),
        await http.merge({"spec": {"channel": "b"}}),
        await http.call("POST", EVENTS, event("e1")),
        await http.call("PATCH", f"{EVENTS}/e1", {"count": 2}, content_type=STRATEGIC),
        await http.call(
            "POST",
            LEASES,
            {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": "cvsync"},
                "spec": {"holderIdentity": "a"},
            },
        ),
        await http.merge({"status": {**STATUS, "availableUpdates": []}}, f"{CV}/status"),
        await http.apply(cluster_version(channel="c"), "cvsync", force="true"),
    ]
    for reply in replies:
        assert reply.status in (200, 201), reply.body["message"]
        seen.append(reply.resource_version)
    deleted = await http.call("DELETE", f"{EVENTS}/e1")
    assert deleted.status == 200
    seen.append(int((await http.get(CVS)).body["metadata"]["resourceVersion"]))
    assert seen == sorted(set(seen)), "every write takes a new, larger resourceVersion"
    assert seen[-1] > seen[-2], "a delete is a write too"


async def test_a_no_op_apply_or_put_stores_nothing(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    again = await http.applied("cvsync", channel="stable-4.15")
    assert again.status == 200
    assert again.resource_version == created.resource_version
    assert again.body["metadata"]["managedFields"] == created.body["metadata"]["managedFields"]

    replaced = await http.call("PUT", CV, created.body)
    assert replaced.status == 200
    assert replaced.resource_version == created.resource_version
    replaced_status = await http.call("PUT", f"{CV}/status", created.body)
    assert replaced_status.resource_version == created.resource_version
    patched = await http.merge({"spec": {"channel": "stable-4.15"}})
    assert patched.resource_version == created.resource_version
    listed = await http.get(CVS)
    assert int(listed.body["metadata"]["resourceVersion"]) == created.resource_version


async def test_a_put_with_a_stale_resource_version_is_a_conflict(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    changed = await http.merge({"spec": {"channel": "fast-4.15"}})
    assert changed.resource_version > created.resource_version

    stale = created.body
    stale["spec"]["channel"] = "candidate-4.15"
    reply = await http.call("PUT", CV, stale)
    assert_status_body(reply, 409, "Conflict")
    assert reply.body["message"] == (
        'Operation cannot be fulfilled on clusterversions.config.openshift.io "version": the '
        "object has been modified; please apply your changes to the latest version and try again"
    )
    assert reply.body["details"] == {
        "name": "version",
        "group": "config.openshift.io",
        "kind": "clusterversions",
    }
    assert (await http.get()).body["spec"]["channel"] == "fast-4.15"


async def test_a_put_without_a_resource_version_is_invalid(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    body = created.body
    del body["metadata"]["resourceVersion"]
    reply = await http.call("PUT", CV, body)
    assert_status_body(reply, 422, "Invalid")
    assert "metadata.resourceVersion" in reply.body["message"]


async def test_a_watch_replays_each_later_change_with_its_own_resource_version(
    http: Http,
) -> None:
    start = int((await http.get(EVENTS)).body["metadata"]["resourceVersion"])
    created = await http.call("POST", EVENTS, event("e1"))
    patched = await http.merge({"message": "again"}, f"{EVENTS}/e1")
    deleted = await http.call("DELETE", f"{EVENTS}/e1")
    assert (created.status, patched.status, deleted.status) == (201, 200, 200)

    params = {"watch": "1", "resourceVersion": str(start), "timeoutSeconds": "5"}
    replayed: list[tuple[str, int, str]] = []
    async with http.session.get(EVENTS, params=params) as stream:
        while len(replayed) < 3:
            line = await stream.content.readline()
            assert line, "the watch ended early"
            change = json.loads(line)
            obj = change["object"]
            replayed.append(
                (change["type"], int(obj["metadata"]["resourceVersion"]), obj["message"])
            )
    assert replayed == [
        ("ADDED", created.resource_version, "synced"),
        ("MODIFIED", patched.resource_version, "again"),
        ("DELETED", deleted.resource_version, "again"),
    ]
    assert start < created.resource_version < patched.resource_version
    assert patched.resource_version < deleted.resource_version


async def test_a_list_from_an_old_resource_version_is_served_not_older_than_it(
    http: Http,
) -> None:
    first = await http.applied("cvsync", channel="a")
    await http.merge({"spec": {"channel": "b"}})
    http.sandbox.store.compact()
    reply = await http.get(CVS, resourceVersion=str(first.resource_version))
    assert reply.status == 200
    assert reply.body["items"][0]["spec"]["channel"] == "b"


async def test_an_exact_list_from_a_compacted_resource_version_is_gone(http: Http) -> None:
    first = await http.applied("cvsync", channel="a")
    await http.merge({"spec": {"channel": "b"}})
    http.sandbox.store.compact()
    reply = await http.get(
        CVS, resourceVersion=str(first.resource_version), resourceVersionMatch="Exact"
    )
    assert (reply.status, reply.body["kind"], reply.body["reason"], reply.body["code"]) == (
        410,
        "Status",
        "Expired",
        410,
    )


async def read_watch(http: Http, path: str, **params: str) -> list[dict[str, Any]]:
    async with http.session.get(path, params={"watch": "1", **params}) as stream:
        assert stream.status == 200
        return [json.loads(line) for line in (await stream.read()).splitlines()]


async def test_a_watch_from_before_the_server_started_streams_one_expired_error(
    http: Http,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step watch-too-old: the watch cache
    # begins at the list it made when the server started, so resourceVersion 1 is too old
    # even though nothing was compacted (k8s.io/apiserver pkg/storage/cacher watch_cache.go).
    started = http.sandbox.store.resource_version
    await http.applied("cvsync", channel="stable-4.15")
    events = await read_watch(
        http, CVS, resourceVersion="1", fieldSelector="metadata.name=version", timeoutSeconds="5"
    )
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: 1 ({started})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_after_a_restart_a_watch_resumes_only_from_the_restart_on(http: Http) -> None:
    # A restarted API server fills a new watch cache: older resourceVersions are Expired.
    before = (await http.applied("cvsync", channel="a")).resource_version
    await http.merge({"spec": {"channel": "b"}})
    await http.sandbox.restart()
    after = http.sandbox.store.resource_version
    [gone] = await read_watch(http, CVS, resourceVersion=str(before), timeoutSeconds="1")
    assert (gone["type"], gone["object"]["code"]) == ("ERROR", 410)
    await http.merge({"spec": {"channel": "c"}})
    [changed] = await read_watch(http, CVS, resourceVersion=str(after), timeoutSeconds="1")
    assert (changed["type"], changed["object"]["spec"]["channel"]) == ("MODIFIED", "c")


async def test_a_custom_resource_list_carries_an_empty_continue_and_a_built_in_one_not(
    http: Http,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver steps list-by-name and agent-list-all:
    # an unstructured list writes its empty continue token; ListMeta's JSON omits it.
    await http.applied("cvsync", channel="stable-4.15")
    custom = (await http.get(CVS)).body["metadata"]
    assert set(custom) == {"continue", "resourceVersion"}
    assert custom["continue"] == ""
    assert set((await http.get(EVENTS)).body["metadata"]) == {"resourceVersion"}


# --- patch types -----------------------------------------------------------------------------


async def test_a_json_patch_applies_its_operations_in_order_and_a_failing_test_refuses_all(
    http: Http,
) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    operations = [
        {"op": "test", "path": "/spec/channel", "value": "stable-4.15"},
        {"op": "replace", "path": "/spec/channel", "value": "fast-4.15"},
        {"op": "add", "path": "/spec/upstream", "value": "https://updates.example.com/graph"},
        {"op": "add", "path": "/metadata/labels", "value": {"a~b/c": "1"}},
        {"op": "remove", "path": "/metadata/labels/a~0b~1c"},
    ]
    patched = await http.call("PATCH", CV, operations, content_type=JSON_PATCH)
    assert patched.status == 200, patched.body
    assert patched.body["spec"] == {
        "clusterID": CLUSTER_ID,
        "channel": "fast-4.15",
        "upstream": "https://updates.example.com/graph",
    }
    assert not patched.body["metadata"].get("labels")

    failing = [
        {"op": "replace", "path": "/spec/channel", "value": "candidate-4.15"},
        {"op": "test", "path": "/spec/channel", "value": "stable-4.15"},
    ]
    refused = await http.call("PATCH", CV, failing, content_type=JSON_PATCH)
    assert_status_body(refused, 422, "Invalid")
    live = await http.get()
    assert live.body["spec"]["channel"] == "fast-4.15"
    assert live.resource_version == patched.resource_version > created.resource_version


async def test_a_merge_patch_merges_maps_deletes_nulls_and_replaces_lists(http: Http) -> None:
    await http.applied(
        "cvsync",
        channel="stable-4.15",
        upstream="https://updates.example.com/graph",
        capabilities={
            "baselineCapabilitySet": "None",
            "additionalEnabledCapabilities": ["Console"],
        },
    )
    patched = await http.merge(
        {
            "metadata": {"labels": {"team": "updates"}},
            "spec": {
                "upstream": None,
                "channel": "fast-4.15",
                "capabilities": {"additionalEnabledCapabilities": ["Insights", "Console"]},
            },
        }
    )
    assert patched.status == 200, patched.body
    assert patched.body["spec"] == {
        "clusterID": CLUSTER_ID,
        "channel": "fast-4.15",
        "capabilities": {
            "baselineCapabilitySet": "None",
            "additionalEnabledCapabilities": ["Insights", "Console"],
        },
    }
    assert patched.body["metadata"]["labels"] == {"team": "updates"}


async def test_a_strategic_merge_patch_is_unsupported_on_a_cluster_version(http: Http) -> None:
    created = await http.applied("cvsync", channel="stable-4.15")
    reply = await http.call("PATCH", CV, {"spec": {"channel": "fast-4.15"}}, content_type=STRATEGIC)
    assert_status_body(reply, 415, "UnsupportedMediaType")
    assert reply.body["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    assert (await http.get()).resource_version == created.resource_version


async def test_a_strategic_merge_patch_is_accepted_on_an_event(http: Http) -> None:
    created = await http.call("POST", EVENTS, event("e1"))
    assert created.status == 201
    reply = await http.call(
        "PATCH", f"{EVENTS}/e1", {"count": 2, "message": "synced again"}, content_type=STRATEGIC
    )
    assert reply.status == 200, reply.body
    assert (reply.body["count"], reply.body["message"]) == (2, "synced again")
    assert reply.body["reason"] == "Synced"
    assert reply.resource_version > int(created.body["metadata"]["resourceVersion"])


# --- server-side apply -----------------------------------------------------------------------


async def test_an_apply_without_a_field_manager_is_invalid(http: Http) -> None:
    reply = await http.call("PATCH", CV, cluster_version(channel="a"), content_type=APPLY)
    assert_status_body(reply, 422, "Invalid")
    assert "fieldManager: Required value" in reply.body["message"]
    assert (await http.get()).status == 404


async def test_an_apply_creates_the_object_when_it_is_absent(http: Http) -> None:
    assert (await http.get()).status == 404
    reply = await http.apply(cluster_version(channel="stable-4.15"), "cvsync")
    assert reply.status == 201
    assert reply.body["spec"] == {"clusterID": CLUSTER_ID, "channel": "stable-4.15"}
    assert reply.generation == 1
    [entry] = reply.body["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("cvsync", "Apply")
    again = await http.get()
    assert again.body["metadata"]["uid"] == reply.body["metadata"]["uid"]


async def test_fields_a_manager_stops_applying_are_removed_unless_another_owns_them(
    http: Http,
) -> None:
    await http.applied(
        "cvsync",
        channel="stable-4.15",
        upstream="https://updates.example.com/graph",
        desiredUpdate={"version": "4.15.3"},
    )
    await http.applied("other", upstream="https://updates.example.com/graph")

    dropped = await http.applied("cvsync", channel="stable-4.15")
    assert dropped.body["spec"] == {
        "clusterID": CLUSTER_ID,
        "channel": "stable-4.15",
        "upstream": "https://updates.example.com/graph",  # still owned by "other"
    }
    assert owned_spec_fields(dropped.body) == {
        "cvsync": {"f:clusterID", "f:channel"},
        "other": {"f:clusterID", "f:upstream"},
    }


async def test_two_managers_applying_the_same_value_share_ownership(http: Http) -> None:
    await http.applied("cvsync", channel="stable-4.15")
    shared = await http.apply(cluster_version(channel="stable-4.15"), "other")
    assert shared.status == 200
    assert owned_spec_fields(shared.body) == {
        "cvsync": {"f:clusterID", "f:channel"},
        "other": {"f:clusterID", "f:channel"},
    }
    conflict = await http.apply(cluster_version(channel="fast-4.15"), "other")
    assert_status_body(conflict, 409, "Conflict")
    assert conflict.body["message"] == (
        'Apply failed with 1 conflict: conflict with "cvsync": .spec.channel'
    )


async def test_spec_overrides_merge_as_a_map_list_keyed_by_kind_group_namespace_and_name(
    http: Http,
) -> None:
    await http.applied("cvsync", overrides=[{**DEPLOYMENT_X, "unmanaged": True}])
    both = await http.apply(
        {**cluster_version(), "spec": {"overrides": [{**DEPLOYMENT_Z, "unmanaged": False}]}},
        "other",
    )
    assert both.status == 200, both.body
    assert both.body["spec"]["overrides"] == [
        {**DEPLOYMENT_X, "unmanaged": True},
        {**DEPLOYMENT_Z, "unmanaged": False},
    ]

    def override_keys(obj: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        return {
            entry["manager"]: [
                json.loads(key.removeprefix("k:"))
                for key in entry["fieldsV1"].get("f:spec", {}).get("f:overrides", {})
                if key.startswith("k:")
            ]
            for entry in obj["metadata"]["managedFields"]
        }

    assert override_keys(both.body) == {"cvsync": [DEPLOYMENT_X], "other": [DEPLOYMENT_Z]}

    flipped = await http.apply(
        {**cluster_version(), "spec": {"overrides": [{**DEPLOYMENT_Z, "unmanaged": True}]}},
        "other",
    )
    assert flipped.status == 200, flipped.body
    assert [o["unmanaged"] for o in flipped.body["spec"]["overrides"]] == [True, True]

    without = await http.applied("cvsync")
    assert without.body["spec"]["overrides"] == [{**DEPLOYMENT_Z, "unmanaged": True}]


# --- reads -----------------------------------------------------------------------------------


async def test_a_field_selector_on_metadata_name_filters_a_list(http: Http) -> None:
    await http.call("POST", EVENTS, event("first"))
    await http.call("POST", EVENTS, event("second"))
    everything = await http.get(EVENTS)
    assert [i["metadata"]["name"] for i in everything.body["items"]] == ["first", "second"]
    assert everything.body["kind"] == "EventList"

    one = await http.get(EVENTS, fieldSelector="metadata.name=second")
    assert [i["metadata"]["name"] for i in one.body["items"]] == ["second"]
    none = await http.get(CVS, fieldSelector="metadata.name=version")
    assert none.body["items"] == []
    assert (
        none.body["metadata"]["resourceVersion"] == everything.body["metadata"]["resourceVersion"]
    )
    unsupported = await http.get(CVS, fieldSelector="spec.channel=stable-4.15")
    assert_status_body(unsupported, 400, "BadRequest")


@dataclass(frozen=True)
class ErrorCase:
    method: str
    path: str
    code: int
    reason: str
    body: Any = None
    content_type: str = JSON
    params: tuple[tuple[str, str], ...] = ()


STALE = {**cluster_version(), "metadata": {"name": "version", "resourceVersion": "1"}}
ERRORS = {
    "not-found": ErrorCase("GET", f"{CVS}/missing", 404, "NotFound"),
    "exists": ErrorCase("POST", CVS, 409, "AlreadyExists", cluster_version()),
    "kind": ErrorCase("POST", CVS, 400, "BadRequest", {"apiVersion": "v1", "kind": "Pod"}),
    "selector": ErrorCase("GET", CVS, 400, "BadRequest", params=(("fieldSelector", "spec.x=y"),)),
    "media-type": ErrorCase("PATCH", CV, 415, "UnsupportedMediaType", {}, STRATEGIC),
    "no-manager": ErrorCase("PATCH", CV, 422, "Invalid", cluster_version(), APPLY),
    "stale": ErrorCase("PUT", CV, 409, "Conflict", STALE),
    "schema": ErrorCase(
        "PATCH", CV, 422, "Invalid", {"spec": {"desiredUpdate": {"architecture": "Multi"}}}, MERGE
    ),
    "verb": ErrorCase("POST", f"{EVENTS}/e1", 405, "MethodNotAllowed", event("e1")),
    "immortal": ErrorCase("DELETE", "/api/v1/namespaces/default", 403, "Forbidden"),
    "path": ErrorCase("GET", "/api/v1/namespaces/default/widgets", 404, "NotFound"),
    "too-new": ErrorCase("GET", CVS, 504, "Timeout", params=(("resourceVersion", "999999"),)),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
async def test_every_error_body_is_a_status_with_code_reason_and_message(
    http: Http, case: ErrorCase
) -> None:
    await http.applied("cvsync", channel="stable-4.15")
    reply = await http.call(
        case.method, case.path, case.body, content_type=case.content_type, **dict(case.params)
    )
    assert_status_body(reply, case.code, case.reason)


async def test_a_bad_token_and_a_user_without_rules_get_status_bodies_too(http: Http) -> None:
    unauthorized = await http.call("GET", CV, token="not-a-token")
    assert_status_body(unauthorized, 401, "Unauthorized")
    http.sandbox.kubeconfig(user="nobody")
    token = next(t for t, who in http.sandbox.access.tokens.items() if who.user == "nobody")
    forbidden = await http.call("GET", CV, token=token)
    assert_status_body(forbidden, 403, "Forbidden")
    assert 'User "nobody" cannot get resource "clusterversions"' in forbidden.body["message"]


async def test_an_unknown_path_under_a_built_in_group_is_the_routers_not_found_status(
    http: Http,
) -> None:
    # kube-apiserver's go-restful router answers a path it has no route for with a generic
    # 404 Status (k8s.io/apiserver pkg/server/handler.go serviceErrorHandler).
    for path in ("/api/v1/namespaces/default/widgets", "/apis/coordination.k8s.io/v1/widgets"):
        reply = await http.get(path)
        assert_status_body(reply, 404, "NotFound")
        assert reply.body["message"] == "the server could not find the requested resource"
        assert reply.body["details"] == {
            "causes": [{"reason": "UnexpectedServerResponse", "message": "404: Page Not Found"}]
        }


async def test_a_path_no_handler_claims_is_a_plain_text_not_found(http: Http) -> None:
    # Outside the built-in groups the request falls through the extensions server to the
    # last handler of the chain, which writes Go's http.NotFound (k8s.io/apiserver
    # pkg/util/notfoundhandler), e.g. an unknown resource in a CRD's group.
    for path in (
        "/nothing/here",
        "/apis/example.com/v1/widgets",
        "/apis/config.openshift.io/v1/widgets",
    ):
        reply = await http.get(path)
        assert (reply.status, reply.body) == (404, "404 page not found\n")
        assert reply.headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_an_unknown_subresource_of_a_custom_resource_is_the_objects_not_found(
    http: Http,
) -> None:
    # apiextensions-apiserver customresource_handler.go: a subresource the CRD does not
    # define answers NotFound for the object named.
    await http.applied("cvsync", channel="stable-4.15")
    reply = await http.get(f"{CV}/scale")
    assert_status_body(reply, 404, "NotFound")
    assert reply.body["message"] == 'clusterversions.config.openshift.io "version" not found'
    assert reply.body["details"] == {
        "name": "version",
        "group": "config.openshift.io",
        "kind": "clusterversions",
    }


async def test_discovery_documents_describe_the_served_resources(http: Http) -> None:
    version = await http.call("GET", "/version", token="")
    assert version.status == 200
    assert {"major", "minor", "gitVersion", "platform"} <= set(version.body)

    core = (await http.get("/api")).body
    assert (core["kind"], core["versions"]) == ("APIVersions", ["v1"])

    groups = (await http.get("/apis")).body
    assert groups["kind"] == "APIGroupList"
    names = {group["name"]: group["preferredVersion"]["groupVersion"] for group in groups["groups"]}
    assert names["config.openshift.io"] == "config.openshift.io/v1"
    assert names["coordination.k8s.io"] == "coordination.k8s.io/v1"

    group = (await http.get("/apis/config.openshift.io")).body
    assert (group["kind"], group["name"]) == ("APIGroup", "config.openshift.io")

    resources = (await http.get("/apis/config.openshift.io/v1")).body
    assert (resources["kind"], resources["groupVersion"]) == (
        "APIResourceList",
        "config.openshift.io/v1",
    )
    by_name = {entry["name"]: entry for entry in resources["resources"]}
    assert set(by_name) == {"clusterversions", "clusterversions/status"}
    main = by_name["clusterversions"]
    assert (main["kind"], main["namespaced"], main["singularName"]) == (
        "ClusterVersion",
        False,
        "clusterversion",
    )
    assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(main["verbs"])
    assert sorted(by_name["clusterversions/status"]["verbs"]) == ["get", "patch", "update"]

    core_v1 = (await http.get("/api/v1")).body
    core_names = {entry["name"]: entry for entry in core_v1["resources"]}
    assert {"events", "namespaces"} <= set(core_names)
    assert core_names["events"]["namespaced"] is True
    assert sorted(core_names["namespaces"]["verbs"]) == [
        "create", "delete", "get", "list", "patch", "update", "watch"
    ]  # fmt: skip


async def test_healthz_answers_ok_without_credentials(http: Http) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        reply = await http.call("GET", path, token="")
        assert (reply.status, reply.body) == (200, "ok")
