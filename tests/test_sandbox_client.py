"""kubernetes-asyncio against the sandbox over HTTPS: the client the agent uses must see the
sandbox exactly as it sees a real API server (lists, watches, 410 Gone, apply, Events, Leases)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException

from agent.sandbox.server import Sandbox, SandboxOptions

GROUP, VERSION, PLURAL, NAME = "config.openshift.io", "v1", "clusterversions", "version"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
CLUSTER_ID = "5e65da93-4167-4f1e-9571-f99963cda23e"
NAMESPACE = "cvsync"
WATCH_SECONDS = 5
# The generated signatures leave out the request options every call accepts.
AS_APPLY: dict[str, Any] = {"_content_type": APPLY}
AS_MERGE: dict[str, Any] = {"_content_type": MERGE}


def cluster_version(channel: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ClusterVersion",
        "metadata": {"name": NAME},
        "spec": {"clusterID": CLUSTER_ID, "channel": channel},
    }


@dataclass
class Connected:
    sandbox: Sandbox
    api: client.ApiClient

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    async def apply(self, channel: str, manager: str = "cvsync", **options: Any) -> int:
        """Apply the spec; the HTTP status (the client decodes a 201 body to None)."""
        _, status, _ = await self.custom.patch_cluster_custom_object_with_http_info(
            GROUP,
            VERSION,
            PLURAL,
            NAME,
            cluster_version(channel),
            field_manager=manager,
            **AS_APPLY,
            **options,
        )
        return int(status)

    async def merge(self, patch: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.patch_cluster_custom_object(
            GROUP, VERSION, PLURAL, NAME, patch, **AS_MERGE
        )
        return result

    async def get(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.get_cluster_custom_object(
            GROUP, VERSION, PLURAL, NAME
        )
        return result

    async def list(self, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.custom.list_cluster_custom_object(
            GROUP, VERSION, PLURAL, **options
        )
        return result

    def watch(self, stream: watch.Watch, resource_version: str, **options: Any) -> watch.Watch:
        return stream.stream(
            self.custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            field_selector=f"metadata.name={NAME}",
            resource_version=resource_version,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=WATCH_SECONDS + 5,
            **options,
        )


async def connect(options: SandboxOptions) -> AsyncIterator[Connected]:
    async with Sandbox(options) as sandbox:
        assert sandbox.url.startswith("https://")
        configuration = client.Configuration()
        await config.load_kube_config(
            config_file=str(sandbox.kubeconfig()), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api:
            yield Connected(sandbox, api)


@pytest.fixture
async def kube() -> AsyncIterator[Connected]:
    async for connected in connect(SandboxOptions(bookmark_interval=0.2)):
        yield connected


@pytest.fixture
async def small_window() -> AsyncIterator[Connected]:
    async for connected in connect(SandboxOptions(watch_window=2)):
        yield connected


def conflict_body(error: ApiException) -> dict[str, Any]:
    assert error.body is not None
    body: dict[str, Any] = json.loads(error.body)
    return body


# --- lists and watches -----------------------------------------------------------------------


async def test_a_list_carries_a_resource_version_to_list_and_watch_from(kube: Connected) -> None:
    empty = await kube.list()
    assert (empty["kind"], empty["items"]) == ("ClusterVersionList", [])
    assert await kube.apply("stable-4.15") == 201

    listed = await kube.list()
    rv = listed["metadata"]["resourceVersion"]
    assert int(rv) > int(empty["metadata"]["resourceVersion"])
    [item] = listed["items"]
    assert item["metadata"]["resourceVersion"] == rv
    assert item["spec"]["channel"] == "stable-4.15"

    again = await kube.list(resource_version=rv)
    assert again["items"] == listed["items"]
    by_name = await kube.list(field_selector=f"metadata.name={NAME}")
    assert by_name["items"] == listed["items"]


async def test_a_watch_with_bookmarks_sees_added_modified_and_bookmark_events(
    kube: Connected,
) -> None:
    start = (await kube.list())["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    async with watch.Watch() as stream:
        async for event in kube.watch(stream, start, allow_watch_bookmarks=True):
            kind, raw = event["type"], event["raw_object"]
            seen.append((kind, raw["metadata"]["resourceVersion"]))
            if kind == "BOOKMARK" and len(seen) == 1:
                await kube.apply("stable-4.15")
            elif kind == "ADDED":
                assert raw["spec"]["channel"] == "stable-4.15"
                await kube.merge({"spec": {"channel": "fast-4.15"}})
            elif kind == "MODIFIED":
                assert raw["spec"]["channel"] == "fast-4.15"
            elif kind == "BOOKMARK" and "MODIFIED" in dict(seen):
                assert stream.resource_version == raw["metadata"]["resourceVersion"]
                break
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "BOOKMARK"
    assert [k for k in kinds if k != "BOOKMARK"] == ["ADDED", "MODIFIED"]
    assert kinds[-1] == "BOOKMARK"
    versions = [int(rv) for _, rv in seen]
    assert versions == sorted(versions)
    assert versions[0] == int(start)
    assert versions[-1] == int((await kube.get())["metadata"]["resourceVersion"])


async def test_a_watch_from_before_the_retained_window_is_gone_until_the_client_relists(
    small_window: Connected,
) -> None:
    kube = small_window
    await kube.apply("stable-4.15")
    old = (await kube.list())["metadata"]["resourceVersion"]
    for channel in ("a", "b", "c"):
        await kube.merge({"spec": {"channel": channel}})

    async with watch.Watch() as stream:
        with pytest.raises(ApiException) as gone:
            await anext(kube.watch(stream, old))
    assert gone.value.status == 410
    assert "too old resource version" in str(gone.value.reason)

    relisted = await kube.list()
    assert relisted["items"][0]["spec"]["channel"] == "c"
    resume = relisted["metadata"]["resourceVersion"]
    await kube.merge({"spec": {"channel": "d"}})  # between the relist and the watch
    async with watch.Watch() as stream:
        async for event in kube.watch(stream, resume):
            assert event["type"] == "MODIFIED"
            assert event["raw_object"]["spec"]["channel"] == "d"
            assert int(event["raw_object"]["metadata"]["resourceVersion"]) == int(resume) + 1
            break
        else:
            pytest.fail("the resumed watch ended without the change")


async def test_a_compacted_history_answers_410_and_the_relisted_version_resumes(
    kube: Connected,
) -> None:
    await kube.apply("stable-4.15")
    before = (await kube.list())["metadata"]["resourceVersion"]
    await kube.merge({"spec": {"channel": "fast-4.15"}})
    kube.sandbox.store.compact()

    async with watch.Watch() as stream:
        with pytest.raises(ApiException) as gone:
            await anext(kube.watch(stream, before))
    assert gone.value.status == 410

    current = (await kube.list())["metadata"]["resourceVersion"]
    events: list[str] = []
    async with watch.Watch() as stream:
        async for event in kube.watch(stream, current, allow_watch_bookmarks=True):
            events.append(event["type"])
            if event["type"] == "BOOKMARK" and "MODIFIED" not in events:
                await kube.merge({"spec": {"channel": "candidate-4.15"}})
            elif event["type"] == "MODIFIED":
                assert event["raw_object"]["spec"]["channel"] == "candidate-4.15"
                break
    assert events[-1] == "MODIFIED"


async def test_an_injected_gone_arrives_in_the_stream_and_the_next_watch_works(
    kube: Connected,
) -> None:
    await kube.apply("stable-4.15")
    current = (await kube.list())["metadata"]["resourceVersion"]
    kube.sandbox.faults.gone_on_next_watch()

    async with watch.Watch() as stream:
        with pytest.raises(ApiException) as gone:
            await anext(kube.watch(stream, current))
    assert gone.value.status == 410
    assert str(gone.value.reason).startswith("Expired: too old resource version")

    async with watch.Watch() as stream:
        async for event in kube.watch(stream, current, allow_watch_bookmarks=True):
            assert event["type"] == "BOOKMARK"
            assert event["raw_object"]["metadata"]["resourceVersion"] == current
            break


# --- server-side apply -----------------------------------------------------------------------


async def test_server_side_apply_creates_then_conflicts_then_force_takes_ownership(
    kube: Connected,
) -> None:
    assert await kube.apply("stable-4.15") == 201
    created = await kube.get()
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("cvsync", "Apply")
    assert set(entry["fieldsV1"]["f:spec"]) == {"f:clusterID", "f:channel"}
    assert await kube.apply("stable-4.15") == 200  # the same config again is no conflict

    with pytest.raises(ApiException) as refused:
        await kube.apply("fast-4.15", manager="oc")
    assert refused.value.status == 409
    body = conflict_body(refused.value)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Conflict", 409)
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "cvsync": .spec.channel'
    assert body["details"]["causes"] == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "cvsync"',
            "field": ".spec.channel",
        }
    ]
    assert (await kube.get())["spec"]["channel"] == "stable-4.15"

    assert await kube.apply("fast-4.15", manager="oc", force=True) == 200
    taken = await kube.get()
    assert taken["spec"]["channel"] == "fast-4.15"
    owners = {
        e["manager"]: set(e["fieldsV1"]["f:spec"]) - {"."}
        for e in taken["metadata"]["managedFields"]
    }
    assert owners == {"cvsync": {"f:clusterID"}, "oc": {"f:clusterID", "f:channel"}}
    assert taken["metadata"]["generation"] == 2


async def test_a_dry_run_apply_answers_with_the_result_and_stores_nothing(
    kube: Connected,
) -> None:
    assert await kube.apply("stable-4.15", dry_run="All") == 201
    with pytest.raises(ApiException) as missing:
        await kube.get()
    assert missing.value.status == 404

    await kube.apply("stable-4.15")
    live = await kube.get()
    planned: dict[str, Any] = await kube.custom.patch_cluster_custom_object(
        GROUP,
        VERSION,
        PLURAL,
        NAME,
        cluster_version("fast-4.15"),
        field_manager="cvsync",
        dry_run="All",
        **AS_APPLY,
    )
    assert planned["spec"]["channel"] == "fast-4.15"
    assert planned["metadata"]["generation"] == 2
    assert await kube.get() == live
    assert kube.sandbox.store.resource_version == int(live["metadata"]["resourceVersion"])


# --- Events and Leases -----------------------------------------------------------------------


async def test_events_are_created_patched_and_listed_in_a_namespace(kube: Connected) -> None:
    core = client.CoreV1Api(kube.api)
    # Outside `default` an Event names the namespace it is about, or a real server refuses it
    # (recorded from kube-apiserver v1.36.2, realserver step event-cluster-scoped-no-ns).
    reference = client.V1ObjectReference(
        api_version=f"{GROUP}/{VERSION}", kind="ClusterVersion", name=NAME, namespace=NAMESPACE
    )
    for name in ("cvsync.1", "cvsync.2"):
        created = await core.create_namespaced_event(
            NAMESPACE,
            client.CoreV1Event(
                metadata=client.V1ObjectMeta(name=name),
                involved_object=reference,
                reason="Applied",
                message=f"applied {name}",
                type="Normal",
                count=1,
            ),
        )
        assert isinstance(created, client.CoreV1Event)
        assert created.metadata.namespace == NAMESPACE
        assert created.metadata.uid

    patched = await core.patch_namespaced_event("cvsync.1", NAMESPACE, {"count": 2})
    assert (patched.count, patched.message) == (2, "applied cvsync.1")

    listed = await core.list_namespaced_event(NAMESPACE)
    assert [(e.metadata.name, e.count) for e in listed.items] == [("cvsync.1", 2), ("cvsync.2", 1)]
    assert all(e.involved_object.name == NAME for e in listed.items)
    elsewhere = await core.list_namespaced_event("default")
    assert elsewhere.items == []
    one = await core.list_namespaced_event(NAMESPACE, field_selector="metadata.name=cvsync.2")
    assert [e.metadata.name for e in one.items] == ["cvsync.2"]


async def test_a_lease_update_with_a_stale_resource_version_is_a_conflict(
    kube: Connected,
) -> None:
    coordination = client.CoordinationV1Api(kube.api)
    created = await coordination.create_namespaced_lease(
        NAMESPACE,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="cvsync-leader"),
            spec=client.V1LeaseSpec(holder_identity="agent-a", lease_duration_seconds=15),
        ),
    )
    assert created.spec.holder_identity == "agent-a"

    read = await coordination.read_namespaced_lease("cvsync-leader", NAMESPACE)
    assert read.metadata.resource_version == created.metadata.resource_version
    read.spec.holder_identity = "agent-b"
    updated = await coordination.replace_namespaced_lease("cvsync-leader", NAMESPACE, read)
    assert updated.spec.holder_identity == "agent-b"
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)

    created.spec.holder_identity = "agent-c"  # still carries the first resourceVersion
    with pytest.raises(ApiException) as stale:
        await coordination.replace_namespaced_lease("cvsync-leader", NAMESPACE, created)
    assert stale.value.status == 409
    assert conflict_body(stale.value)["reason"] == "Conflict"
    final = await coordination.read_namespaced_lease("cvsync-leader", NAMESPACE)
    assert final.spec.holder_identity == "agent-b"
