"""Fault injection, restarts, persistence and request accounting of the sandbox, driven through
its in-process API while a plain HTTP client watches what a real client would see."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.sandbox.apiserver.access import ADMIN_USER, Rule
from agent.sandbox.server import Sandbox, SandboxOptions

CVS = "/apis/config.openshift.io/v1/clusterversions"
CV = f"{CVS}/version"
EVENTS = "/api/v1/namespaces/cvsync/events"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
SPEC: dict[str, Any] = {
    "apiVersion": "config.openshift.io/v1",
    "kind": "ClusterVersion",
    "metadata": {"name": "version"},
    "spec": {"clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e", "channel": "stable-4.15"},
}


def event(name: str) -> dict[str, Any]:
    # An Event outside `default` names its involved object's namespace, or a real server
    # refuses it (recorded from kube-apiserver v1.36.2, realserver step event-cluster-scoped-no-ns).
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name},
        "involvedObject": {"kind": "ClusterVersion", "name": "version", "namespace": "cvsync"},
        "reason": "Applied",
        "message": "applied",
    }


def session_for(sandbox: Sandbox, token: str | None = None) -> aiohttp.ClientSession:
    """A session that opens a new connection per request, so a restart leaves nothing stale."""
    return aiohttp.ClientSession(
        sandbox.url,
        headers={"Authorization": f"Bearer {token or sandbox.admin_token}"},
        connector=aiohttp.TCPConnector(force_close=True),
    )


async def request(
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    **params: str,
) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body)
    async with session.request(
        method, path, data=data, headers={"Content-Type": content_type}, params=params
    ) as response:
        return response.status, await response.json(), dict(response.headers)


async def apply(session: aiohttp.ClientSession, channel: str = "stable-4.15") -> dict[str, Any]:
    body = {**SPEC, "spec": {**SPEC["spec"], "channel": channel}}
    status, applied, _ = await request(
        session, "PATCH", CV, body, APPLY, fieldManager="cvsync", force="true"
    )
    assert status in (200, 201), applied
    obj: dict[str, Any] = applied
    return obj


async def current_resource_version(session: aiohttp.ClientSession) -> int:
    _, listed, _ = await request(session, "GET", CVS)
    return int(listed["metadata"]["resourceVersion"])


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxOptions(tls=False)) as running:
        yield running


@pytest.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with session_for(sandbox) as session:
        yield session


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (429, "TooManyRequests")],
)
async def test_a_failure_is_injected_for_exactly_the_given_number_of_matching_requests(
    sandbox: Sandbox, http: aiohttp.ClientSession, code: int, reason: str
) -> None:
    await apply(http)
    sandbox.faults.fail("get", "clusterversions", times=2, status=code)
    for _ in range(2):
        status, body, headers = await request(http, "GET", CV)
        assert (status, body["kind"], body["code"], body["reason"]) == (
            code,
            "Status",
            code,
            reason,
        )
        assert "Retry-After" not in headers
    status, _, _ = await request(http, "GET", CVS)  # a list is another verb: untouched
    assert status == 200
    status, body, _ = await request(http, "GET", CV)
    assert (status, body["spec"]["channel"]) == (200, "stable-4.15")
    assert sandbox.faults.total("get", "clusterversions") == 3  # failures count as requests


async def test_a_429_carries_retry_after_in_the_header_and_the_status_details(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.fail("patch", "clusterversions", status=429, retry_after=7)
    status, body, headers = await request(http, "PATCH", CV, SPEC, APPLY, fieldManager="cvsync")
    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body["details"] == {"retryAfterSeconds": 7}
    assert body["message"] == "Too many requests, please try again later."
    status, _, _ = await request(http, "GET", CV)
    assert status == 404, "the refused apply stored nothing"
    status, _, _ = await request(http, "PATCH", CV, SPEC, APPLY, fieldManager="cvsync")
    assert status == 201


async def test_a_fault_on_the_status_subresource_leaves_the_main_resource_alone(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await apply(http)
    sandbox.faults.fail("patch", "clusterversions/status", status=503)
    status, _, _ = await request(http, "PATCH", CV, {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert status == 200
    status, _, _ = await request(http, "PATCH", f"{CV}/status", {"status": {}}, MERGE)
    assert status == 503


async def test_a_reset_connection_is_a_connection_error_and_the_next_request_succeeds(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.reset_connections("create", "events")
    with pytest.raises(aiohttp.ClientConnectionError):
        await request(http, "POST", EVENTS, event("first"))
    status, listed, _ = await request(http, "GET", EVENTS)
    assert (status, listed["items"]) == (200, []), "the reset came before the write"
    status, created, _ = await request(http, "POST", EVENTS, event("first"))
    assert (status, created["metadata"]["name"]) == (201, "first")


async def test_a_get_survives_one_reset_by_the_clients_retry_but_not_two(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    # aiohttp resends an idempotent request once when its connection drops.
    sandbox.faults.reset_connections("list", "events")
    status, _, _ = await request(http, "GET", EVENTS)
    assert status == 200
    assert sandbox.faults.total("list", "events") == 2

    sandbox.faults.reset_connections("list", "events", times=2)
    with pytest.raises(aiohttp.ClientConnectionError):
        await request(http, "GET", EVENTS)
    status, _, _ = await request(http, "GET", EVENTS)
    assert status == 200


async def test_a_delay_holds_the_matching_request_back(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await apply(http)
    sandbox.faults.delay(0.3, "get", "clusterversions")
    started = time.perf_counter()
    status, _, _ = await request(http, "GET", CV)
    assert status == 200
    assert time.perf_counter() - started >= 0.3

    started = time.perf_counter()
    await request(http, "GET", CV)
    assert time.perf_counter() - started < 0.3, "the delay was used up"

    sandbox.faults.delay(0.6, "get", "clusterversions")
    with pytest.raises(TimeoutError):
        async with http.get(CV, timeout=aiohttp.ClientTimeout(total=0.1)):
            pass


# --- watches, restarts and persistence -------------------------------------------------------


async def test_ending_all_watches_ends_an_open_watch_stream(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await apply(http)
    params = {"watch": "1", "timeoutSeconds": "60"}
    async with http.get(CVS, params=params) as stream:
        assert stream.status == 200
        first = json.loads(await stream.content.readline())
        assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "version")
        assert sandbox.store.end_all_watches() == 1
        assert await asyncio.wait_for(stream.content.readline(), 2) == b""
    assert sandbox.store.watchers == []


async def test_a_restart_keeps_every_object_and_the_port_and_never_reuses_a_version(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    created = await apply(http)
    before = await current_resource_version(http)
    port, url = sandbox.port, sandbox.url
    async with http.get(CVS, params={"watch": "1", "timeoutSeconds": "60"}) as stream:
        await stream.content.readline()
        await sandbox.restart()
        assert await asyncio.wait_for(stream.content.readline(), 2) == b""

    assert (sandbox.port, sandbox.url) == (port, url)
    status, kept, _ = await request(http, "GET", CV)
    assert status == 200
    assert kept["metadata"]["uid"] == created["metadata"]["uid"]
    assert kept["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert await current_resource_version(http) == before
    changed = await apply(http, "fast-4.15")
    assert int(changed["metadata"]["resourceVersion"]) > before


async def test_a_state_directory_carries_objects_and_versions_to_the_next_sandbox(
    tmp_path: Path,
) -> None:
    options = SandboxOptions(tls=False, state_dir=tmp_path / "state")
    async with Sandbox(options) as first, session_for(first) as http:
        created = await apply(http)
        status, lease, _ = await request(
            http,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/cvsync/leases",
            {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "a"}},
        )
        assert status == 201
        last = await current_resource_version(http)
    assert (tmp_path / "state" / "state.json").is_file()

    async with Sandbox(options) as second, session_for(second) as http:
        status, kept, _ = await request(http, "GET", CV)
        assert status == 200
        assert kept == created
        status, kept_lease, _ = await request(
            http, "GET", "/apis/coordination.k8s.io/v1/namespaces/cvsync/leases/leader"
        )
        assert kept_lease == lease
        assert await current_resource_version(http) == last
        _, namespaces, _ = await request(http, "GET", "/api/v1/namespaces")
        assert "cvsync" in [ns["metadata"]["name"] for ns in namespaces["items"]]
        changed = await apply(http, "fast-4.15")
        assert int(changed["metadata"]["resourceVersion"]) == last + 1


# --- accounting ------------------------------------------------------------------------------


async def test_requests_are_counted_by_verb_resource_and_user(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await apply(http)
    assert sandbox.faults.writes() == 1
    assert sandbox.faults.total("patch", "clusterversions", ADMIN_USER) == 1

    before = sandbox.faults.writes()
    await request(http, "GET", CV)
    await request(http, "GET", CVS)
    await request(http, "GET", "/apis/config.openshift.io/v1")  # discovery is not counted
    assert sandbox.faults.writes() == before, "reads make no writes"
    assert sandbox.faults.total("get", "clusterversions") == 1
    assert sandbox.faults.total("list", "clusterversions") == 1

    sandbox.kubeconfig(user="viewer")
    sandbox.access.set_rules(
        "viewer", [Rule.of(["get", "list"], ["config.openshift.io"], ["clusterversions"])]
    )
    token = next(t for t, who in sandbox.access.tokens.items() if who.user == "viewer")
    async with session_for(sandbox, token) as viewer:
        status, _, _ = await request(viewer, "GET", CV)
        assert status == 200
        status, _, _ = await request(viewer, "PATCH", f"{CV}/status", {"status": {}}, MERGE)
        assert status == 403
    assert sandbox.faults.total("get", "clusterversions", "viewer") == 1
    assert sandbox.faults.total("get", "clusterversions", ADMIN_USER) == 1
    assert sandbox.faults.total("get", "clusterversions") == 2
    assert sandbox.faults.writes(user="viewer") == 1, "a refused write is still a request"
    assert sandbox.faults.writes("clusterversions/status") == 1
    assert sandbox.faults.writes(user=ADMIN_USER) == before
