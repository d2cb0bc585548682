"""The listener in front of cvsync's aiohttp server: it accepts connections itself, so that
slow, idle or too many clients and a shortage of file descriptors cannot stop the agent.

I/O adapter. Why not aiohttp's knobs alone: aiohttp caps neither connections nor the time
a request's headers take (its keepalive_timeout runs between requests; only its newest
releases, aio-libs/aiohttp#13681, start it before the first one), and asyncio's own accept
loop, out of file descriptors, logs an error per attempt (on Python 3.11 once per pending
client, every loop turn) after handing every descriptor to clients, none left for the API
server and git. So this module runs the accept loop: it keeps FD_RESERVE descriptors free,
answers 503 beyond the cap, gives each connection a deadline for its first request's
headers (aiohttp's keepalive_timeout, set to the same value, covers every later request)
and logs each condition once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

_LOG = logging.getLogger("cvsync.http")

FD_RESERVE = 64  # descriptors never given to HTTP clients: the API server, git, logs, watches
REFUSAL_SLOTS = 16  # 503 answers in flight at once, on top of the admitted connections
REFUSAL_LINGER = 1.0  # seconds a 503 waits for the client to read it and hang up
ACCEPT_PAUSE = 0.5  # seconds between accept attempts while the process has no descriptor
REPORT_EVERY = 60.0  # seconds between two log lines about the same condition
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_HEADERS_END = (b"\n\r\n", b"\n\n")  # the blank line after the headers (CRLF or bare LF)


def _answer(status: str, text: str) -> bytes:
    body = text.encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


SERVICE_UNAVAILABLE = _answer("503 Service Unavailable", "too many connections; try again\n")
REQUEST_TIMEOUT = _answer("408 Request Timeout", "the request headers came too slowly\n")


def descriptor_limit() -> int | None:
    """The process's soft RLIMIT_NOFILE, or None where it is unlimited or unknown."""
    try:
        import resource  # noqa: PLC0415 - POSIX only

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


@dataclass(frozen=True, slots=True)
class ConnectionBudget:
    connections: int  # admitted at once; one more gets 503
    sockets: int  # admitted and being refused together; past it nothing is accepted


def connection_budget(max_connections: int, fd_limit: int | None) -> ConnectionBudget:
    """How many client sockets the listener may hold, leaving FD_RESERVE descriptors free."""
    if fd_limit is None:
        return ConnectionBudget(max_connections, max_connections + REFUSAL_SLOTS)
    sockets = max(2, fd_limit - FD_RESERVE)
    connections = max(1, min(max_connections, sockets - REFUSAL_SLOTS))
    return ConnectionBudget(connections, min(sockets, connections + REFUSAL_SLOTS))


class Reporter:
    """One warning per condition per REPORT_EVERY seconds, counting what it did not log."""

    def __init__(self, every: float = REPORT_EVERY) -> None:
        self.every = every
        self._last: dict[str, float] = {}
        self._unsaid: dict[str, int] = {}

    def warn(self, condition: str, message: str, **extra: Any) -> None:
        now = time.monotonic()
        last = self._last.get(condition)
        if last is not None and now - last < self.every:
            self._unsaid[condition] = self._unsaid.get(condition, 0) + 1
            return
        self._last[condition] = now
        repeats = self._unsaid.pop(condition, 0)
        _LOG.warning(message, extra={"condition": condition, "repeats": repeats, **extra})


