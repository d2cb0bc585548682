"""The sandbox API server: aiohttp on 127.0.0.1 speaking the Kubernetes wire protocol for
ClusterVersion, Lease, Event and Namespace, with authentication, authorization, watches,
fault injection and request accounting.

I/O: an HTTP(S) listener; the verbs themselves live in `handlers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from agent.sandbox.apiserver import (
    discovery,
    openapi,
    requestinfo,
    routing,
    selectors,
    statuses,
    tables,
    wire,
)
from agent.sandbox.apiserver.access import ADMIN_USER, AccessControl, AccessRequest, Identity
from agent.sandbox.apiserver.admin import admin_application
from agent.sandbox.apiserver.crd_schema import FeatureSet
from agent.sandbox.apiserver.credentials import KeptAccessControl
from agent.sandbox.apiserver.faults import Faults
from agent.sandbox.apiserver.handlers import Api, WriteOptions
from agent.sandbox.apiserver.kubeconfig import write_kubeconfig
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, NAMESPACES
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.apiserver.store import ResourceVersionGoneError, Store
from agent.sandbox.apiserver.tls import (
    SandboxPki,
    create_pki,
    identity_from_peer_certificate,
    load_or_create_pki,
)
from agent.sandbox.apiserver.watching import stream_watch
from agent.sandbox.operator.loop import OPERATOR_MANAGER, run_operator
from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.operator.simulator import OperatorSimulator
from agent.sandbox.operator.update_service import UpdateService

DEFAULT_NAMESPACES = ("default", "kube-system", "openshift-cluster-version", "cvsync")
_UNAUTHENTICATED_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/version"})
# How long stopping waits for a request in flight before cancelling it. aiohttp's default (60 s,
# twice) would hold a restart for up to two minutes when a watch starts as it shuts down.
_SHUTDOWN_GRACE = 1.0


@dataclass
class SandboxOptions:
    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = True
    state_dir: Path | None = None
    work_dir: Path | None = None
    feature_set: FeatureSet = "Default"
    bookmark_interval: float = 60.0
    watch_window: int = 1000
    default_watch_timeout: float = 1800.0
    admin_port: int | None = None  # None: no admin endpoint; 0: a free port
    scenario: str | None = None  # None: a bare API server with no simulated operator
    time_scale: float = 60.0  # simulated seconds per real second
    extra_namespaces: tuple[str, ...] = field(default_factory=tuple)


class Sandbox:
    """A running sandbox API server; use as `async with Sandbox(options) as sandbox:`."""

    def __init__(self, options: SandboxOptions | None = None) -> None:
        self.options = options or SandboxOptions()
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if self.options.work_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="cvsync-sandbox-")
            self.work_dir = Path(self._temp.name)
        else:
            self.work_dir = self.options.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.options.state_dir, self.options.watch_window)
        self.api = Api(self.store, self.options.feature_set)
        # A state directory keeps the PKI and every token and rule too, not only the objects.
        state_dir = self.options.state_dir
        self.access = AccessControl() if state_dir is None else KeptAccessControl.kept_in(state_dir)
        self.faults = Faults()
        self.admin_token = self.access.token_of(ADMIN_USER) or secrets.token_urlsafe(24)
        self.access.add_user(ADMIN_USER, self.admin_token)
        self.pki: SandboxPki | None = None
        if self.options.tls:
            self.pki = (
                create_pki(self.work_dir / "pki")
                if state_dir is None
                else load_or_create_pki(state_dir / "pki")
            )
        self.port = self.options.port
        self._runner: web.AppRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self.admin_port: int | None = None
        self._operator_task: asyncio.Task[None] | None = None
        self.simulator: OperatorSimulator | None = None
        self._seed_namespaces()
        if self.options.scenario is not None:
            self._seed_scenario(self.options.scenario)

    # Lifecycle.
    async def __aenter__(self) -> Sandbox:
        try:
            await self.start()
            if self.options.admin_port is not None:
                self._admin_runner, self.admin_port = await _serve_app(
                    admin_application(self), self.options.host, self.options.admin_port, None,
                    listener="admin endpoint",
                )  # fmt: skip
        except BaseException:
            await self.__aexit__(None, None, None)  # the operator and the API already started
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
            self._admin_runner = None
        if self._temp is not None:
            self._temp.cleanup()

    async def start(self) -> None:
        self.store.fill_watch_cache()
        if self.simulator is not None and self._operator_task is None:
            self._operator_task = asyncio.create_task(
                run_operator(self.store, self.api, self.simulator), name="sandbox-operator"
            )
        app = web.Application(client_max_size=3 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await _serve_app(
            app, self.options.host, self.port, self._ssl_context(), listener="API"
        )

    async def stop(self) -> None:
        if self._operator_task is not None:
            self._operator_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._operator_task
            self._operator_task = None
        self.store.end_all_watches()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def restart(self) -> None:
        """Stop and start on the same port, keeping every object and the resourceVersion."""
        await self.stop()
        await self.start()

    @property
    def url(self) -> str:
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://{self.options.host}:{self.port}"

    def kubeconfig(self, path: Path | None = None, *, user: str = ADMIN_USER) -> Path:
        """Write a kubeconfig for `user` (a bearer token) and return its path."""
        token = self.access.token_for(user)
        target = path or self.work_dir / f"kubeconfig-{user}"
        ca = self.pki.ca.cert if self.pki is not None else None
        return write_kubeconfig(target, self.url, token=token, ca_file=ca)

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.pki is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki.server.cert, self.pki.server.key)
        context.load_verify_locations(self.pki.ca.cert)
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def _seed_namespaces(self) -> None:
        """The namespaces a fresh cluster has, created as the API server's bootstrap does."""
        for name in (*DEFAULT_NAMESPACES, *self.options.extra_namespaces):
            if self.store.get(self.api.key(NAMESPACES, "", name)) is None:
                self.api.create(
                    Target(NAMESPACES),
                    {"metadata": {"name": name}},
                    WriteOptions(manager="kube-apiserver"),
                )

    def _seed_scenario(self, name: str) -> None:
        """Install the scenario's ClusterVersion as an installer and the operator would."""
        scenario = load_scenario(name)
        self.simulator = OperatorSimulator(
            UpdateService.builtin(), knobs=scenario.knobs, time_scale=self.options.time_scale
        )
        target = Target(CLUSTER_VERSIONS, "", "version")
        if self.store.get(self.api.key(CLUSTER_VERSIONS, "", "version")) is not None:
            return  # a state directory already holds the cluster
        obj = scenario.cluster_version
        status = obj.pop("status", None)
        created = self.api.create(target, obj, WriteOptions(manager="cluster-bootstrap"))
        if status is not None:
            body = created.object | {"status": status}
            self.api.replace(
                Target(CLUSTER_VERSIONS, "", "version", "status"),
                body,
                WriteOptions(manager=OPERATOR_MANAGER),
            )

    # Requests.
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._serve(request)
        except ApiError as exc:
            return wire.json_response(exc.body, exc.code, exc.headers)
        except statuses.PageNotFoundError as exc:
            return web.Response(
                text=exc.body,
                status=404,
                content_type="text/plain",
                charset="utf-8",
                headers={"X-Content-Type-Options": "nosniff"},
            )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        identity = self._authenticate(request)
        if path == "/version":
            return wire.json_response(discovery.version_info())
        if identity is None:
            raise statuses.unauthorized()
        info = requestinfo.resolve(request.method, path, request.query)
        if not info.is_resource_request:
            document = self._discovery(path)
            if document is None:
                raise routing.not_served(path)
            return wire.json_response(document)
        # As in the real handler chain: authentication, then the request's attributes,
        # rate limiting, authorization, and only then does a handler look for the resource.
        resource = info.resource + (f"/{info.subresource}" if info.subresource else "")
        self.faults.count(info.verb, resource, identity.user)
        await self._inject_faults(request, info.verb, resource)
        self._authorize(identity, info, resource)
        target = routing.target_for(info)
        verb = wire.served_verb(request.method, info.verb, target)
        return await self._dispatch(request, verb, target)

    def _authenticate(self, request: web.Request) -> Identity | None:
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return self.access.authenticate_token(header.removeprefix("Bearer ").strip())
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        found = identity_from_peer_certificate(peer)
        return Identity(found[0], found[1]) if found else None

    def _authorize(self, identity: Identity, info: requestinfo.RequestInfo, resource: str) -> None:
        ask = AccessRequest(info.verb, info.api_group, resource, info.namespace, info.name)
        if not self.access.authorize(identity, ask):
            raise statuses.forbidden(
                info.api_group, info.resource, info.name, self.access.describe(identity, ask)
            )

    async def _inject_faults(self, request: web.Request, verb: str, resource: str) -> None:
        rule = self.faults.take(verb, resource)
        if rule is None:
            return
        if rule.action == "delay":
            await asyncio.sleep(rule.delay_seconds)
        elif rule.action == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError
        else:
            raise statuses.injected(rule.status, rule.retry_after)

    def _discovery(self, path: str) -> dict[str, Any] | None:
        parts = [part for part in path.split("/") if part]
        if parts == ["api"]:
            return discovery.core_versions(f"{self.options.host}:{self.port}")
        if parts == ["api", "v1"]:
            return discovery.resource_list("", "v1")
        if parts == ["apis"]:
            return discovery.api_groups()
        if parts == ["openapi", "v3"]:
            return openapi.root_index(self.api.feature_set)
        if parts[:2] == ["openapi", "v3"]:
            return openapi.document_for("/".join(parts[2:]), self.api.feature_set)
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.api_group(parts[1])
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.resource_list(parts[1], parts[2])
        return None

    async def _dispatch(
        self, request: web.Request, verb: str, target: Target
    ) -> web.StreamResponse:
        rt = target.resource
        if verb == "watch":
            return await stream_watch(request, self, target)
        if verb == "get":
            found = self.api.get(rt, target.namespace, target.name)
            if tables.wants_table(request.headers.get("Accept", "")):
                include = request.query.get("includeObject", "Metadata")
                return wire.json_response(
                    tables.table(rt, [found], found["metadata"]["resourceVersion"], include)
                )
            return wire.json_response(found)
        if verb == "list":
            return self._list(request, target)
        options = wire.write_options(request)
        if verb == "delete":
            return wire.json_response(
                self.api.delete(rt, target.namespace, target.name, options.dry_run)
            )
        body = await wire.read_body(request)
        if verb == "create":
            result = self.api.create(target, body, options)
        elif verb == "update":
            result = self.api.replace(target, body, options)
        elif verb == "patch":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            result = self.api.patch(target, content_type, body, options)
        else:
            raise statuses.method_not_allowed(request.method)
        return wire.write_response(result)

    def _list(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.resource
        requested = request.query.get("resourceVersion", "")
        if requested not in ("", "0"):
            number = wire.resource_version_number(requested)
            if number > self.store.resource_version:
                raise statuses.too_large_resource_version(number, self.store.resource_version)
            # Without resourceVersionMatch=Exact a list is "not older than" and never 410s.
            if request.query.get("resourceVersionMatch") == "Exact":
                try:
                    self.store.check_not_gone(number)
                except ResourceVersionGoneError as exc:
                    raise ApiError(statuses.expired(exc.requested, exc.oldest)) from exc
        fields = selectors.parse(request.query.get("fieldSelector", ""), rt)
        labels = wire.label_selector(request.query.get("labelSelector", ""))
        items, resource_version = self.api.list(rt, target.namespace, fields.name, labels)
        items = [item for item in items if fields.matches(item)]
        if tables.wants_table(request.headers.get("Accept", "")):
            include = request.query.get("includeObject", "Metadata")
            return wire.json_response(tables.table(rt, items, resource_version, include))
        return wire.json_response(wire.list_body(rt, items, resource_version))


class ListenError(OSError):
    """A listener of the sandbox could not bind its address (in use, say); `errno` says why."""

    def __init__(self, listener: str, host: str, port: int, cause: OSError) -> None:
        super().__init__(cause.errno, f"the {listener} cannot bind {host}:{port}: {cause}")
        self.listener = listener  # "API" or "admin endpoint"
        self.host = host
        self.port = port


async def _serve_app(
    app: web.Application,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    *,
    listener: str,
) -> tuple[web.AppRunner, int]:
    """Start `app` on host:port (0: a free port); return its runner and the bound port."""
    runner = web.AppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_GRACE
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=context)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(listener, host, port, exc) from exc
    server = site._server  # aiohttp exposes the bound port only through the server
    assert isinstance(server, asyncio.base_events.Server)
    return runner, int(server.sockets[0].getsockname()[1])
