"""Kubernetes credentials that follow their files: a kubeconfig, or the in-cluster token and
CA, re-read when a file changes on disk, after a 401 and after a failed TLS verification.

I/O: reads the credential files; API clients built here switch to what was re-read. Logs one
line per reload naming what changed (server, CA, token, client certificate), never a value.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client import rest
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import (
    SERVICE_CERT_FILENAME,
    SERVICE_TOKEN_FILENAME,
)
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from agent.adapters.kubeconfig import DEFAULT_KUBECONFIG, kubeconfig_entries, read_kubeconfigs
from agent.errors import KubeError

_LOG = logging.getLogger("cvsync.credentials")
# Failures a fresh read of the credentials can cure: the server now wants a new token, or it
# presents a certificate from a CA the kubeconfig (or the service account's ca.crt) now holds.
_TLS_VERIFICATION_ERRORS = (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
_UNAUTHORIZED = 401
_TLS_PARTS = frozenset({"server", "CA", "client certificate"})
# Files a kubeconfig may point at instead of carrying the data inline.
_REFERENCED_FILES = ("tokenFile", "certificate-authority", "client-certificate", "client-key")

FileSignature = tuple[int, int, int]  # (inode, size, mtime in ns): changes on every rewrite


@dataclass(frozen=True, slots=True)
class CredentialSource:
    """Where the credentials come from: a kubeconfig (None: $KUBECONFIG or ~/.kube/config)
    and context, or the pod's service account."""

    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False

    def kubeconfig_paths(self) -> str:
        # The library reads KUBECONFIG when it is imported; read it now instead.
        return str(self.kubeconfig) if self.kubeconfig else os.environ.get("KUBECONFIG", "")

    def describe(self) -> str:
        if self.in_cluster:
            return "the in-cluster service account"
        return f"kubeconfig {self.kubeconfig_paths() or DEFAULT_KUBECONFIG}"


async def load_configuration(source: CredentialSource) -> tuple[client.Configuration, str]:
    """Load credentials into a private Configuration (never the library's global one), and
    name the cluster they reach: the kubeconfig's name for it, else the server's URL."""
    configuration = client.Configuration()
    name: str | None = None
    try:
        if source.in_cluster:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            # kubectl's own one-line answers for a missing or broken file or context first.
            files = read_kubeconfigs(source.kubeconfig_paths())
            files.check_context(source.context)
            name = files.cluster_name(source.context)
            await config.load_kube_config(
                config_file=files.config_file,
                context=source.context,
                client_configuration=configuration,
                # Never rewrite the user's kubeconfig (the library saves refreshed tokens).
                persist_config=False,
            )
    except (ConfigException, OSError, ValueError) as exc:
        hint = "; --in-cluster works only in a pod" if source.in_cluster else ""
        raise KubeError(
            f"cannot load Kubernetes credentials from {source.describe()}: {exc}{hint}",
            retryable=False,
        ) from exc
    return configuration, name or str(configuration.host)


class Credentials:
    """The current credentials of one source, shared by every client built with `client()`;
    `generation` counts the reloads that changed something."""

    def __init__(
        self,
        source: CredentialSource,
        configuration: client.Configuration,
        files: Mapping[Path, FileSignature | None],
        cluster_name: str = "",
    ) -> None:
        self.source = source
        self.configuration = configuration
        self.cluster_name = cluster_name or str(configuration.host)  # for people, not a key
        self.generation = 0
        self.tls_generation = 0  # the reloads that changed what a TLS connection is made with
        self._digests = _digests(configuration)
        self._files = dict(files)
        self._failed: str | None = None  # the last reload failure logged, so it is logged once
        self._lock = asyncio.Lock()

    @classmethod
    async def load(cls, source: CredentialSource) -> Credentials:
        files = _signatures(_credential_files(source))
        configuration, name = await load_configuration(source)
        return cls(source, configuration, files, name)

    def client(self) -> FollowingApiClient:
        """A new API client (a connection pool of its own) that follows these credentials."""
        return FollowingApiClient(self)

    async def follow_files(self) -> None:
        """Re-read the credentials when one of their files changed since the last read."""
        if any(_signature(path) != seen for path, seen in self._files.items()):
            await self.reload(self.generation, "a credential file changed")

    async def reload(self, seen: int, why: str) -> bool:
        """Re-read the credentials; True when they are newer than generation `seen` (changed
        now, or by a reload another request made meanwhile), so a retry can help."""
        async with self._lock:
            if self.generation != seen:
                return True
            files = _signatures(_credential_files(self.source))
            try:
                configuration, _ = await load_configuration(self.source)
            except KubeError as exc:
                # A file caught half-written fails to load: keep the old credentials, and read
                # again on the next request (the signatures stay the old ones).
                failure = f"{type(exc.__cause__).__name__} after {why}"
                if failure != self._failed:
                    self._failed = failure
                    _LOG.warning(
                        "cannot re-read the Kubernetes credentials from %s (%s); "
                        "keeping the current ones",
                        self.source.describe(),
                        failure,
                    )
                return False
            self._files, self._failed = files, None
            digests = _digests(configuration)
            changed = [
                part for part, digest in digests.items() if self._digests.get(part) != digest
            ]
            if not changed:
                return False
            self.configuration, self._digests = configuration, digests
            self.generation += 1
            if set(changed) & _TLS_PARTS:
                self.tls_generation += 1
            _LOG.info(
                "reloaded the Kubernetes credentials from %s after %s: new %s",
                self.source.describe(),
                why,
                ", ".join(changed),
                extra={"reason": "CredentialsReloaded", "changed": changed},
            )
            return True


