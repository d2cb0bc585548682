"""The live ClusterVersion/version through kubernetes-asyncio: get, server-side apply, and the
self-healing watch the runtime follows, whose newest object a cycle reads instead of a GET
while the watch is current. I/O adapter implementing the `Cluster` port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from agent.adapters.credentials import Credentials, CredentialSource
from agent.adapters.events import EventRecorder
from agent.adapters.served_schema import OPENAPI_PATH, schema_from_answer
from agent.engine.ports import JsonObject
from agent.errors import (
    ApplyConflictError,
    ForbiddenError,
    InvalidObjectError,
    KubeError,
    UnauthorizedError,
)
from agent.model.clusterversion_api import ServedSchema

GROUP, VERSION, PLURAL, NAME = "config.openshift.io", "v1", "clusterversions", "version"
API_VERSION, KIND = f"{GROUP}/{VERSION}", "ClusterVersion"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_SELECTOR = f"metadata.name={NAME}"
# Since 32.0.0 the client has no default timeout: a dead TCP connection would wait forever.
REQUEST_TIMEOUT = (10, 60)
WATCH_TIMEOUT_SECONDS = 300
# A watch is quiet between events; allow a little more than the server's own timeout.
WATCH_READ_SLACK = 30
APPLY_ATTEMPTS = 4  # one request plus three retries after 429 Too Many Requests
MAX_RETRY_AFTER = 10.0  # a misbehaving server must not park a reconcile cycle for minutes
BACKOFF_BASE = 0.2
# The watch is how a change made while the API server was away is seen once it is back: one
# request, so retrying it every few seconds at most costs nothing and keeps that delay short.
WATCH_BACKOFF_CAP = 5.0
MESSAGE_LIMIT = 500  # server messages can echo the request; keep errors short
_MANAGER = re.compile(r'conflict with "([^"]*)"')
# Failures of the connection itself (refused, reset, TLS, read timeout): always worth a retry.
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

# An apply answered so may mean the served schema changed (a field it no longer declares is a
# 500 "field not declared in schema"; a CRD being replaced, a 404): read it again.
_SCHEMA_MAY_HAVE_CHANGED = (404, 500)

Call = Callable[..., Awaitable[Any]]
_LOG = logging.getLogger("cvsync.kube")


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]


class KubeCluster:
    """ClusterVersion/version on one API server, as plain dicts; close() when done."""

    def __init__(
        self,
        api: Any,
        *,
        field_manager: str = "cvsync",
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        backoff_cap: float = 30.0,
    ) -> None:
        self._api = api
        self._custom: Any = client.CustomObjectsApi(api)
        self._field_manager = field_manager
        self._watch_timeout = watch_timeout_seconds
        self._backoff_cap = backoff_cap
        self.watch_restarts = 0  # every re-watch or relist after the first; exported as a metric
        self._served: ServedSchema | None = None  # kept until the server may have changed it
        # The object as the watch last delivered it (None is an answer too: no object), and
        # whether the watch vouches for it: a list or an event arrived since the last break.
        self._watched: JsonObject | None = None
        self._watch_current = False
        # Our own apply's answer, newer than what the watch delivered until its event arrives.
        self._applied: JsonObject | None = None
        # Whether the operator answers spec changes (its observedGeneration was seen moving
        # up, and it has not since left one unanswered past a wait), and a flag each delivery
        # raises.
        self._operator_answers = False
        self._delivered = asyncio.Event()
        # For people: the kubeconfig's name for the cluster, else the server's URL.
        self.name = str(api.configuration.host)

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        field_manager: str = "cvsync",
        watch_timeout_seconds: int = WATCH_TIMEOUT_SECONDS,
        backoff_cap: float = 30.0,
    ) -> KubeCluster:
        credentials = await Credentials.load(CredentialSource(kubeconfig, context, in_cluster))
        cluster = cls(
            credentials.client(),
            field_manager=field_manager,
            watch_timeout_seconds=watch_timeout_seconds,
            backoff_cap=backoff_cap,
        )
        cluster.name = credentials.cluster_name
        return cluster

    async def close(self) -> None:
        await self._api.close()

    def events(self, namespace: str) -> EventRecorder:
        """An Event recorder on the same connection, writing into `namespace`."""
        return EventRecorder(self._api, namespace)

    @property
    def operator_answers(self) -> bool:
        """Whether a takeover waits for the operator's answer to the edit it takes back."""
        return self._operator_answers

    @property
    def watch_current(self) -> bool:
        """Whether `live()` answers from the watch (no request) right now."""
        return self._watch_current

    # Requests.
    async def live(self) -> JsonObject | None:
        """The object as it stands: the newest the watch delivered (or our own apply answered)
        while the watch is current, without a request; otherwise a GET. Treat it as read-only:
        the watch's consumer holds the same dict."""
        if self._watch_current:
            return self._watched if self._applied is None else self._applied
        return await self.get()

    async def get(self) -> JsonObject | None:
        reply = await self._send(
            self._custom.get_cluster_custom_object, GROUP, VERSION, PLURAL, NAME
        )
        if reply.status == 404:
            return None
        return _object_or_raise("get", reply)

    async def apply(self, body: JsonObject, *, force: bool, dry_run: bool) -> JsonObject:
        """Server-side apply as our field manager; retries only 429, honouring Retry-After."""
        options: dict[str, Any] = {
            "field_manager": self._field_manager,
            # Without it the body goes out as a JSON patch and a real server answers 400.
            "_content_type": APPLY_PATCH,
        }
        if force:
            options["force"] = True
        if dry_run:
            options["dry_run"] = "All"
        attempt = 0
        while True:
            attempt += 1
            reply = await self._send(
                self._custom.patch_cluster_custom_object,
                GROUP,
                VERSION,
                PLURAL,
                NAME,
                body,
                **options,
            )
            if reply.status in _SCHEMA_MAY_HAVE_CHANGED:
                self._served = None
            if reply.status != 429 or attempt >= APPLY_ATTEMPTS:
                applied = _object_or_raise("apply", reply)
                if not dry_run:
                    # The object as stored now: newer than any event still on its way.
                    self._applied = applied
                return applied
            await asyncio.sleep(self._retry_after(reply, attempt))

    async def served_schema(self) -> ServedSchema:
        """What the server's ClusterVersion schema declares, from its OpenAPI v3 document
        (any authenticated user may read it: the system:discovery role). Read once, and again
        after an apply answered 404 or 500 or a watch that had to reconnect; an answer a retry
        may change is not kept. Never raises."""
        if self._served is not None:
            return self._served
        try:
            reply = await self._send(
                self._api.call_api,
                OPENAPI_PATH,
                "GET",
                header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
        except KubeError as exc:
            found, lasting = ServedSchema.unreadable(exc.message), False
        else:
            found, lasting = schema_from_answer(reply.status, reply.body)
        if found.problem:
            _LOG.warning("%s; optional fields such as acceptRisks are not sent", found.describe())
        else:
            _LOG.info("%s", found.describe())
        if lasting:
            self._served = found
        return found

    async def _send(self, call: Call, *args: Any, **options: Any) -> _Reply:
        """One request with the raw body: the generated client decodes a 201 to None."""
        try:
            response = await call(
                *args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT, **options
            )
            async with response:
                return _Reply(response.status, await response.read(), dict(response.headers))
        except _TRANSPORT_ERRORS as exc:
            raise _transport_error(exc) from exc

    def _retry_after(self, reply: _Reply, attempt: int) -> float:
        try:
            seconds = float(reply.headers.get("Retry-After", ""))
        except ValueError:  # absent, or an HTTP date: fall back to our own backoff
            return self._backoff(attempt)
        return max(0.0, min(seconds, MAX_RETRY_AFTER))

    def _backoff(self, attempt: int, cap: float = float("inf")) -> float:
        """Full jitter: spreads the retries of many agents after a shared outage."""
        ceiling = min(self._backoff_cap, cap, BACKOFF_BASE * 2 ** min(attempt, 30))
        return random.uniform(0, ceiling)

    # Watch.
    async def watch(self) -> AsyncGenerator[JsonObject | None, None]:
        """Yield the object (None once deleted) now and after every change, until closed.

        List, then watch from the list's resourceVersion; a timed-out or closed stream resumes
        from the last version seen (bookmarks move it on); 410 Gone relists, and so do
        connection errors, 401, 429 and 5xx, after a backoff, forever (the client re-reads
        rotated credentials). Other errors (403...) are raised. While it runs, `live()` answers from
        it; from a break until the next list or event, and once closed, `live()` GETs.
        """
        try:
            async for current in self._follow():
                yield current
        finally:
            self._watch_current = False

    async def _follow(self) -> AsyncGenerator[JsonObject | None, None]:
        version: str | None = None  # None: the next step is a list
        yielded: tuple[bool, str, str] | None = None  # (exists, uid, version) last given out
        failures = 0
        while True:
            error: KubeError | None = None
            try:
                if version is None:
                    current, version = await self._list()
                    failures = 0
                    self._applied = None  # a list is the whole truth
                    self._seen(current)
                    seen = _identity(current)
                    # After a relist, only a real change is news to the consumer.
                    if seen != yielded:
                        yielded = seen
                        yield current
                received = False
                async with watch.Watch() as events:
                    stream = events.stream(
                        self._custom.list_cluster_custom_object,
                        GROUP,
                        VERSION,
                        PLURAL,
                        field_selector=FIELD_SELECTOR,
                        resource_version=version,
                        allow_watch_bookmarks=True,
                        timeout_seconds=self._watch_timeout,
                        _request_timeout=(
                            REQUEST_TIMEOUT[0],
                            self._watch_timeout + WATCH_READ_SLACK,
                        ),
                    )
                    async for event in stream:
                        kind, raw = _parse_event(event)
                        received, failures = True, 0
                        version = str(raw["metadata"]["resourceVersion"])
                        if kind == "BOOKMARK":
                            # Nothing was missed up to this version: what we hold is current.
                            self._watch_current = True
                            continue
                        current = None if kind == "DELETED" else _complete(raw)
                        self._seen(current)
                        yielded = _identity(current)
                        yield current
                # The server ended the stream (timeoutSeconds, or it shut down): resume. A stream
                # that ends before any event, not even a bookmark, gets a backoff so a server
                # that keeps closing at once is not hammered.
                if not received:
                    error = KubeError("the watch ended before any event")
            except ApiException as exc:
                if exc.status != 410:  # 410: history compacted past our version
                    error = _from_api_exception(exc)
                version, failed = None, True
            except _TRANSPORT_ERRORS as exc:
                error, version, failed = _transport_error(exc), None, True
            except KubeError as exc:
                error, version, failed = exc, None, True
            else:
                failed = False
            self.watch_restarts += 1
            if failed:
                # Relist, as client-go's reflector does after a failed watch: changes made
                # meanwhile reach the consumer even from a server restarted empty (whose
                # versions start again below ours, so a resumed watch would skip them).
                # Until the list, cycles GET.
                self._watch_current, self._applied = False, None
            if error is not None:
                # A reconnect may reach a server restarted with another schema (a feature
                # set enabled restarts the API servers).
                self._served = None
                if not error.retryable:
                    raise error
                failures += 1
                await asyncio.sleep(self._backoff(failures, WATCH_BACKOFF_CAP))

    def _seen(self, watched: JsonObject | None) -> None:
        """What the watch delivered; our apply's answer stays in front of it while it is
        newer (the watch has not caught up with that apply yet)."""
        before = _observed_generation(self._watched)
        after = _observed_generation(watched)
        if before is not None and after is not None and after > before:
            self._operator_answers = True
        self._watched, self._watch_current = watched, True
        if self._applied is not None and not _older(watched, self._applied):
            self._applied = None
        self._delivered.set()

    async def answered(self, live: JsonObject, within: float) -> JsonObject:
        generation = (live.get("metadata") or {}).get("generation")
        observed = _observed_generation(live)
        if not isinstance(generation, int) or observed is None or observed >= generation:
            return live
        if not self._operator_answers:
            return live
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._watch_current:
            newest = self._watched
            if newest is not None and (_observed_generation(newest) or 0) >= generation:
                return newest
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._delivered.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._delivered.wait()
        # No answer in time: later changes are not held for it until it answers again.
        self._operator_answers = False
        return live

    async def _list(self) -> tuple[JsonObject | None, str]:
        reply = await self._send(
            self._custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            PLURAL,
            field_selector=FIELD_SELECTOR,
        )
        listed = _object_or_raise("list", reply)
        items = listed.get("items") or []
        current = _complete(items[0]) if items else None
        return current, str(listed["metadata"]["resourceVersion"])


# Conversions: plain dicts out, cvsync's errors out, never a library type.
def _complete(obj: JsonObject) -> JsonObject:
    """List items may leave out apiVersion and kind; the core always gets a whole object."""
    obj.setdefault("apiVersion", API_VERSION)
    obj.setdefault("kind", KIND)
    return obj


def _older(seen: JsonObject | None, kept: JsonObject | None) -> bool:
    """True when both are objects with numeric resourceVersions and `seen` has the lower one
    (etcd's revisions order writes; an opaque version is never compared)."""
    if seen is None or kept is None:
        return False
    first, second = _version(seen), _version(kept)
    return first.isdigit() and second.isdigit() and int(first) < int(second)


def _version(obj: JsonObject) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


def _identity(obj: JsonObject | None) -> tuple[bool, str, str]:
    """Which object, in which version: the uid tells a recreated object (or a server
    restarted empty, whose versions count again from the start) from the one seen before."""
    if obj is None:
        return (False, "", "")
    return (True, str(obj.get("metadata", {}).get("uid", "")), _version(obj))


def _parse_event(event: Any) -> tuple[str, JsonObject]:
    # The library hands a line it cannot decode back as a string (a torn stream).
    if not isinstance(event, dict) or not isinstance(event.get("raw_object"), dict):
        raise KubeError("the watch stream carried an undecodable event")
    raw: JsonObject = event["raw_object"]
    if "resourceVersion" not in raw.get("metadata", {}):
        raise KubeError("a watch event carried no resourceVersion")
    return str(event.get("type", "")), raw


def _object_or_raise(verb: str, reply: _Reply) -> JsonObject:
    if reply.status >= 400:
        raise _http_error(verb, reply.status, reply.body)
    try:
        decoded = json.loads(reply.body)
    except ValueError as exc:
        raise KubeError(
            f"{verb} {KIND}/{NAME}: the answer is not JSON", status=reply.status
        ) from exc
    if not isinstance(decoded, dict):
        raise KubeError(f"{verb} {KIND}/{NAME}: the answer is not an object", status=reply.status)
    return decoded


def _http_error(verb: str, status: int, body: bytes) -> KubeError:
    """A Kubernetes Status answer as cvsync's error, classified for retry."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    document: JsonObject = decoded if isinstance(decoded, dict) else {}
    detail = document.get("message") or body.decode("utf-8", "replace").strip() or f"HTTP {status}"
    message = _truncate(f"{verb} {KIND}/{NAME}: {detail}")
    details = document.get("details")
    causes = [c for c in (details or {}).get("causes") or [] if isinstance(c, dict)]
    if status == 409 and any(c.get("reason") == "FieldManagerConflict" for c in causes):
        conflicts = tuple((str(c.get("field", "")), _manager(c)) for c in causes)
        # The server names an Update owner with its API version ("... using v1"), an
        # applier without one.
        appliers = frozenset(
            _manager(c) for c in causes if " using " not in str(c.get("message", ""))
        )
        return ApplyConflictError(message, conflicts, appliers)
    if status == 401:
        return UnauthorizedError(message)
    if status == 403:
        return ForbiddenError(message)
    if status == 422:
        found = tuple((str(c.get("field", "")), str(c.get("message", ""))) for c in causes)
        return InvalidObjectError(message, found)
    # 409 without field managers is a concurrent write: the next cycle sees the new object.
    retryable = status in (409, 429) or status >= 500
    return KubeError(message, status=status, retryable=retryable)


def _manager(cause: JsonObject) -> str:
    # 'conflict with "oc"' or 'conflict with "oc" using config.openshift.io/v1'
    text = str(cause.get("message", ""))
    found = _MANAGER.search(text)
    return found.group(1) if found else text


def _from_api_exception(exc: ApiException) -> KubeError:
    """Errors the watch iterator raises: a status and 'Reason: message', with no body."""
    status = int(exc.status or 0)
    if exc.body:
        raw = exc.body if isinstance(exc.body, bytes) else str(exc.body).encode()
        return _http_error("watch", status, raw)
    body = json.dumps({"message": str(exc.reason or "")}).encode()
    return _http_error("watch", status, body)


def _transport_error(exc: BaseException) -> KubeError:
    detail = str(exc) or type(exc).__name__
    return KubeError(_truncate(f"cannot reach the API server: {detail}"), retryable=True)


def _truncate(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _observed_generation(obj: JsonObject | None) -> int | None:
    found = ((obj or {}).get("status") or {}).get("observedGeneration")
    return found if isinstance(found, int) else None
