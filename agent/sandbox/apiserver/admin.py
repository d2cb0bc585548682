"""The sandbox's admin endpoint, on a port of its own: inject faults, read request counts,
restart the API server, give users exactly the permissions a test needs, rotate their tokens.

I/O: a small aiohttp application guarded by the admin bearer token.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from agent.sandbox.apiserver.access import ADMIN_USER, AccessControl, rules_from_mapping
from agent.sandbox.apiserver.faults import Faults
from agent.sandbox.apiserver.store import Store


class Administered(Protocol):
    """What the admin endpoint changes on a running sandbox (the Sandbox class is one)."""

    admin_token: str
    access: AccessControl
    faults: Faults
    store: Store

    def kubeconfig(self, path: Path | None = None, *, user: str = ADMIN_USER) -> Path: ...

    async def restart(self) -> None: ...


def admin_application(sandbox: Administered) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), sandbox.admin_token.encode()):
            return web.json_response({"error": "Unauthorized"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    @routes.post("/faults")
    async def faults(request: web.Request) -> web.Response:
        spec = await request.json()
        action = spec.get("action")
        verb, resource = spec.get("verb", "*"), spec.get("resource", "*")
        times = int(spec.get("times", 1))
        if action == "fail":
            sandbox.faults.fail(
                verb,
                resource,
                times=times,
                status=int(spec.get("status", 500)),
                retry_after=spec.get("retryAfter"),
            )
        elif action == "reset":
            sandbox.faults.reset_connections(verb, resource, times=times)
        elif action == "delay":
            sandbox.faults.delay(float(spec.get("seconds", 1.0)), verb, resource, times=times)
        elif action == "gone":
            sandbox.faults.gone_on_next_watch(times)
        elif action == "end-watches":
            return web.json_response({"ended": sandbox.store.end_all_watches()})
        elif action == "compact":
            sandbox.store.compact()
        elif action == "clear":
            sandbox.faults.clear()
        else:
            return web.json_response({"error": f"unknown action {action!r}"}, status=400)
        return web.json_response({"ok": True})

    @routes.get("/requests")
    async def requests(_: web.Request) -> web.Response:
        rows = [
            {"verb": verb, "resource": resource, "user": user, "count": count}
            for (verb, resource, user), count in sorted(sandbox.faults.requests.items())
        ]
        log = [
            {"at": w.at, "verb": w.verb, "resource": w.resource, "user": w.user}
            for w in sandbox.faults.write_log
        ]
        return web.json_response(
            {"requests": rows, "writes": sandbox.faults.writes(), "writeLog": log}
        )

    @routes.post("/restart")
    async def restart(_: web.Request) -> web.Response:
        await sandbox.restart()
        return web.json_response({"ok": True, "resourceVersion": sandbox.store.resource_version})

    @routes.put("/users/{user}")
    async def user(request: web.Request) -> web.Response:
        spec = await request.json()
        name = request.match_info["user"]
        path = sandbox.kubeconfig(user=name)
        sandbox.access.set_rules(name, [rules_from_mapping(rule) for rule in spec.get("rules", [])])
        return web.json_response({"user": name, "kubeconfig": str(path)})

    @routes.post("/users/{user}/token")
    async def rotate(request: web.Request) -> web.Response:
        """Revoke the user's token and issue another, as a token rotation does; the user's
        kubeconfig (where PUT /users wrote it) is rewritten with the new one."""
        name = request.match_info["user"]
        if name not in sandbox.access.rules or name == ADMIN_USER:
            return web.json_response({"error": f"cannot rotate the token of {name!r}"}, status=400)
        sandbox.access.rotate_token(name)
        return web.json_response({"user": name, "kubeconfig": str(sandbox.kubeconfig(user=name))})

    app = web.Application(middlewares=[require_token])
    app.add_routes(routes)
    return app
