"""Events, Namespaces and Leases as a real API server keeps them: what each kind's strategy
defaults, prepares and validates, and the namespace lifecycle around them."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.sandbox.apiserver import names
from agent.sandbox.server import Sandbox, SandboxOptions

CVSYNC_EVENTS = "/api/v1/namespaces/cvsync/events"
DEFAULT_EVENTS = "/api/v1/namespaces/default/events"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/cvsync/leases"
NAMESPACES = "/api/v1/namespaces"
CLUSTER_VERSION = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion"}
# names.SimpleNameGenerator's alphabet (k8s.io/apimachinery/pkg/util/rand).
GENERATED = re.compile(r"^version\.[bcdfghjklmnpqrstvwxz2456789]{5}$")


def event(namespace: str, involved_namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    """The Event of the recording's steps (realserver event-*)."""
    involved = {**CLUSTER_VERSION, "name": "version"}
    if involved_namespace is not None:
        involved["namespace"] = involved_namespace
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "version.", "namespace": namespace},
        "involvedObject": involved,
        "reason": "Applied",
        "message": "applied channel",
        "source": {"component": "cvsync"},
        "type": "Normal",
        "count": 1,
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        **extra,
    }


class Client:
    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox) -> None:
        self.session = session
        self.sandbox = sandbox

    async def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, path, data=data, headers={"Content-Type": content_type}
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with Sandbox(SandboxOptions(tls=False)) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
        async with aiohttp.ClientSession(sandbox.url, headers=headers) as session:
            yield Client(session, sandbox)


def causes(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(cause["field"], cause["message"]) for cause in body["details"]["causes"]]


# --- Events ----------------------------------------------------------------------------------


async def test_an_event_about_a_cluster_scoped_object_outside_default_is_invalid(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step event-cluster-scoped-no-ns: the
    # name is generated before validation, so the refusal names it.
    status, body = await client.call("POST", CVSYNC_EVENTS, event("cvsync"))
    assert status == 422
    name = body["details"]["name"]
    assert GENERATED.match(name)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'Event "{name}" is invalid: involvedObject.namespace: Invalid value: "": '
        "does not match event.namespace",
        "reason": "Invalid",
        "details": {
            "name": name,
            "kind": "Event",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: "": does not match event.namespace',
                    "field": "involvedObject.namespace",
                }
            ],
        },
        "code": 422,
    }


