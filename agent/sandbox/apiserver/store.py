"""The sandbox's object store: objects by resource, namespace and name, one monotonic
resourceVersion, a bounded window of change events for watches, optional persistence.

In-memory, with a JSON snapshot in the state directory when one is given.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]
ObjectKey = tuple[
    str, str, str
]  # (resource id such as "config.openshift.io/clusterversions", namespace, name)

_STATE_FILE = "state.json"


class ResourceVersionGoneError(Exception):
    """The requested resourceVersion is older than the retained window (HTTP 410)."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    resource_version: int
    type: str  # ADDED, MODIFIED, DELETED
    key: ObjectKey
    object: JsonObject


@dataclass
class Watcher:
    resource: str
    namespace: str
    name: str
    queue: asyncio.Queue[ChangeEvent | None] = field(default_factory=asyncio.Queue)
    internal: bool = False  # the simulated operator's own: faults never end it

    def matches(self, key: ObjectKey) -> bool:
        resource, namespace, name = key
        return (
            resource == self.resource
            and (not self.namespace or namespace == self.namespace)
            and (not self.name or name == self.name)
        )

    def close(self) -> None:
        self.queue.put_nowait(None)


class Store:
    """Objects plus the change history that watches replay from."""

    def __init__(self, state_dir: Path | None = None, window: int = 1000) -> None:
        self.state_dir = state_dir
        self.objects: dict[ObjectKey, JsonObject] = {}
        self.resource_version = 0
        self.history: deque[ChangeEvent] = deque(maxlen=window)
        self.watchers: list[Watcher] = []
        self._compacted_through = 0
        # The resourceVersion the API server's watch cache was filled at when it (re)started:
        # its history begins there, so a watch from before it is Expired.
        self._watch_cache_start = 0
        if state_dir is not None:
            self._load(state_dir)

    # Reads.
    def get(self, key: ObjectKey) -> JsonObject | None:
        found = self.objects.get(key)
        return json.loads(json.dumps(found)) if found is not None else None

    def list(self, resource: str, namespace: str = "", name: str = "") -> list[JsonObject]:
        selected = [
            obj
            for (res, ns, nm), obj in sorted(self.objects.items())
            if res == resource and (not namespace or ns == namespace) and (not name or nm == name)
        ]
        return json.loads(json.dumps(selected))  # type: ignore[no-any-return]

    # Writes: every write takes the next resourceVersion.
    def put(self, key: ObjectKey, obj: JsonObject) -> JsonObject:
        event_type = "MODIFIED" if key in self.objects else "ADDED"
        self.resource_version += 1
        stored = json.loads(json.dumps(obj))
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.resource_version)
        self.objects[key] = stored
        self._record(ChangeEvent(self.resource_version, event_type, key, stored))
        return json.loads(json.dumps(stored))  # type: ignore[no-any-return]

    def delete(self, key: ObjectKey) -> JsonObject | None:
        live = self.objects.pop(key, None)
        if live is None:
            return None
        self.resource_version += 1
        # A copy: the stored dict is also the object of the key's last ADDED/MODIFIED event in
        # the history, which must keep its own resourceVersion for watches that replay it.
        removed: JsonObject = json.loads(json.dumps(live))
        removed["metadata"]["resourceVersion"] = str(self.resource_version)
        self._record(ChangeEvent(self.resource_version, "DELETED", key, removed))
        return json.loads(json.dumps(removed))  # type: ignore[no-any-return]

    def _record(self, event: ChangeEvent) -> None:
        if len(self.history) == self.history.maxlen:
            self._compacted_through = self.history[0].resource_version
        self.history.append(event)
        for watcher in self.watchers:
            if watcher.matches(event.key):
                watcher.queue.put_nowait(event)
        self._save()

    # Watches.
    def watch(
        self, resource: str, namespace: str, name: str, since: int | None, *, internal: bool = False
    ) -> Watcher:
        """A watcher fed with events after `since` (None: the current state as ADDED)."""
        watcher = Watcher(resource, namespace, name, internal=internal)
        if since is None:
            for key, obj in sorted(self.objects.items()):
                if watcher.matches(key):
                    watcher.queue.put_nowait(ChangeEvent(self.resource_version, "ADDED", key, obj))
        else:
            oldest = max(self._compacted_through, self._watch_cache_start)
            if since < oldest:
                raise ResourceVersionGoneError(since, oldest)
            for event in self._events_after(since):
                if watcher.matches(event.key):
                    watcher.queue.put_nowait(event)
        self.watchers.append(watcher)
        return watcher

    def fill_watch_cache(self) -> None:
        """Start the watch history at the current resourceVersion, as an API server's watch
        cache starts from a list when the server starts: watches resume from here on only."""
        self._watch_cache_start = self.resource_version

    def check_not_gone(self, resource_version: int) -> None:
        if resource_version < self._compacted_through:
            raise ResourceVersionGoneError(resource_version, self._compacted_through + 1)

    def _events_after(self, since: int) -> Iterator[ChangeEvent]:
        return (event for event in self.history if event.resource_version > since)

    def stop_watching(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)

    def end_all_watches(self) -> int:
        """End every client watch (a fault, or a stop); the simulator's own keeps running."""
        ended = [watcher for watcher in self.watchers if not watcher.internal]
        for watcher in ended:
            watcher.close()
        self.watchers = [watcher for watcher in self.watchers if watcher.internal]
        return len(ended)

    def compact(self) -> None:
        """Forget all history: every earlier resourceVersion now answers 410 Gone."""
        self._compacted_through = self.resource_version
        self.history.clear()

    # Persistence: keep objects and the counter so a restart never goes backwards.
    def _save(self) -> None:
        if self.state_dir is None:
            return
        snapshot = {
            "resourceVersion": self.resource_version,
            "objects": [
                {"key": list(key), "object": obj} for key, obj in sorted(self.objects.items())
            ],
        }
        target = self.state_dir / _STATE_FILE
        partial = target.with_suffix(".tmp")
        partial.write_text(json.dumps(snapshot))
        os.replace(partial, target)

    def _load(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / _STATE_FILE
        if not path.exists():
            return
        snapshot = json.loads(path.read_text())
        self.resource_version = int(snapshot["resourceVersion"])
        self._compacted_through = self.resource_version
        for entry in snapshot["objects"]:
            resource, namespace, name = entry["key"]
            self.objects[(resource, namespace, name)] = entry["object"]
