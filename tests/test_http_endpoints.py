"""cvsync's own endpoints over real HTTP: health, readiness, metrics and the signed webhook,
including headers and bodies no honest sender writes, and replayed deliveries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from raw_http import closed_by_server, exchange, read_answer, request

from agent.adapters.http import HttpState, http_application, serve
from agent.metrics import Metrics
from agent.settings import HttpLimits

SECRET = b"webhook-shared-secret"


class Endpoint:
    def __init__(self) -> None:
        self.ready = False
        self.pushes = 0
        self.metrics = Metrics()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Serve = Callable[[HttpLimits], Awaitable[Endpoint]]


@pytest.fixture
async def serve_endpoint() -> AsyncIterator[Serve]:
    """Start cvsync's endpoints with the given limits, as many times as a test asks."""
    runners = []

    async def start(limits: HttpLimits) -> Endpoint:
        state = Endpoint()

        def pushed() -> None:
            state.pushes += 1

        app = http_application(
            HttpState(state.metrics, lambda: state.ready, pushed, SECRET, limits)
        )
        runner, state.port = await serve(app, "127.0.0.1", 0, limits)
        runners.append(runner)
        return state

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()


@pytest.fixture
async def endpoint(serve_endpoint: Serve) -> Endpoint:
    return await serve_endpoint(HttpLimits())


async def test_healthz_answers_at_once_and_readyz_only_after_the_first_cycle(
    endpoint: Endpoint,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{endpoint.url}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{endpoint.url}/readyz") as response:
            assert response.status == 503
        endpoint.ready = True
        async with session.get(f"{endpoint.url}/readyz") as response:
            assert response.status == 200


async def test_metrics_are_served_in_the_prometheus_text_format(endpoint: Endpoint) -> None:
    endpoint.metrics.cycles.labels(result="InSync").inc()
    endpoint.metrics.last_applied.info({"revision": "main@sha1:abc"})
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{endpoint.url}/metrics") as response,
    ):
        text = await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'cvsync_cycles_total{result="InSync"} 1.0' in text
    assert 'cvsync_last_applied_revision_info{revision="main@sha1:abc"} 1.0' in text
    assert "cvsync_cycle_duration_seconds_bucket" in text


def _github_signature(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "status", "pushes"),
    [
        ({"X-Hub-Signature-256": _github_signature(b'{"ref":"refs/heads/main"}')}, 202, 1),
        ({"X-Gitlab-Token": SECRET.decode()}, 202, 1),
        ({"X-Hub-Signature-256": _github_signature(b"{}", b"wrong-secret")}, 401, 0),
        ({"X-Hub-Signature-256": _github_signature(b"another body")}, 401, 0),
        ({"X-Gitlab-Token": "guess"}, 401, 0),
        ({}, 401, 0),
    ],
    ids=[
        "github",
        "gitlab",
        "github-wrong-secret",
        "github-other-body",
        "gitlab-wrong",
        "unsigned",
    ],
)
async def test_the_webhook_fetches_only_for_a_valid_signature(
    endpoint: Endpoint, headers: dict[str, str], status: int, pushes: int
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{endpoint.url}/hooks/git", data=b'{"ref":"refs/heads/main"}', headers=headers
        ) as response,
    ):
        assert response.status == status
    assert endpoint.pushes == pushes


# Headers and bodies no honest sender writes, over a bare socket.
GITHUB = b"X-Hub-Signature-256"
BODY = b'{"ref":"refs/heads/main"}'
RIGHT = _github_signature(BODY).encode()
HEX64 = hmac.new(SECRET, b"other", hashlib.sha256).hexdigest().encode()  # well formed, wrong


async def post(endpoint: Endpoint, headers: list[tuple[bytes, bytes]]) -> int:
    """POST BODY to the webhook with exactly these headers; the answer's status."""
    return (await exchange(endpoint.port, request("POST", "/hooks/git", headers, BODY))).status