async def test_an_event_about_a_cluster_scoped_object_is_accepted_in_default(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step event-in-default-ns; the empty
    # reporting fields and the null eventTime are written because core/v1 Event's JSON tags
    # carry no omitempty for them (k8s.io/api core/v1 types.go).
    status, body = await client.call("POST", DEFAULT_EVENTS, event("default"))
    assert status == 201
    assert GENERATED.match(body["metadata"]["name"])
    assert body["metadata"]["generateName"] == "version."
    assert (body["reportingComponent"], body["reportingInstance"], body["eventTime"]) == (
        "",
        "",
        None,
    )
    assert body["involvedObject"] == {**CLUSTER_VERSION, "name": "version"}


async def test_an_event_naming_its_own_namespace_is_accepted_anywhere(client: Client) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step event-involved-ns-matches.
    status, body = await client.call("POST", CVSYNC_EVENTS, event("cvsync", "cvsync"))
    assert status == 201
    assert body["metadata"]["namespace"] == body["involvedObject"]["namespace"] == "cvsync"


async def test_an_event_about_an_object_in_another_namespace_is_invalid(client: Client) -> None:
    # pkg/apis/core/validation/events.go legacyValidateEvent: the namespaces must match.
    status, body = await client.call("POST", DEFAULT_EVENTS, event("default", "cvsync"))
    assert status == 422
    assert causes(body) == [
        ("involvedObject.namespace", 'Invalid value: "cvsync": does not match event.namespace')
    ]


async def test_an_event_with_an_event_time_needs_its_reporting_fields(client: Client) -> None:
    # pkg/apis/core/validation/events.go: an Event with eventTime is a new-style one, whose
    # reporting controller, instance, action and reason are required (named as the internal
    # type names them).
    body = event("cvsync", "cvsync", eventTime="2026-01-01T00:00:00.000000Z", reason="")
    status, refused = await client.call("POST", CVSYNC_EVENTS, body)
    assert status == 422
    assert causes(refused) == [
        ("reportingController", "Required value"),
        (
            "reportingController",
            'Invalid value: "": name part must be non-empty',
        ),
        (
            "reportingController",
            "Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or "
            "'my.name',  or '123-abc', regex used for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        ("reportingInstance", "Required value"),
        ("action", "Required value"),
        ("reason", "Required value"),
    ]
    body.update(reportingComponent="cvsync", reportingInstance="pod-0", action="Apply")
    body["reason"] = "Applied"
    status, created = await client.call("POST", CVSYNC_EVENTS, body)
    assert (status, created["reportingComponent"]) == (201, "cvsync")


async def test_an_event_count_bump_keeps_every_other_field(client: Client) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step event-count-bump.
    status, created = await client.call("POST", CVSYNC_EVENTS, event("cvsync", "cvsync"))
    assert status == 201
    path = f"{CVSYNC_EVENTS}/{created['metadata']['name']}"
    bump = {"count": 2, "lastTimestamp": "2026-01-01T00:01:00Z"}
    status, bumped = await client.call("PATCH", path, bump, "application/merge-patch+json")
    assert status == 200
    unchanged = ("involvedObject", "reason", "message", "source", "reportingComponent")
    assert all(bumped[field] == created[field] for field in unchanged)
    assert (bumped["count"], bumped["lastTimestamp"]) == (2, "2026-01-01T00:01:00Z")


async def test_an_update_that_breaks_the_namespace_rule_is_refused(client: Client) -> None:
    # The event strategy validates updates with the same legacy rules.
    status, created = await client.call("POST", CVSYNC_EVENTS, event("cvsync", "cvsync"))
    path = f"{CVSYNC_EVENTS}/{created['metadata']['name']}"
    patch = {"involvedObject": {"namespace": None}}
    status, body = await client.call("PATCH", path, patch, "application/merge-patch+json")
    assert status == 422
    assert causes(body) == [
        ("involvedObject.namespace", 'Invalid value: "": does not match event.namespace')
    ]


async def test_an_event_put_needs_no_resource_version_and_may_create(client: Client) -> None:
    # pkg/registry/core/event/strategy.go: AllowUnconditionalUpdate and AllowCreateOnUpdate.
    body = event("cvsync", "cvsync")
    body["metadata"] = {"name": "put-made", "namespace": "cvsync"}
    status, created = await client.call("PUT", f"{CVSYNC_EVENTS}/put-made", body)
    assert (status, created["metadata"]["name"]) == (201, "put-made")
    body["message"] = "applied again"
    status, replaced = await client.call("PUT", f"{CVSYNC_EVENTS}/put-made", body)
    assert (status, replaced["message"]) == (200, "applied again")


async def test_a_body_in_another_namespace_than_the_path_is_a_bad_request(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step event-ns-mismatch-path; the same
    # check (rest.EnsureObjectNamespaceMatchesRequestNamespace) guards every namespaced write.
    expected = (
        "the namespace of the provided object does not match the namespace sent on the request"
    )
    status, body = await client.call("POST", CVSYNC_EVENTS, event("default"))
    assert (status, body["reason"], body["message"]) == (400, "BadRequest", expected)
    lease = {"metadata": {"name": "l", "namespace": "default"}, "spec": {"holderIdentity": "a"}}
    status, body = await client.call("POST", LEASES, lease)
    assert (status, body["message"]) == (400, expected)
    lease["metadata"]["namespace"] = "cvsync"
    status, created = await client.call("POST", LEASES, lease)
    assert status == 201
    created["metadata"]["namespace"] = "default"
    status, body = await client.call("PUT", f"{LEASES}/l", created)
    assert (status, body["message"]) == (400, expected)


async def test_a_write_into_a_missing_namespace_is_not_found(client: Client) -> None:
    # plugin/pkg/admission/namespace/lifecycle: NewNotFound for the namespace.
    status, body = await client.call(
        "POST", "/api/v1/namespaces/nowhere/events", event("nowhere", "nowhere")
    )
    assert (status, body["message"], body["details"]) == (
        404,
        'namespaces "nowhere" not found',
        {"name": "nowhere", "kind": "namespaces"},
    )


# --- Namespaces ------------------------------------------------------------------------------


async def test_a_created_namespace_gets_its_name_label_finalizer_and_phase(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver steps namespace-create and
    # namespace-create-again: the creator owns only the defaulted label; the strategy sets
    # the finalizer and the phase.
    new = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cvsync-extra"}}
    status, created = await client.call("POST", NAMESPACES, new)
    assert status == 201
    assert created["metadata"]["labels"] == {"kubernetes.io/metadata.name": "cvsync-extra"}
    assert (created["spec"], created["status"]) == (
        {"finalizers": ["kubernetes"]},
        {"phase": "Active"},
    )
    [entry] = created["metadata"]["managedFields"]
    assert entry["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}
    }
    status, again = await client.call("POST", NAMESPACES, new)
    assert (status, again["reason"], again["message"], again["details"]) == (
        409,
        "AlreadyExists",
        'namespaces "cvsync-extra" already exists',
        {"name": "cvsync-extra", "kind": "namespaces"},
    )


async def test_a_namespace_name_must_be_an_rfc_1123_label(client: Client) -> None:
    # pkg/apis/core/validation ValidateNamespace: ValidateObjectMeta with NameIsDNSLabel.
    status, body = await client.call("POST", NAMESPACES, {"metadata": {"name": "Not_A_Label"}})
    assert status == 422
    assert body["message"] == (
        'Namespace "Not_A_Label" is invalid: metadata.name: Invalid value: "Not_A_Label": a '
        "lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
        "and must start and end with an alphanumeric character (e.g. 'my-name',  or "
        "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )
    status, body = await client.call("POST", NAMESPACES, {"metadata": {"name": "a.b"}})
    assert causes(body) == [("metadata.name", 'Invalid value: "a.b": must not contain dots')]


async def test_an_update_keeps_a_namespaces_finalizers_status_and_name_label(
    client: Client,
) -> None:
    # pkg/registry/core/namespace/strategy.go PrepareForUpdate: finalizers change only
    # through /finalize, status only through /status; the name label follows the name.
    await client.call("POST", NAMESPACES, {"metadata": {"name": "team"}})
    patch = {
        "metadata": {"labels": {"kubernetes.io/metadata.name": None, "team": "a"}},
        "spec": {"finalizers": []},
        "status": {"phase": "Terminating"},
    }
    status, body = await client.call(
        "PATCH", f"{NAMESPACES}/team", patch, "application/merge-patch+json"
    )
    assert status == 200
    assert body["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team", "team": "a"}
    assert (body["spec"], body["status"]) == ({"finalizers": ["kubernetes"]}, {"phase": "Active"})


async def test_deleting_a_namespace_deletes_what_is_in_it_then_the_namespace(
    client: Client,
) -> None:
    # The DELETE answers with the namespace Terminating; the namespace controller then
    # empties it, removes its finalizer and the namespace goes (pkg/controller/namespace).
    await client.call("POST", NAMESPACES, {"metadata": {"name": "team"}})
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}}
    status, _ = await client.call(
        "POST", "/apis/coordination.k8s.io/v1/namespaces/team/leases", lease
    )
    assert status == 201
    start = client.sandbox.store.resource_version
    status, body = await client.call("DELETE", f"{NAMESPACES}/team")
    assert (status, body["status"]["phase"]) == (200, "Terminating")
    assert body["metadata"]["deletionTimestamp"]
    status, _ = await client.call("GET", f"{NAMESPACES}/team")
    assert status == 404
    params = {"watch": "1", "resourceVersion": str(start), "timeoutSeconds": "1"}
    async with client.session.get(NAMESPACES, params=params) as stream:
        seen = [json.loads(line) for line in (await stream.read()).splitlines()]
    assert [(e["type"], e["object"]["status"].get("phase")) for e in seen] == [
        ("MODIFIED", "Terminating"),
        ("MODIFIED", "Terminating"),
        ("DELETED", "Terminating"),
    ]
    assert seen[1]["object"]["spec"]["finalizers"] == []
    leases = client.sandbox.store.list("coordination.k8s.io/leases", "team")
    assert leases == []


async def test_the_default_namespace_may_not_be_deleted(client: Client) -> None:
    # plugin/pkg/admission/namespace/lifecycle: default, kube-system and kube-public.
    status, body = await client.call("DELETE", f"{NAMESPACES}/default")
    assert (status, body["message"], body["details"]) == (
        403,
        'namespaces "default" is forbidden: this namespace may not be deleted',
        {"name": "default", "kind": "namespaces"},
    )


# --- Leases ----------------------------------------------------------------------------------


async def test_a_lease_duration_must_be_positive(client: Client) -> None:
    # pkg/apis/coordination/validation ValidateLeaseSpec.
    lease = {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}}
    status, body = await client.call("POST", LEASES, lease)
    assert status == 422
    assert causes(body) == [
        ("spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0")
    ]


# --- name rules ------------------------------------------------------------------------------


def test_name_rules_word_their_errors_as_the_api_server_does() -> None:
    # k8s.io/apimachinery/pkg/util/validation and api/validation/path.
    assert names.dns1123_label_errors("a" * 64) == ["must be no more than 63 characters"]
    assert names.dns1123_subdomain_errors("example.com") == []
    assert names.qualified_name_errors("example.com/MyName") == []
    assert names.qualified_name_errors("/x") == ["prefix part must be non-empty"]
    assert names.path_segment_errors("..") == ["may not be '..'"]
    assert names.path_segment_errors("a/b%") == ["may not contain '/'", "may not contain '%'"]


# --- field selectors -------------------------------------------------------------------------


async def test_events_are_selected_by_their_involved_object_reason_and_type(
    client: Client,
) -> None:
    # pkg/registry/core/event/strategy.go ToSelectableFields; the chart's NOTES tell users to
    # run `kubectl get events --field-selector involvedObject.kind=ClusterVersion`.
    about_version = event("cvsync", "cvsync")
    about_lease = event("cvsync", "cvsync", type="Warning")
    about_lease["involvedObject"] = {"kind": "Lease", "name": "cvsync", "namespace": "cvsync"}
    for body in (about_version, about_lease):
        status, _ = await client.call("POST", CVSYNC_EVENTS, body)
        assert status == 201

    async def kinds(selector: str) -> list[str]:
        status, listed = await client.call("GET", f"{CVSYNC_EVENTS}?fieldSelector={selector}")
        assert status == 200, listed
        return [item["involvedObject"]["kind"] for item in listed["items"]]

    assert await kinds("involvedObject.kind=ClusterVersion") == ["ClusterVersion"]
    assert await kinds("type!=Warning,source=cvsync") == ["ClusterVersion"]
    assert sorted(await kinds("reason==Applied")) == ["ClusterVersion", "Lease"]
    status, body = await client.call("GET", f"{CVSYNC_EVENTS}?fieldSelector=spec.x%3Dy")
    assert (status, body["reason"], body["message"]) == (
        400,
        "BadRequest",
        "field label not supported: spec.x",
    )


async def test_a_watch_with_a_field_selector_streams_only_matching_events(
    client: Client,
) -> None:
    start = client.sandbox.store.resource_version
    await client.call("POST", CVSYNC_EVENTS, event("cvsync", "cvsync", type="Warning"))
    await client.call("POST", CVSYNC_EVENTS, event("cvsync", "cvsync"))
    params = {
        "watch": "1",
        "resourceVersion": str(start),
        "timeoutSeconds": "1",
        "fieldSelector": "type=Normal",
    }
    async with client.session.get(CVSYNC_EVENTS, params=params) as stream:
        seen = [json.loads(line) for line in (await stream.read()).splitlines()]
    assert [(e["type"], e["object"]["type"]) for e in seen] == [("ADDED", "Normal")]
