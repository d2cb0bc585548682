"""Server-side apply, field management and write refusals over HTTP, each answer as the real
kube-apiserver v1.36.2 gave it (../shared/realserver/raw-api-steps.json, step named in each
test) or as the Kubernetes source that words it says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from conftest import corpus_path
from ruamel.yaml import YAML

from agent.sandbox.apiserver.apply_patch import decode_apply_body
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.server import Sandbox, SandboxOptions

CVS = "/apis/config.openshift.io/v1/clusterversions"
CV = f"{CVS}/version"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/cvsync/leases"
EVENTS = "/api/v1/namespaces/cvsync/events"
CLUSTER_ID = "bb39d7b1-588e-4cd6-bc8e-b8f2f8509321"
UPSTREAM = "https://api.openshift.com/api/upgrades_info/v1/graph"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TYPED_PATCH = (
    "failed to create typed patch object (/version; config.openshift.io/v1, Kind=ClusterVersion): "
)
DNS = {"group": "apps", "kind": "Deployment", "name": "dns", "namespace": "openshift-dns"}
DNS_PATH = '.spec.overrides[group="apps",kind="Deployment",name="dns",namespace="openshift-dns"]'


def cluster_version(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": CLUSTER_ID, **spec},
    }


def status_body(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    body |= {"status": "Failure", "message": message, "code": code}
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return body


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Any


class Http:
    """Raw requests as the recording's admin made them (its bodies JSON, or text as sent)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Reply:
        data = body if isinstance(body, str) or body is None else json.dumps(body)
        headers = {"Content-Type": content_type, "User-Agent": "Python-urllib/3.11"}
        async with self.session.request(method, path, data=data, headers=headers) as response:
            return Reply(response.status, json.loads(await response.text()), response.headers)

    async def apply(self, body: Any, query: str = "fieldManager=cvsync") -> Reply:
        return await self.call("PATCH", f"{CV}?{query}", body, APPLY)


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with Sandbox(SandboxOptions(tls=False)) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
        async with aiohttp.ClientSession(sandbox.url, headers=headers) as session:
            http = Http(session)
            # As the recording's server was seeded: the installer's create, an Update.
            seed = cluster_version(channel="stable-4.16", upstream=UPSTREAM)
            created = await http.call("POST", f"{CVS}?fieldManager=cluster-bootstrap", seed)
            assert created.status == 201
            yield http


async def owned_by_cvsync(http: Http) -> dict[str, Any]:
    reply = await http.apply(cluster_version(channel="fast-4.16"), "fieldManager=cvsync&force=true")
    assert reply.status == 200
    return reply.body  # type: ignore[no-any-return]


async def unchanged(http: Http, before: dict[str, Any]) -> bool:
    now: dict[str, Any] = (await http.call("GET", CV)).body
    return now == before


# --- conflicts and the typed patch ---------------------------------------------------------


async def test_an_apply_conflict_names_only_the_conflicting_fields(http: Http) -> None:
    # Recorded: step apply-channel-cvsync (no group, kind or name in the details).
    reply = await http.apply(cluster_version(channel="fast-4.16"))
    owner = 'conflict with "cluster-bootstrap" using config.openshift.io/v1'
    assert (reply.status, reply.body) == (
        409,
        status_body(
            409,
            "Conflict",
            f"Apply failed with 1 conflict: {owner}: .spec.channel",
            causes=[{"reason": "FieldManagerConflict", "message": owner, "field": ".spec.channel"}],
        ),
    )


async def test_a_desired_update_is_stored_with_only_the_fields_the_writer_sent(
    http: Http,
) -> None:
    # The CRD declares no `default` under spec.desiredUpdate (../shared/corpus/crd/
    # 0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml) and the apiserver
    # defaults only from a schema's `default`: a field left out stays absent, so a cluster
    # can hold {version} alone where cvsync and oc write all four fields. Recorded: step
    # apply-desired-update stores the four fields cvsync sent as they were.
    only_version = cluster_version(channel="fast-4.16", desiredUpdate={"version": "4.16.3"})
    reply = await http.apply(only_version, "fieldManager=cvsync&force=true")
    assert reply.status == 200
    assert reply.body["spec"]["desiredUpdate"] == {"version": "4.16.3"}
    assert (await http.call("GET", CV)).body["spec"]["desiredUpdate"] == {"version": "4.16.3"}


def test_the_real_crd_declares_no_default_under_desired_update() -> None:
    name = "0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml"
    crd = YAML(typ="safe").load(corpus_path("crd", name).read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    update = schema["properties"]["spec"]["properties"]["desiredUpdate"]

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for value in node.values() for k in keys(value)}
        return set()

    assert "default" not in keys(update)
    assert set(update["properties"]) == {"architecture", "force", "image", "version"}