@pytest.mark.parametrize(
    "headers",
    [
        [(GITHUB, b"sha256=" + "é".encode() * 32)],
        [(GITHUB, b"sha256=" + b"\xff" * 64)],
        [(GITHUB, RIGHT[:-2] + "é".encode())],
        [(b"X-Gitlab-Token", "sécret".encode())],
        [(b"X-Gitlab-Token", b"\xff\xfe")],
        [(GITHUB, b"sha1=" + HEX64[:40])],
        [(GITHUB, b"SHA256=" + RIGHT[7:])],
        [(GITHUB, RIGHT[7:])],
        [(GITHUB, RIGHT[:-1])],
        [(GITHUB, RIGHT + b"0")],
        [(GITHUB, b"sha256=" + b"g" * 64)],
        [(GITHUB, b"sha256= " + RIGHT[8:])],
        [(GITHUB, RIGHT), (GITHUB, b"sha256=" + HEX64)],
        [(b"X-Gitlab-Token", SECRET), (b"X-Gitlab-Token", b"guess")],
        [(b"X-Gitlab-Token", b"")],
        [(GITHUB, b"sha256=" + HEX64), (b"X-Gitlab-Token", SECRET)],
    ],
    ids=[
        "github-non-ascii",
        "github-not-utf8",
        "github-right-but-last-char-non-ascii",
        "gitlab-non-ascii",
        "gitlab-not-utf8",
        "github-sha1-prefix",
        "github-uppercase-prefix",
        "github-no-prefix",
        "github-too-short",
        "github-too-long",
        "github-not-hex",
        "github-space-inside",
        "github-twice",
        "gitlab-twice",
        "gitlab-empty",
        "github-wrong-with-gitlab-right",
    ],
)
async def test_a_malformed_or_wrong_signature_header_is_answered_401_never_500(
    endpoint: Endpoint, headers: list[tuple[bytes, bytes]]
) -> None:
    assert await post(endpoint, headers) == 401
    assert endpoint.pushes == 0


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
async def test_a_declared_10_gb_body_is_answered_413_at_once_without_being_read(
    endpoint: Endpoint, expect: bool
) -> None:
    headers = [(GITHUB, RIGHT), (b"Content-Length", str(10 * 1024**3).encode())]
    if expect:
        headers.append((b"Expect", b"100-continue"))
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    try:
        writer.write(request("POST", "/hooks/git", headers) + b"x" * 1024)
        async with asyncio.timeout(5):
            first = await reader.readuntil(b"\r\n")
        assert first.startswith(b"HTTP/1.1 413"), first  # no 100 Continue first
        async with asyncio.timeout(10):
            await closed_by_server(reader)
    finally:
        writer.close()
    assert endpoint.pushes == 0


def _chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("length", "status", "pushes"), [(64 * 1024, 202, 1), (64 * 1024 + 1, 413, 0)]
)
async def test_a_chunked_body_is_cut_at_the_limit_with_413(
    serve_endpoint: Serve, length: int, status: int, pushes: int
) -> None:
    endpoint = await serve_endpoint(HttpLimits(max_body_bytes=64 * 1024))
    body = b"a" * length  # rightly signed: only its size may refuse it
    headers = [(GITHUB, _github_signature(body).encode()), (b"Transfer-Encoding", b"chunked")]
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    try:
        writer.write(request("POST", "/hooks/git", headers) + _chunked(body, 4096))
        answer = await read_answer(reader)
    finally:
        writer.close()
    assert (answer.status, endpoint.pushes) == (status, pushes)


async def test_a_body_that_comes_too_slowly_is_answered_408_and_the_connection_closed(
    serve_endpoint: Serve,
) -> None:
    endpoint = await serve_endpoint(HttpLimits(body_timeout=0.5))
    headers = [(GITHUB, RIGHT), (b"Content-Length", b"100")]
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint.port)
    try:
        writer.write(request("POST", "/hooks/git", headers) + b"x" * 10)
        answer = await read_answer(reader, timeout=5)
        assert answer.status == 408
        async with asyncio.timeout(5):
            await closed_by_server(reader)
    finally:
        writer.close()
    assert endpoint.pushes == 0


# Replayed deliveries: GitHub names the event in X-GitHub-Delivery (a redelivery repeats
# it); GitLab sends Idempotency-Key, the same across retries (17.4+), and X-Gitlab-Event-UUID
# (docs.gitlab.com, user/project/integrations/webhooks, "Delivery headers").
def _delivery(header: bytes, delivery: bytes) -> list[tuple[bytes, bytes]]:
    if header == b"X-GitHub-Delivery":
        return [(GITHUB, RIGHT), (header, delivery)]
    return [(b"X-Gitlab-Token", SECRET), (header, delivery)]


@pytest.mark.parametrize(
    "header", [b"X-GitHub-Delivery", b"Idempotency-Key", b"X-Gitlab-Event-UUID"]
)
async def test_a_replayed_delivery_is_answered_202_and_fetches_once(
    endpoint: Endpoint, header: bytes
) -> None:
    first = b"72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert [await post(endpoint, _delivery(header, first)) for _ in range(5)] == [202] * 5
    assert endpoint.pushes == 1
    other = b"13792a34-cac6-4fda-95a8-c58e00a3954e"
    assert await post(endpoint, _delivery(header, other)) == 202
    assert endpoint.pushes == 2


async def test_a_delivery_refused_for_its_signature_is_not_remembered(endpoint: Endpoint) -> None:
    delivery = (b"X-GitHub-Delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert await post(endpoint, [(GITHUB, b"sha256=" + HEX64), delivery]) == 401
    assert await post(endpoint, [(GITHUB, RIGHT), delivery]) == 202
    assert endpoint.pushes == 1


async def test_a_delivery_seen_longer_ago_than_the_window_fetches_again(
    serve_endpoint: Serve,
) -> None:
    endpoint = await serve_endpoint(HttpLimits(delivery_window=0.3))
    headers = _delivery(b"X-GitHub-Delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert await post(endpoint, headers) == 202
    await asyncio.sleep(0.4)
    assert await post(endpoint, headers) == 202
    assert endpoint.pushes == 2
