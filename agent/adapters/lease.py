"""The coordination.k8s.io/v1 Lease leader election runs on: read, create and replace it
under resourceVersion concurrency (409: another replica wrote first).

I/O adapter on kubernetes-asyncio's CoordinationV1Api.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from agent.adapters.credentials import Credentials, CredentialSource
from agent.engine.leadership import LeaseRecord
from agent.engine.ports import JsonObject
from agent.errors import KubeError

REQUEST_TIMEOUT = (5, 10)
_TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


def micro_time(now: datetime | None = None) -> str:
    """A Kubernetes MicroTime: RFC 3339 with microseconds, in UTC."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LostRaceError(KubeError):
    """409: the Lease changed (or appeared) since we read it; another replica wrote first."""


@dataclass(frozen=True, slots=True)
class StoredLease:
    record: LeaseRecord
    body: JsonObject  # the object as read, written back whole with its resourceVersion


class LeaseStore:
    """One Lease, by namespace and name, on a connection of its own: renews never queue
    behind a reconcile cycle's requests. close() when done."""

    def __init__(self, api: Any, namespace: str, name: str) -> None:
        self._api = api
        self._coordination: Any = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name

    @classmethod
    async def connect(
        cls,
        namespace: str,
        name: str,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        in_cluster: bool = False,
        credentials: Credentials | None = None,
    ) -> LeaseStore:
        """A store on a connection of its own, following `credentials` (shared with the
        other clients, so a rotation is re-read once) or the source given."""
        if credentials is None:
            source = CredentialSource(kubeconfig, context, in_cluster)
            credentials = await Credentials.load(source)
        return cls(credentials.client(), namespace, name)

    async def close(self) -> None:
        await self._api.close()

    async def get(self) -> StoredLease | None:
        status, body = await self._send(
            self._coordination.read_namespaced_lease, self.name, self.namespace
        )
        return None if status == 404 else _stored("get", status, body)

    async def create(self, record: LeaseRecord) -> StoredLease:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": _spec(record),
        }
        return _stored(
            "create",
            *await self._send(self._coordination.create_namespaced_lease, self.namespace, body),
        )

    async def update(self, current: StoredLease, record: LeaseRecord) -> StoredLease:
        """Replace the spec; the server refuses (409) if the Lease changed since `current`."""
        body = copy.deepcopy(current.body)
        body["spec"] = _spec(record)
        return _stored(
            "update",
            *await self._send(
                self._coordination.replace_namespaced_lease, self.name, self.namespace, body
            ),
        )

    async def _send(self, call: Callable[..., Any], *args: Any) -> tuple[int, bytes]:
        try:
            response = await call(*args, _preload_content=False, _request_timeout=REQUEST_TIMEOUT)
            async with response:
                return int(response.status), await response.read()
        except _TRANSPORT_ERRORS as exc:
            detail = str(exc) or type(exc).__name__
            raise KubeError(f"cannot reach the API server: {detail}"[:300]) from exc


def _spec(record: LeaseRecord) -> JsonObject:
    spec: JsonObject = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_duration_seconds,
        "leaseTransitions": record.transitions,
    }
    if record.acquire_time is not None:
        spec["acquireTime"] = record.acquire_time
    if record.renew_time is not None:
        spec["renewTime"] = record.renew_time
    return spec


def _stored(verb: str, status: int, body: bytes) -> StoredLease:
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    document: JsonObject = decoded if isinstance(decoded, dict) else {}
    if status >= 400:
        message = f"{verb} Lease: {str(document.get('message') or f'HTTP {status}')[:300]}"
        if status == 409:
            raise LostRaceError(message, status=status)
        raise KubeError(message, status=status, retryable=status == 429 or status >= 500)
    spec = document.get("spec") or {}
    record = LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=spec.get("acquireTime"),
        renew_time=spec.get("renewTime"),
        transitions=int(spec.get("leaseTransitions") or 0),
    )
    return StoredLease(record, document)