class GuardedSite(web.BaseSite):
    """An aiohttp site on a listener whose accept loop this class runs (see the module doc)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int,
        header_timeout: float,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host, self._port = host, port
        self.header_timeout = header_timeout
        self.fd_limit = descriptor_limit()
        self.budget = connection_budget(max_connections, self.fd_limit)
        self.reporter = Reporter()
        self.connections: set[asyncio.Transport] = set()
        self.refusals: set[asyncio.Transport] = set()
        self._freed = asyncio.Event()
        self._listeners: list[socket.socket] = []
        self._acceptors: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        """The bound port (the one the system chose when asked for port 0)."""
        if not self._listeners:
            return self._port
        return int(self._listeners[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        self._listeners = _listen(self._host, self._port, self._backlog)
        self._acceptors = [
            asyncio.create_task(self._accept(listener), name="http-accept")
            for listener in self._listeners
        ]

    async def stop(self) -> None:
        for task in self._acceptors:
            task.cancel()
        await asyncio.gather(*self._acceptors, return_exceptions=True)
        for listener in self._listeners:
            listener.close()
        for transport in list(self.refusals):
            transport.abort()
        await super().stop()

    def opened(self, transport: asyncio.Transport, *, refused: bool) -> None:
        (self.refusals if refused else self.connections).add(transport)

    def closed(self, transport: asyncio.Transport) -> None:
        self.connections.discard(transport)
        self.refusals.discard(transport)
        self._freed.set()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._until_a_socket_is_free()
            try:
                client, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self.reporter.warn(
                        "descriptors",
                        "out of file descriptors: the HTTP listener accepts nothing for now; "
                        "reconcile cycles go on",
                        error=exc.strerror,
                        connections=len(self.connections),
                        descriptor_limit=self.fd_limit,
                    )
                    await asyncio.sleep(ACCEPT_PAUSE)
                else:  # such as a client gone before its accept: that client only
                    self.reporter.warn("accept", "an HTTP accept failed", error=exc.strerror)
                    await asyncio.sleep(0.01)
                continue
            try:
                await self._take(loop, client)
            except OSError:
                client.close()

    async def _until_a_socket_is_free(self) -> None:
        while len(self.connections) + len(self.refusals) >= self.budget.sockets:
            self._freed.clear()
            await self._freed.wait()

    async def _take(self, loop: asyncio.AbstractEventLoop, client: socket.socket) -> None:
        if len(self.connections) < self.budget.connections:
            server = self._runner.server
            assert server is not None  # the runner is set up before any site starts
            await loop.connect_accepted_socket(
                lambda: _Guarded(self, server(), self.header_timeout), client
            )
            return
        self.reporter.warn(
            "connections",
            "the HTTP connection limit is reached: new connections are answered 503",
            connections=len(self.connections),
            limit=self.budget.connections,
            descriptor_limit=self.fd_limit,
        )
        await loop.connect_accepted_socket(lambda: _Refusal(self), client)


def _listen(host: str, port: int, backlog: int) -> list[socket.socket]:
    """Non-blocking listening sockets on every address `host` resolves to (as asyncio's
    create_server binds them)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    listeners: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, resolved in infos:
            if (family, resolved) in seen:
                continue
            seen.add((family, resolved))
            listener = socket.socket(family, kind, proto)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            address = resolved
            if port == 0 and len(listeners) > 1:  # the same chosen port on every address
                address = (resolved[0], listeners[0].getsockname()[1], *resolved[2:])
            try:
                listener.bind(address)
            except OSError as exc:  # worded as asyncio words it, so callers can tell a bind
                raise OSError(
                    exc.errno,
                    f"error while attempting to bind on address {address!r}: {exc.strerror}",
                ) from None
            listener.listen(backlog)
            listener.setblocking(False)
    except OSError:
        for listener in listeners:
            listener.close()
        raise
    return listeners


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed with a 408 when the headers of its first
    request are not complete within the deadline."""

    def __init__(self, site: GuardedSite, inner: asyncio.Protocol, header_timeout: float) -> None:
        self._site = site
        self._inner = inner
        self._header_timeout = header_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._site.opened(transport, refused=False)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self._header_timeout, self._too_slow)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._deadline is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEADERS_END):
                self._deadline.cancel()
                self._deadline = None
            self._tail = seen[-2:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._inner.connection_lost(exc)
        if self._transport is not None:
            self._site.closed(self._transport)

    def _too_slow(self) -> None:
        self._deadline = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(REQUEST_TIMEOUT)
            self._transport.close()


class _Refusal(asyncio.Protocol):
    """A 503 for a connection past the cap: written at once, then the client's request is
    read and dropped until it hangs up (closing on unread data would reset the connection
    and lose the answer), for REFUSAL_LINGER seconds at most."""

    def __init__(self, site: GuardedSite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._site.opened(transport, refused=True)
        transport.write(SERVICE_UNAVAILABLE)
        with contextlib.suppress(OSError, NotImplementedError):
            transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass  # the request is not served; reading it lets the close be clean

    def eof_received(self) -> bool:
        return False  # the client hung up: close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._site.closed(self._transport)