@pytest.mark.parametrize("validation", ["", "Strict", "Warn", "Ignore"])
async def test_an_apply_naming_an_undeclared_field_is_a_500_that_changes_nothing(
    http: Http, validation: str
) -> None:
    # Recorded: steps apply-unknown-field and apply-unknown-field-strict. The field manager
    # builds the typed patch before merging, so the manager keeps every field it owned.
    before = await owned_by_cvsync(http)
    query = "fieldManager=cvsync" + (f"&fieldValidation={validation}" if validation else "")
    reply = await http.apply(cluster_version(chanel="x", channel="fast-4.16"), query)
    message = TYPED_PATCH + ".spec.chanel: field not declared in schema"
    assert (reply.status, reply.body) == (500, status_body(500, "", message))
    assert await unchanged(http, before)


@pytest.mark.parametrize(
    ("spec", "metadata", "problem"),
    [
        (
            {"desiredUpdate": {"version": "4.16.3", "verison": "x"}},
            {},
            ".spec.desiredUpdate.verison",
        ),
        ({"overrides": [{**DNS, "unmanaged": True, "unmanagd": True}]}, {}, DNS_PATH + ".unmanagd"),
        ({}, {"labelz": {"a": "b"}}, ".metadata.labelz"),
    ],
    ids=["inside-desired-update", "inside-an-override", "in-metadata"],
)
async def test_undeclared_fields_are_refused_at_any_depth(
    http: Http, spec: dict[str, Any], metadata: dict[str, Any], problem: str
) -> None:
    # structured-merge-diff typed/validate.go: each undeclared field is named by its path,
    # a keyed list item by its keys (the recording's format of apply-unknown-field).
    body = cluster_version(**spec)
    body["metadata"] |= metadata
    reply = await http.apply(body, "fieldManager=cvsync&force=true")
    assert reply.status == 500
    assert reply.body["message"] == TYPED_PATCH + f"{problem}: field not declared in schema"


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ({"channel": 4}, ".spec.channel: expected string, got &value.valueUnstructured{Value:4}"),
        (
            {"desiredUpdate": {"force": "yes"}},
            ".spec.desiredUpdate.force: expected boolean, got &{yes}",
        ),
        (
            {"overrides": [{"group": "apps", "kind": "Deployment", "namespace": "x"}]},
            ".spec.overrides: element 0: associative list with keys has an element that omits "
            'key field "name" (and doesn\'t have default value)',
        ),
        ({"desiredUpdate": "4.16.3"}, ".spec.desiredUpdate: expected map, got &{4.16.3}"),
    ],
    ids=["number-for-string", "string-for-boolean", "item-without-its-key", "string-for-struct"],
)
async def test_values_of_the_wrong_type_fail_the_typed_patch_as_well(
    http: Http, spec: dict[str, Any], problem: str
) -> None:
    # structured-merge-diff typed/validate.go and helpers.go word these; the typed patch
    # fails before validation could answer with a 422.
    reply = await http.apply(cluster_version(**spec), "fieldManager=cvsync&force=true")
    assert (reply.status, reply.body["message"]) == (500, TYPED_PATCH + problem)


async def test_an_apply_of_another_kind_is_an_invalid_object_type(http: Http) -> None:
    # Recorded: step apply-wrong-kind.
    lease = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "Lease",
        "metadata": {"name": "version"},
    }
    reply = await http.apply(lease)
    message = "invalid object type: config.openshift.io/v1, Kind=Lease"
    assert (reply.status, reply.body) == (400, status_body(400, "BadRequest", message))
    other_version = {**cluster_version(), "apiVersion": "config.openshift.io/v2"}
    reply = await http.apply(other_version)
    assert (
        reply.body["message"] == "invalid object type: config.openshift.io/v2, Kind=ClusterVersion"
    )


async def test_an_apply_carrying_managed_fields_is_refused(http: Http) -> None:
    # k8s.io/apiserver fieldmanager (structuredmerge.go): the applier may not write them.
    body = cluster_version()
    body["metadata"]["managedFields"] = []
    reply = await http.apply(body)
    assert (reply.status, reply.body["message"]) == (400, "metadata.managedFields must be nil")


# --- decoding the body ---------------------------------------------------------------------


