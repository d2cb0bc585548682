"""A smart-HTTP git server on 127.0.0.1 for tests: HTTP basic auth in front of `git http-backend`.

Test support; serves the bare repositories under one directory, as a Git host does over HTTPS.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import unquote, urlsplit


class GitHttpServer:
    """Serves `project_root/<name>.git` at `url(name)`; a request must carry the `token` as
    its basic-auth password (and `username`, when one is given)."""

    def __init__(self, project_root: Path, *, token: str, username: str | None = None) -> None:
        self.project_root = project_root
        self.token = token
        self.username = username
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}.git"

    def statuses(self) -> list[int]:
        return [status for _, _, status in self.requests]

    def start(self) -> GitHttpServer:
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GitHttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        owner: GitHttpServer,
    ) -> None:
        super().__init__(address, handler)
        self.owner = owner


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass  # requests are recorded in owner.requests instead of printed

    def _serve(self) -> None:
        owner = self.server.owner
        user = self._authorized_user()
        if user is None:
            owner.requests.append((self.command, self.path, 401))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._read_body()
        parts = urlsplit(self.path)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(owner.project_root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(owner.project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.0",
            "PATH_INFO": unquote(parts.path),
            "QUERY_STRING": parts.query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,  # http-backend enables receive-pack only for a known user
            "REMOTE_ADDR": self.client_address[0],
        }
        if protocol := self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = protocol  # protocol v2 is asked for in this header
        if encoding := self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = encoding
        git = shutil.which("git") or "git"
        with subprocess.Popen(
            [git, "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        ) as proc:
            assert proc.stdin is not None
            assert proc.stdout is not None
            # Feed the body from another thread: the backend may answer before it read it all.
            feeder = threading.Thread(target=_feed, args=(proc.stdin, body), daemon=True)
            feeder.start()
            status, reason, headers = _read_cgi_headers(proc.stdout)
            owner.requests.append((self.command, self.path, status))
            self.send_response(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            shutil.copyfileobj(proc.stdout, self.wfile)  # HTTP/1.0: the body ends at close
            feeder.join()

    def _authorized_user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        owner = self.server.owner
        if not hmac.compare_digest(password.encode(), owner.token.encode()):
            return None
        if owner.username is not None and user != owner.username:
            return None
        return user or "anonymous"

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self) -> bytes:
        # git switches to chunked uploads for bodies larger than http.postBuffer.
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers, then the blank line
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk


def _feed(stdin: IO[bytes], body: bytes) -> None:
    try:
        stdin.write(body)
    except BrokenPipeError:
        pass
    finally:
        stdin.close()


def _read_cgi_headers(stdout: IO[bytes]) -> tuple[int, str, list[tuple[str, str]]]:
    """The CGI response head: `Status: 404 Not Found` and plain headers, up to a blank line."""
    status, reason = 200, "OK"
    headers: list[tuple[str, str]] = []
    while True:
        text = stdout.readline().decode("latin-1").rstrip("\r\n")
        if not text:
            return status, reason, headers
        name, _, value = text.partition(":")
        if name.strip().lower() == "status":
            code, _, reason = value.strip().partition(" ")
            status = int(code)
        else:
            headers.append((name.strip(), value.strip()))
