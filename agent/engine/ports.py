"""The interfaces the reconcile loop needs from the outside world; adapters implement them.

Pure typing: the core depends on these protocols, never on GitPython or kubernetes-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, Protocol

from agent.model.clusterversion_api import ServedSchema
from agent.model.revision import Snapshot

JsonObject = dict[str, Any]


class Source(Protocol):
    """Where the desired state comes from: cvsync's own clone, or a git-sync work tree."""

    async def refresh(self) -> Snapshot:
        """Bring the source up to date (fetch, or re-read the tree) and return its snapshot."""
        ...

    async def close(self) -> None: ...


class Cluster(Protocol):
    """The live ClusterVersion/version, through the Kubernetes API."""

    async def live(self) -> JsonObject | None:
        """The object as it stands (None: it does not exist): the newest the watch delivered
        while the watch is current, else a GET. Read-only: others hold the same dict."""
        ...

    async def get(self) -> JsonObject | None: ...

    async def answered(self, live: JsonObject, within: float) -> JsonObject:
        """The newest object the watch delivered once the cluster-version operator has
        answered `live`'s generation (status.observedGeneration caught up), waiting at most
        `within` seconds and only while the operator has been seen answering; else `live`."""
        ...

    async def apply(self, body: JsonObject, *, force: bool, dry_run: bool) -> JsonObject:
        """Server-side apply `body` as field manager cvsync; raise KubeError subclasses."""
        ...

    async def served_schema(self) -> ServedSchema:
        """What the server's ClusterVersion schema declares, from its OpenAPI v3 document;
        never raises (an unreadable document says so in `problem`)."""
        ...

    def watch(self) -> AsyncGenerator[JsonObject | None, None]:
        """Yield the whole object (None once deleted) after every change, while iterated;
        survives timeouts, bookmarks, 410 Gone, dropped connections and server restarts."""
        ...

    async def close(self) -> None: ...
