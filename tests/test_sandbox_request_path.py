"""The sandbox's request path as a real API server's: a request's attributes come from its URL,
authorization decides on them before any handler looks for the resource, and what nothing
serves gets the real server's 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from agent.sandbox.apiserver.access import Rule
from agent.sandbox.apiserver.requestinfo import RequestInfo, resolve
from agent.sandbox.server import Sandbox, SandboxOptions

# The agent's rules on the recording server (realserver README): the chart's Role in cvsync.
AGENT_RULES = (
    Rule.of(["get", "list", "watch", "patch"], ["config.openshift.io"], ["clusterversions"]),
    Rule.of(["create", "patch"], ["", "events.k8s.io"], ["events"], namespaces=["cvsync"]),
)


class Client:
    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox) -> None:
        self.session = session
        self.sandbox = sandbox

    def token(self, user: str, rules: tuple[Rule, ...]) -> str:
        self.sandbox.kubeconfig(user=user)
        self.sandbox.access.set_rules(user, rules)
        return next(t for t, who in self.sandbox.access.tokens.items() if who.user == user)

    async def call(
        self, method: str, path: str, token: str, body: Any = None
    ) -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, path, json=body, headers=headers) as response:
            content_type = response.headers.get("Content-Type", "")
            if content_type.startswith("application/json"):
                return response.status, await response.json(), content_type
            return response.status, await response.text(), content_type


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async with (
        Sandbox(SandboxOptions(tls=False)) as sandbox,
        aiohttp.ClientSession(sandbox.url) as session,
    ):
        yield Client(session, sandbox)


def forbidden(message: str, details: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }


# --- request attributes ----------------------------------------------------------------------

ATTRIBUTES = {
    "core list": (
        ("GET", "/api/v1/namespaces/cvsync/secrets", {}),
        RequestInfo("", "list", True, "api", "", "v1", "cvsync", "secrets"),
    ),
    "custom get": (
        ("GET", "/apis/config.openshift.io/v1/clusterversions/version", {}),
        RequestInfo("", "get", True, "apis", "config.openshift.io", "v1", "", "clusterversions",
                    "version"),
    ),
    "status patch": (
        ("PATCH", "/apis/config.openshift.io/v1/clusterversions/version/status", {}),
        RequestInfo("", "patch", True, "apis", "config.openshift.io", "v1", "", "clusterversions",
                    "version", "status"),
    ),
    "watch of one name": (
        ("GET", "/apis/config.openshift.io/v1/clusterversions",
         {"watch": "1", "fieldSelector": "metadata.name=version"}),
        RequestInfo("", "watch", True, "apis", "config.openshift.io", "v1", "", "clusterversions",
                    "version"),
    ),
    # A namespace's own URL puts its name in the namespace attribute too, so a Role in that
    # namespace can grant reading it.
    "namespace get": (
        ("GET", "/api/v1/namespaces/cvsync", {}),
        RequestInfo("", "get", True, "api", "", "v1", "cvsync", "namespaces", "cvsync"),
    ),
    "namespace status": (
        ("PUT", "/api/v1/namespaces/cvsync/status", {}),
        RequestInfo("", "update", True, "api", "", "v1", "cvsync", "namespaces", "cvsync",
                    "status"),
    ),
    "namespace list": (
        ("GET", "/api/v1/namespaces", {}),
        RequestInfo("", "list", True, "api", "", "v1", "", "namespaces"),
    ),
    "delete collection": (
        ("DELETE", "/api/v1/namespaces/cvsync/events", {}),
        RequestInfo("", "deletecollection", True, "api", "", "v1", "cvsync", "events"),
    ),
    "deprecated watch path": (
        ("GET", "/api/v1/watch/namespaces/cvsync/events", {}),
        RequestInfo("", "watch", True, "api", "", "v1", "cvsync", "events"),
    ),
    "group discovery": (("GET", "/apis/config.openshift.io/v1", {}), RequestInfo("", "get")),
    "health": (("GET", "/healthz", {}), RequestInfo("", "get")),
}  # fmt: skip


@pytest.mark.parametrize("case", ATTRIBUTES.values(), ids=ATTRIBUTES.keys())
def test_a_requests_attributes_come_from_its_method_path_and_query(
    case: tuple[tuple[str, str, dict[str, str]], RequestInfo],
) -> None:
    # k8s.io/apiserver pkg/endpoints/request/requestinfo.go: resource requests are
    # /api/<version>/... and /apis/<group>/<version>/... with at least a resource.
    (method, path, query), expected = case
    got = resolve(method, path, query)
    assert (got.verb, got.is_resource_request, got.api_group, got.api_version) == (
        expected.verb,
        expected.is_resource_request,
        expected.api_group,
        expected.api_version,
    )
    assert (got.namespace, got.resource, got.name, got.subresource) == (
        expected.namespace,
        expected.resource,
        expected.name,
        expected.subresource,
    )


# --- authorization comes first ---------------------------------------------------------------


async def test_a_resource_the_sandbox_does_not_serve_is_still_forbidden_first(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step agent-get-secrets.
    agent = client.token("agent", AGENT_RULES)
    status, body, _ = await client.call("GET", "/api/v1/namespaces/cvsync/secrets", agent)
    assert status == 403
    assert body == forbidden(
        'secrets is forbidden: User "agent" cannot list resource "secrets" in API group "" '
        'in the namespace "cvsync"',
        {"kind": "secrets"},
    )


async def test_a_forbidden_request_without_a_name_has_no_name_in_its_details(
    client: Client,
) -> None:
    # Recorded from kube-apiserver v1.36.2, realserver step agent-event-other-ns.
    agent = client.token("agent", AGENT_RULES)
    event = {"metadata": {"generateName": "version."}, "involvedObject": {"name": "version"}}
    status, body, _ = await client.call("POST", "/api/v1/namespaces/default/events", agent, event)
    assert status == 403
    assert body == forbidden(
        'events is forbidden: User "agent" cannot create resource "events" in API group "" '
        'in the namespace "default"',
        {"kind": "events"},
    )


async def test_an_unknown_group_is_forbidden_with_its_group_in_the_details(
    client: Client,
) -> None:
    # errors.NewForbidden names the group-qualified resource (k8s.io/apimachinery errors.go).
    agent = client.token("agent", AGENT_RULES)
    status, body, _ = await client.call("GET", "/apis/example.com/v1/widgets/w", agent)
    assert status == 403
    assert body == forbidden(
        'widgets.example.com "w" is forbidden: User "agent" cannot get resource "widgets" in '
        'API group "example.com" at the cluster scope',
        {"name": "w", "group": "example.com", "kind": "widgets"},
    )


async def test_an_authorized_user_asking_for_an_unknown_resource_gets_the_not_found(
    client: Client,
) -> None:
    admin = client.sandbox.admin_token
    status, body, _ = await client.call("GET", "/api/v1/namespaces/cvsync/secrets", admin)
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    status, text, content_type = await client.call("GET", "/apis/example.com/v1/widgets", admin)
    assert (status, text, content_type) == (
        404,
        "404 page not found\n",
        "text/plain; charset=utf-8",
    )


async def test_a_role_in_a_namespace_can_grant_reading_that_namespace(client: Client) -> None:
    reader = client.token(
        "reader", (Rule.of(["get"], [""], ["namespaces"], namespaces=["cvsync"]),)
    )
    status, body, _ = await client.call("GET", "/api/v1/namespaces/cvsync", reader)
    assert (status, body["metadata"]["name"]) == (200, "cvsync")
    status, body, _ = await client.call("GET", "/api/v1/namespaces/default", reader)
    assert status == 403
    assert body["message"] == (
        'namespaces "default" is forbidden: User "reader" cannot get resource "namespaces" in '
        'API group "" in the namespace "default"'
    )


async def test_a_method_the_route_does_not_take_is_refused_only_after_authorization(
    client: Client,
) -> None:
    agent = client.token("agent", AGENT_RULES)
    path = "/api/v1/namespaces/default/events/e1"
    status, body, _ = await client.call("POST", path, agent, {})
    assert (status, body["reason"]) == (403, "Forbidden")
    status, body, _ = await client.call("POST", path, client.sandbox.admin_token, {})
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
