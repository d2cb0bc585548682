"""Kubernetes Events about the ClusterVersion: applied, drift corrected or reported, apply
conflicts, stalls; a repeat of the same reason and message within the window bumps the
existing Event's count instead of creating another, so a stuck condition never floods.

I/O adapter on kubernetes-asyncio's CoreV1Api; best effort: a refused Event never fails a cycle.

Why core/v1 and not events.k8s.io/v1: both APIs refuse an Event about a cluster-scoped object
outside `default` or `kube-system` unless the reference names the Event's own namespace
(kube-apiserver's ValidateEvent), so the newer API would not lift that rule; core/v1 keeps the
count-bump de-duplication in one merge patch and is what `oc get events -n NS` and
`oc describe` read. Like the cluster-version operator, whose ClusterVersion Events live in
openshift-cluster-version, the reference carries the namespace the Events are written to.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

_LOG = logging.getLogger(__name__)
DEDUP_WINDOW = 600.0  # seconds during which one reason+message stays one Event
# The (reason, message) pairs remembered at most. Each bad commit's message names its own
# revision, so a stream of them is a stream of new pairs: past the cap the oldest is
# forgotten, and its next repeat only creates a new Event instead of bumping a count.
# client-go bounds its EventCorrelator's cache the same way (an LRU of 4096 entries,
# k8s.io/client-go/tools/record/events_cache.go); the Events about one object need fewer.
DEDUP_MAX_KEYS = 256
MESSAGE_LIMIT = 1024


@dataclass
class _Recorded:
    name: str
    count: int
    since: float


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(
        self,
        api: Any,
        namespace: str,
        *,
        component: str = "cvsync",
        instance: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._core: Any = client.CoreV1Api(api)
        self.namespace = namespace
        self.component = component
        self.instance = instance or socket.gethostname()
        self._clock = clock
        # Oldest first: an entry is (re)inserted only when its Event is created.
        self._recorded: dict[tuple[str, str], _Recorded] = {}

    @property
    def remembered(self) -> int:
        """How many (reason, message) pairs are kept for de-duplication now."""
        return len(self._recorded)

    async def record(
        self, reason: str, message: str, *, warning: bool, involved: dict[str, Any] | None
    ) -> None:
        """Create or bump the Event for (reason, message); log, never raise, on failure."""
        message = message[:MESSAGE_LIMIT]
        key = (reason, message)
        now = self._clock()
        self._forget_before(now - DEDUP_WINDOW)
        seen = self._recorded.get(key)
        try:
            if seen is not None:
                seen.count += 1
                await self._core.patch_namespaced_event(
                    seen.name,
                    self.namespace,
                    {"count": seen.count, "lastTimestamp": _now()},
                    _content_type="application/merge-patch+json",
                    _request_timeout=(10, 30),
                )
                return
            created = await self._core.create_namespaced_event(
                self.namespace, self._event(reason, message, warning, involved),
                _request_timeout=(10, 30),
            )  # fmt: skip
            self._recorded.pop(key, None)
            self._recorded[key] = _Recorded(created.metadata.name, 1, now)
            while len(self._recorded) > DEDUP_MAX_KEYS:
                del self._recorded[next(iter(self._recorded))]
        # aiohttp.ClientError: a dropped connection (ServerDisconnectedError is no OSError)
        # must not escape into the reconcile worker and stop every later cycle.
        except (ApiException, aiohttp.ClientError, OSError, TimeoutError) as exc:
            status = getattr(exc, "status", None)
            _LOG.warning("event %s not recorded (%s)", reason, status or type(exc).__name__)

    def _forget_before(self, oldest: float) -> None:
        """Drop the pairs whose window has passed: a repeat creates a new Event anyway."""
        while self._recorded:
            first = next(iter(self._recorded))
            if self._recorded[first].since > oldest:
                return
            del self._recorded[first]

    def _event(
        self, reason: str, message: str, warning: bool, involved: dict[str, Any] | None
    ) -> dict[str, Any]:
        metadata = (involved or {}).get("metadata") or {}
        stamp = _now()
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "version.", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": "config.openshift.io/v1",
                "kind": "ClusterVersion",
                "name": "version",
                # ClusterVersion is cluster-scoped, but a real API server accepts an Event
                # about it in this namespace only when the reference names the namespace.
                "namespace": self.namespace,
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.component, "host": self.instance},
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
