"""HTTP/1.1 over a bare socket, for requests no polite client sends: any header bytes,
bodies that lie about their size, a byte at a time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> Answer:
    """One response (status line, headers, a Content-Length body); skips 100 Continue."""
    async with asyncio.timeout(timeout):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if status != 100:
                break
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)


async def exchange(port: int, request: bytes, timeout: float = 5.0) -> Answer:
    """Send `request` as it is on a new connection and read the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await read_answer(reader, timeout)
    finally:
        writer.close()


def request(method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> bytes:
    """A request's bytes; Content-Length is added unless the headers carry one (or chunked)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers]
    if b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Read (and drop) until the server closes the connection, cleanly or with a reset (it
    closes with the client's bytes still unread)."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionResetError:
        pass