async def test_a_yaml_syntax_error_is_worded_as_go_yaml_words_it(http: Http) -> None:
    # Recorded: step apply-bad-yaml.
    reply = await http.apply("spec: [unclosed")
    message = (
        "error decoding YAML: error converting YAML to JSON: yaml: line 1: did not find "
        "expected ',' or ']'"
    )
    assert (reply.status, reply.body) == (400, status_body(400, "BadRequest", message))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # A scanner error: go-yaml prints the problem's 0-based line plus one.
        (
            "spec:\n  channel: a: b\n",
            "yaml: line 2: mapping values are not allowed in this context",
        ),
        # A parser error: go-yaml prints the problem's 0-based line as it is.
        ("a:\n  b: 1\n c: 2\n", "yaml: line 2: did not find expected key"),
    ],
)
def test_go_yaml_numbers_scanner_and_parser_errors_differently(text: str, reason: str) -> None:
    # go-yaml (sigs.k8s.io/yaml's goyaml.v2) parser.fail().
    with pytest.raises(ApiError) as refused:
        decode_apply_body(text)
    assert refused.value.body["message"] == (
        f"error decoding YAML: error converting YAML to JSON: {reason}"
    )


def test_a_body_that_is_not_an_object_fails_json_decoding() -> None:
    # sigs.k8s.io/yaml: YAML becomes JSON, then JSON is decoded into map[string]interface{}.
    with pytest.raises(ApiError) as refused:
        decode_apply_body("- a\n- b\n")
    assert refused.value.body["message"] == (
        "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot "
        "unmarshal array into Go value of type map[string]interface {}"
    )
    decoded = decode_apply_body("when: 2026-01-01T00:00:00Z\n")
    assert decoded.object == {"when": "2026-01-01T00:00:00Z"}  # a timestamp stays text


REPEATED_CHANNEL = f"""\
apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata:
  name: version
spec:
  clusterID: {CLUSTER_ID}
  channel: stable-4.16
  channel: fast-4.16
"""


async def test_a_repeated_key_takes_its_last_value_and_only_strict_validation_refuses_it(
    http: Http,
) -> None:
    # k8s.io/apiserver handlers/patch.go: the apply decodes leniently (go-yaml keeps the last
    # value), then decodes strictly again: a 400 under Strict, warnings under Warn.
    before = await owned_by_cvsync(http)
    strict = await http.apply(REPEATED_CHANNEL, "fieldManager=cvsync&fieldValidation=Strict")
    assert (strict.status, strict.body["message"]) == (
        400,
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n"
        '  line 8: key "channel" already set in map',
    )
    assert await unchanged(http, before)
    warned = await http.apply(REPEATED_CHANNEL)
    assert (warned.status, warned.body["spec"]["channel"]) == (200, "fast-4.16")
    assert warned.headers.getall("Warning") == [
        '299 - "line 8: key \\"channel\\" already set in map"'
    ]


async def test_an_apply_without_a_field_manager_is_invalid_patch_options(http: Http) -> None:
    # Recorded: step apply-no-field-manager. The options are checked before the body is read.
    cause = {
        "reason": "FieldValueRequired",
        "message": "Required value: is required for apply patch",
        "field": "fieldManager",
    }
    message = (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
        "for apply patch"
    )
    expected = status_body(
        422, "Invalid", message, group="meta.k8s.io", kind="PatchOptions", causes=[cause]
    )
    for body in (cluster_version(channel="fast-4.16"), "spec: [unclosed"):
        reply = await http.call("PATCH", CV, body, APPLY)
        assert (reply.status, reply.body) == (422, expected)


# --- the resourceVersion precondition -------------------------------------------------------


