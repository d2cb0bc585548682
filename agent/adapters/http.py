"""cvsync's own HTTP endpoints: /healthz, /readyz, /metrics, and the git webhook receiver
(POST /hooks/git: GitHub's HMAC-SHA256 signature or GitLab's token; a replay fetches once).

I/O adapter: an aiohttp application behind http_guard's listener; it only reads state and
calls back into the runtime.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import string
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDictProxy
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agent.adapters.http_guard import GuardedSite
from agent.metrics import Metrics
from agent.settings import HttpLimits

GITHUB_SIGNATURE = "X-Hub-Signature-256"
GITLAB_TOKEN = "X-Gitlab-Token"
# What a redelivery repeats: GitHub's X-GitHub-Delivery names the event; GitLab's
# Idempotency-Key (17.4+) stays the same across retries, its X-Gitlab-Event-UUID names the
# event on older releases.
DELIVERY_HEADERS = ("X-GitHub-Delivery", "Idempotency-Key", "X-Gitlab-Event-UUID")
MAX_DELIVERY_ID = 200  # characters; a longer ID is not remembered (real ones are UUIDs)
MAX_REMEMBERED = 1024  # delivery IDs kept at once, the oldest forgotten first
LINGER = 1.0  # seconds a refused body is still read and dropped, so the client sees the answer
SHUTDOWN_TIMEOUT = 2.0  # seconds a request in flight may hold up the agent's exit
_PREFIX = b"sha256="
_HEX = frozenset(string.hexdigits.encode())


def github_digest(header: str) -> bytes | None:
    """The digest in a well-formed X-Hub-Signature-256 ("sha256=" and 64 hex digits), else
    None. Works on the header's bytes as received, whatever they are."""
    raw = header.encode("utf-8", "surrogateescape")
    hexdigits = raw.removeprefix(_PREFIX)
    if len(raw) != len(_PREFIX) + 64 or hexdigits == raw or not _HEX.issuperset(hexdigits):
        return None
    return bytes.fromhex(hexdigits.decode("ascii"))


def valid_gitlab_token(secret: bytes, header: str) -> bool:
    """Compared in constant time over bytes, so any header (non-ASCII too) is just unequal."""
    token = header.encode("utf-8", "surrogateescape")
    return bool(token) and hmac.compare_digest(token, secret)


class RecentDeliveries:
    """Delivery IDs seen within `window` seconds, at most MAX_REMEMBERED of them."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def repeat(self, delivery: str, now: float) -> bool:
        """True if `delivery` was seen within the window; otherwise remember it."""
        seen = self._seen
        while seen and (
            len(seen) >= MAX_REMEMBERED or next(iter(seen.values())) <= now - self.window
        ):
            seen.popitem(last=False)
        if delivery in seen:
            return True
        seen[delivery] = now
        return False


def delivery_id(headers: Mapping[str, str]) -> str | None:
    for name in DELIVERY_HEADERS:
        value = headers.get(name, "").strip()
        if value:
            return f"{name}:{value}" if len(value) <= MAX_DELIVERY_ID else None
    return None


@dataclass
class HttpState:
    metrics: Metrics
    is_ready: Callable[[], bool]
    on_push: Callable[[], None]
    webhook_secret: bytes | None
    limits: HttpLimits = field(default_factory=HttpLimits)


class _RefusedError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def _closing(status: int, text: str) -> web.Response:
    """An answer after which the connection closes (its body may be unread)."""
    response = web.Response(status=status, text=text)
    response.force_close()
    return response


def _too_large(limits: HttpLimits) -> str:
    return f"the body is larger than {limits.max_body_bytes} bytes"


async def _body_digest(request: web.Request, secret: bytes, limits: HttpLimits) -> bytes:
    """HMAC-SHA256 of the body as it streams in: never held whole, cut at the size limit,
    and given body_timeout seconds in all."""
    mac = hmac.new(secret, digestmod=hashlib.sha256)
    received = 0
    try:
        async with asyncio.timeout(limits.body_timeout):
            while chunk := await request.content.readany():
                received += len(chunk)
                if received > limits.max_body_bytes:
                    raise _RefusedError(413, _too_large(limits))
                mac.update(chunk)
    except TimeoutError:
        raise _RefusedError(408, "the body came too slowly") from None
    return mac.digest()


async def _authentic(request: web.Request, secret: bytes, limits: HttpLimits) -> bool:
    """One signature header, well formed and right: GitHub's if present, else GitLab's."""
    headers: CIMultiDictProxy[str] = request.headers
    signatures = headers.getall(GITHUB_SIGNATURE, [])
    tokens = headers.getall(GITLAB_TOKEN, [])
    if signatures:
        expected = github_digest(signatures[0]) if len(signatures) == 1 else None
        if expected is None:
            return False
        return hmac.compare_digest(await _body_digest(request, secret, limits), expected)
    return len(tokens) == 1 and valid_gitlab_token(secret, tokens[0])


async def _continue_if_small(request: web.Request, limits: HttpLimits) -> web.Response | None:
    """Expect: 100-continue: a declared body over the limit gets 413 instead of a go-ahead."""
    if (request.content_length or 0) > limits.max_body_bytes:
        return _closing(413, _too_large(limits))
    expect = request.headers.get("Expect", "")
    if request.version != (1, 1):
        return None
    if expect.lower() != "100-continue":
        return _closing(417, f"unknown Expect: {expect}")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


def http_application(state: HttpState) -> web.Application:
    limits = state.limits
    deliveries = RecentDeliveries(limits.delivery_window)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if state.is_ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="no reconcile cycle has completed yet")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(state.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def webhook(request: web.Request) -> web.Response:
        secret = state.webhook_secret
        if secret is None:
            return web.Response(status=404, text="the webhook is not enabled")
        if (request.content_length or 0) > limits.max_body_bytes:
            return _closing(413, _too_large(limits))
        try:
            if not await _authentic(request, secret, limits):
                return _closing(401, "missing or invalid signature")
        except _RefusedError as refused:
            return _closing(refused.status, refused.text)
        delivery = delivery_id(request.headers)
        if delivery is not None and deliveries.repeat(delivery, time.monotonic()):
            return web.Response(status=202, text="delivery already received; fetch scheduled")
        state.on_push()
        return web.Response(status=202, text="fetch scheduled")

    async def expect(request: web.Request) -> web.Response | None:
        return await _continue_if_small(request, limits)

    app = web.Application(client_max_size=limits.max_body_bytes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/hooks/git", webhook, expect_handler=expect)
    return app


async def serve(
    app: web.Application, host: str, port: int, limits: HttpLimits | None = None
) -> tuple[web.AppRunner, int]:
    limits = limits or HttpLimits()
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_TIMEOUT,
        # An idle keep-alive connection holds a descriptor like a slow one: the same deadline.
        keepalive_timeout=limits.header_timeout,
        lingering_time=LINGER,
        auto_decompress=False,  # the signature covers the bytes sent; nothing is unpacked
    )
    await runner.setup()
    site = GuardedSite(
        runner,
        host,
        port,
        max_connections=limits.max_connections,
        header_timeout=limits.header_timeout,
    )
    await site.start()
    return runner, site.port
