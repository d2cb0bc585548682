"""cvsync's own HTTP endpoints: /healthz, /readyz, /metrics, and the git webhook receiver
(POST /hooks/git, GitHub HMAC-SHA256 signatures or GitLab's token header).

I/O adapter: an aiohttp listener; it only reads state and calls back into the runtime.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agent.metrics import Metrics

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024


def valid_signature(secret: bytes, body: bytes, headers: dict[str, str]) -> bool:
    """GitHub's X-Hub-Signature-256 (HMAC-SHA256 of the body) or GitLab's X-Gitlab-Token."""
    github = headers.get("X-Hub-Signature-256", "")
    if github.startswith("sha256="):
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(github.removeprefix("sha256="), expected)
    gitlab = headers.get("X-Gitlab-Token")
    if gitlab is not None:
        return hmac.compare_digest(gitlab.encode(), secret)
    return False


@dataclass
class HttpState:
    metrics: Metrics
    is_ready: Callable[[], bool]
    on_push: Callable[[], None]
    webhook_secret: bytes | None


def http_application(state: HttpState) -> web.Application:
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
        if state.webhook_secret is None:
            return web.Response(status=404, text="the webhook is not enabled")
        body = await request.read()
        headers = dict(request.headers.items())
        if not valid_signature(state.webhook_secret, body, headers):
            return web.Response(status=401, text="missing or invalid signature")
        state.on_push()
        return web.Response(status=202, text="fetch scheduled")

    app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/hooks/git", webhook)
    return app


async def serve(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server  # aiohttp exposes the bound port only through the server
    sockets = getattr(server, "sockets", None) or []
    bound = int(sockets[0].getsockname()[1]) if sockets else port
    return runner, bound
