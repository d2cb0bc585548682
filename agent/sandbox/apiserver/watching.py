"""WATCH over HTTP: a chunked stream of JSON events (ADDED, MODIFIED, DELETED, BOOKMARK,
ERROR), replayed from a resourceVersion, ended by timeoutSeconds, a fault or a stop.

I/O: writes to one streaming response.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Protocol

from aiohttp import web

from agent.sandbox.apiserver import selectors, statuses, tables
from agent.sandbox.apiserver.faults import Faults
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.apiserver.store import ChangeEvent, ResourceVersionGoneError, Store


class WatchTimings(Protocol):
    @property
    def default_watch_timeout(self) -> float: ...

    @property
    def bookmark_interval(self) -> float: ...


class Watched(Protocol):
    """What a watch reads from the running sandbox (the Sandbox class is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def faults(self) -> Faults: ...

    @property
    def options(self) -> WatchTimings: ...


def _event_line(event_type: str, obj: Any) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


async def stream_watch(
    request: web.Request, sandbox: Watched, target: Target
) -> web.StreamResponse:
    rt, query = target.resource, request.query
    requested = query.get("resourceVersion", "")
    since = None if requested in ("", "0") else int(requested) if requested.isdigit() else -1
    if since == -1:
        raise statuses.bad_request(f'resourceVersion: Invalid value: "{requested}"')
    fields = selectors.parse(query.get("fieldSelector", ""), rt)
    name = fields.name or target.name
    timeout = float(query.get("timeoutSeconds") or 0) or sandbox.options.default_watch_timeout * (
        1 + random.random()
    )
    bookmarks = query.get("allowWatchBookmarks", "") in ("true", "True", "1")
    as_table = tables.wants_table(request.headers.get("Accept", ""))

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    if sandbox.faults.take_gone():
        await response.write(
            _event_line("ERROR", statuses.expired(since or 0, sandbox.store.resource_version))
        )
        return response
    try:
        watcher = sandbox.store.watch(rt.id, target.namespace, name, since)
    except ResourceVersionGoneError as exc:
        await response.write(_event_line("ERROR", statuses.expired(exc.requested, exc.oldest)))
        return response

    def shaped(event: ChangeEvent) -> Any:
        if not as_table:
            return event.object
        return tables.table(
            rt, [event.object], str(event.resource_version), query.get("includeObject", "Object")
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while (remaining := deadline - loop.time()) > 0:
            wait = min(remaining, sandbox.options.bookmark_interval) if bookmarks else remaining
            try:
                async with asyncio.timeout(wait):  # not wait_for: it can lose a cancellation
                    event = await watcher.queue.get()
            except TimeoutError:
                if bookmarks and deadline - loop.time() > 0:
                    bookmark = {
                        "kind": rt.kind,
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(sandbox.store.resource_version)},
                    }
                    await response.write(_event_line("BOOKMARK", bookmark))
                continue
            if event is None:
                break
            if not fields.matches(event.object):
                continue
            await response.write(_event_line(event.type, shaped(event)))
    except ConnectionResetError:
        pass  # the client went away
    finally:
        sandbox.store.stop_watching(watcher)
    return response