def modified(resource: str, name: str, group: str = "") -> dict[str, Any]:
    qualified = f"{resource}.{group}" if group else resource
    message = (
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    details = {"name": name, "kind": resource} | ({"group": group} if group else {})
    return status_body(409, "Conflict", message, **details)


async def test_an_apply_with_a_stale_resource_version_is_a_conflict(http: Http) -> None:
    # Recorded: step apply-stale-resourceversion.
    before = await owned_by_cvsync(http)
    body = cluster_version(channel="fast-4.16")
    body["metadata"]["resourceVersion"] = "1"
    reply = await http.apply(body)
    assert (reply.status, reply.body) == (
        409,
        modified("clusterversions", "version", "config.openshift.io"),
    )
    assert await unchanged(http, before)


async def test_a_patch_carrying_a_stale_resource_version_is_a_conflict(http: Http) -> None:
    # k8s.io/apiserver registry Store.Update: the precondition holds whatever the verb.
    before = await owned_by_cvsync(http)
    patch = {"metadata": {"resourceVersion": "1"}, "spec": {"channel": "eus-4.16"}}
    reply = await http.call("PATCH", CV, patch, MERGE)
    assert (reply.status, reply.body) == (
        409,
        modified("clusterversions", "version", "config.openshift.io"),
    )
    assert await unchanged(http, before)


async def test_a_write_without_a_resource_version_is_refused_unless_the_kind_allows_it(
    http: Http,
) -> None:
    # Recorded: step lease-update-no-rv (the resource, not the kind, names the object; the
    # 0 is bare). Store.Update refuses that unless the strategy's AllowUnconditionalUpdate:
    # false for leases and custom resources, true for events (pkg/registry/core/event).
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "cvsync", "namespace": "cvsync"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    assert (await http.call("POST", LEASES, lease)).status == 201
    reply = await http.call("PUT", f"{LEASES}/cvsync", lease)
    message = "Invalid value: 0: must be specified for an update"
    cause = {"reason": "FieldValueInvalid", "message": message, "field": "metadata.resourceVersion"}
    assert (reply.status, reply.body) == (
        422,
        status_body(
            422,
            "Invalid",
            f'leases.coordination.k8s.io "cvsync" is invalid: metadata.resourceVersion: {message}',
            name="cvsync",
            group="coordination.k8s.io",
            kind="leases",
            causes=[cause],
        ),
    )
    removed = await http.call(
        "PATCH", CV, [{"op": "remove", "path": "/metadata/resourceVersion"}], JSON_PATCH
    )
    assert removed.status == 422
    assert removed.body["message"].startswith(
        'clusterversions.config.openshift.io "version" is invalid: metadata.resourceVersion'
    )
    event = await http.call("POST", EVENTS, EVENT)
    assert event.status == 201
    unconditional = {**event.body, "count": 2}
    del unconditional["metadata"]["resourceVersion"]
    updated = await http.call("PUT", f"{EVENTS}/version.fixed1", unconditional)
    assert (updated.status, updated.body["count"]) == (200, 2)


# --- built-in kinds: the "." of an Update and the fields a Go value always has --------------

EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "version.fixed1", "namespace": "cvsync"},
    "involvedObject": {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "name": "version",
        "namespace": "cvsync",
    },
    "reason": "Applied",
    "message": "applied channel",
    "type": "Normal",
    "source": {"component": "cvsync"},
    "count": 1,
    "firstTimestamp": "2026-01-01T00:00:00Z",
    "lastTimestamp": "2026-01-01T00:00:00Z",
}


def fields_v1(reply: Reply) -> Any:
    [entry] = reply.body["metadata"]["managedFields"]
    return entry["fieldsV1"]


async def test_a_created_event_owns_its_involved_object_whole_and_its_source_without_a_dot(
    http: Http,
) -> None:
    # Recorded: step event-involved-ns-matches. ObjectReference is an atomic struct; source,
    # a non-pointer struct, already exists in a zero Event, so it gets no "."; the zero
    # Event's reportingComponent and reportingInstance (no omitempty) come back empty.
    reply = await http.call("POST", EVENTS, EVENT)
    assert reply.status == 201
    assert fields_v1(reply) == {
        "f:count": {},
        "f:firstTimestamp": {},
        "f:involvedObject": {},
        "f:lastTimestamp": {},
        "f:message": {},
        "f:reason": {},
        "f:source": {"f:component": {}},
        "f:type": {},
    }
    assert (reply.body["reportingComponent"], reply.body["reportingInstance"]) == ("", "")


async def test_a_created_lease_gets_no_dot_under_its_spec_but_a_custom_resource_does(
    http: Http,
) -> None:
    # Recorded: steps lease-create (LeaseSpec is a value in Go) and get-object (a custom
    # resource is unstructured, so its spec is new on create).
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "cvsync", "namespace": "cvsync"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    }
    reply = await http.call("POST", LEASES, lease)
    assert fields_v1(reply) == {"f:spec": {"f:holderIdentity": {}, "f:leaseDurationSeconds": {}}}
    seeded = await http.call("GET", CV)
    assert fields_v1(seeded) == {
        "f:spec": {".": {}, "f:channel": {}, "f:clusterID": {}, "f:upstream": {}}
    }


async def test_unknown_fields_of_a_built_in_kind_are_dropped_or_refused_by_field_validation(
    http: Http,
) -> None:
    # Decoding into the Go type drops them: a warning by default, a 400 with Strict (the
    # strict decoding error a custom resource gets too), in the order the body has them.
    event = {**EVENT, "severity": "high"}
    event["source"] = {"component": "cvsync", "colour": "red"}
    warned = await http.call("POST", EVENTS, event)
    assert warned.status == 201
    assert "severity" not in warned.body
    assert warned.body["source"] == {"component": "cvsync"}
    assert warned.headers.getall("Warning") == [
        '299 - "unknown field \\"source.colour\\""',
        '299 - "unknown field \\"severity\\""',
    ]
    strict = await http.call("POST", f"{EVENTS}?fieldValidation=Strict", event)
    assert (strict.status, strict.body["message"]) == (
        400,
        'Event in version "v1" cannot be handled as a Event: strict decoding error: unknown '
        'field "source.colour", unknown field "severity"',
    )