class FollowingApiClient(client.ApiClient):
    """An ApiClient on the newest credentials of its `Credentials`: a request answered 401,
    or refused by TLS verification, has them re-read and, when they changed, goes out once
    more with them; a new CA or client certificate gets a fresh connection pool."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(credentials.configuration)
        self.credentials = credentials
        self._generation = credentials.generation
        self._tls_generation = credentials.tls_generation
        # Pools replaced by a reload. Closing one under a streaming watch leaves the watch's
        # read waiting for data that never comes (aiohttp 3.14), so they close with the
        # client; a watch on one ends on its own (timeoutSeconds) and resumes on the new.
        self._replaced: list[rest.RESTClientObject] = []

    async def close(self) -> None:
        await super().close()
        for pool in self._replaced:
            await pool.close()

    def call_api(self, *args: Any, **options: Any) -> Any:
        # The generated API methods return this call's awaitable; cvsync never uses async_req.
        if options.get("async_req"):
            return super().call_api(*args, **options)
        return self._call_following(*args, **options)

    async def _call_following(self, *args: Any, **options: Any) -> Any:
        credentials = self.credentials
        await credentials.follow_files()
        self._catch_up()
        seen = self._generation
        try:
            answer = await super().call_api(*args, **options)
        except ApiException as exc:
            if exc.status != _UNAUTHORIZED or not await credentials.reload(seen, "401"):
                raise
        except _TLS_VERIFICATION_ERRORS:
            if not await credentials.reload(seen, "a failed TLS verification"):
                raise
        else:
            # Unpreloaded (raw) answers, as watches and cvsync's own requests ask for, carry
            # their status instead of raising it.
            unauthorized = isinstance(answer, aiohttp.ClientResponse) and (
                answer.status == _UNAUTHORIZED
            )
            if not unauthorized or not await credentials.reload(seen, "401"):
                return answer
            answer.release()
        self._catch_up()
        return await super().call_api(*args, **options)

    def _catch_up(self) -> None:
        """Switch to the credentials' newest configuration: a token is read from it for
        every request; a new CA, client certificate or server needs a new TLS context."""
        credentials = self.credentials
        if self._generation == credentials.generation:
            return
        self._generation = credentials.generation
        self.configuration = credentials.configuration
        if self._tls_generation != credentials.tls_generation:
            self._tls_generation = credentials.tls_generation
            self._replaced.append(self.rest_client)
            self.rest_client = rest.RESTClientObject(self.configuration)


def _digests(configuration: client.Configuration) -> dict[str, str]:
    """One digest per part of the credentials, to tell which changed without keeping or
    showing any of them."""
    parts = {
        "server": str(configuration.host).encode(),
        "CA": _file_bytes(configuration.ssl_ca_cert),
        "token": str(configuration.api_key.get("BearerToken", "")).encode(),
        "client certificate": _file_bytes(configuration.cert_file)
        + _file_bytes(configuration.key_file),
    }
    return {part: hashlib.sha256(value).hexdigest() for part, value in parts.items()}


def _file_bytes(path: str | None) -> bytes:
    if not path:
        return b""
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _credential_files(source: CredentialSource) -> list[Path]:
    """The files whose rewrite means new credentials: the service account's token and CA, or
    the kubeconfig files and every token, CA and client certificate file they point at."""
    if source.in_cluster:
        return [Path(SERVICE_TOKEN_FILENAME), Path(SERVICE_CERT_FILENAME)]
    files: list[Path] = []
    for kubeconfig in kubeconfig_entries(source.kubeconfig_paths()):
        files.append(kubeconfig)
        files.extend(_referenced_files(kubeconfig))
    return files


def _referenced_files(kubeconfig: Path) -> list[Path]:
    try:
        document = YAML(typ="safe").load(kubeconfig.read_text())
    except (OSError, ValueError, YAMLError):
        return []
    if not isinstance(document, dict):
        return []
    found: list[Path] = []
    for section, key in (("users", "user"), ("clusters", "cluster")):
        for named in document.get(section) or []:
            body = named.get(key) if isinstance(named, dict) else None
            for field in _REFERENCED_FILES:
                if isinstance(body, dict) and isinstance(body.get(field), str):
                    found.append(kubeconfig.parent / Path(body[field]).expanduser())
    return found


def _signatures(paths: list[Path]) -> dict[Path, FileSignature | None]:
    return {path: _signature(path) for path in paths}


def _signature(path: Path) -> FileSignature | None:
    try:
        stat = path.stat()  # follows symlinks: the kubelet swaps a ..data link atomically
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
