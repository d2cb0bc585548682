"""Notice changes to a local work tree (git-sync's swapped symlink, or a plain directory).

Part of the Source port's adapters: watchdog events, filtered and debounced into one callback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from agent.adapters.git import WorkTreeMissingError

logger = logging.getLogger(__name__)

# Opened/closed-without-write/attrib events come from reading the tree (our own refresh among
# them); reacting to them would make every refresh trigger the next one.
_CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed"})
_MAX_WAIT_FACTOR = 20  # a change that never pauses still fires after 20 debounce periods


class TreeWatcher:
    """Calls `on_change` once per burst of changes to `link`: the link being replaced (the
    atomic swap git-sync does) or files changing under the directory it points to.

    `on_change` runs on a background thread, so the caller makes it thread-safe: from asyncio,
    pass something like `lambda: loop.call_soon_threadsafe(trigger.set)`. The callback only
    says "look again"; re-read the tree, never trust one event.
    """

    def __init__(
        self, link: Path, on_change: Callable[[], object], *, debounce: float = 0.05
    ) -> None:
        # Absolute but not resolved: events name the link by the path that was watched.
        self.link = Path(os.path.abspath(link))
        self._on_change = on_change
        self._debouncer = _Debouncer(debounce, debounce * _MAX_WAIT_FACTOR, self._fire)
        self._observer: BaseObserver | None = None
        self._target_watch: ObservedWatch | None = None
        self._target: str | None = None
        self._handler = _Handler(self._is_relevant, self._debouncer.poke)
        self._lock = threading.Lock()

    def start(self) -> None:
        if self._observer is not None:
            return
        parent = self.link.parent
        if not parent.is_dir():
            raise WorkTreeMissingError(f"{parent} does not exist; cannot watch {self.link.name}")
        observer = Observer()
        observer.daemon = True
        # The link's parent, not the link: a watch on the link follows the old target and
        # never sees later swaps.
        observer.schedule(self._handler, str(parent), recursive=False)
        self._observer = observer
        self._debouncer.start()
        self._retarget()
        observer.start()

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)
        self._debouncer.stop()
        with self._lock:
            self._target, self._target_watch = None, None

    def __enter__(self) -> TreeWatcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _current_target(self) -> str | None:
        target = os.path.realpath(self.link)
        return target if os.path.isdir(target) else None

    def _is_relevant(self, event: FileSystemEvent) -> bool:
        if event.event_type not in _CHANGES:
            return False
        link = str(self.link)
        target = self._current_target()
        for raw in (event.src_path, event.dest_path):
            path = os.fsdecode(raw)
            if not path:
                continue
            if path == link:
                return True
            # Only the tree the link points to now: git-sync deleting the old checkout after a
            # swap is not a change, and neither is git's own bookkeeping in .git.
            if target is not None and _is_under(path, target) and not _in_dot_git(path, target):
                return True
        return False

    def _retarget(self) -> None:
        """Watch, recursively, the directory the link points to now (edits in place)."""
        with self._lock:
            observer = self._observer
            target = self._current_target()
            if observer is None or target == self._target:
                return
            if self._target_watch is not None:
                # Its directory may be gone already: git-sync removes the old checkout.
                with contextlib.suppress(KeyError, OSError):
                    observer.unschedule(self._target_watch)
                self._target_watch = None
            self._target = target
            if target is not None:
                try:
                    self._target_watch = observer.schedule(self._handler, target, recursive=True)
                except OSError:
                    self._target = None  # vanished between resolving and watching; next event

    def _fire(self) -> None:
        self._retarget()
        try:
            self._on_change()
        except Exception:
            logger.exception("the work tree change callback failed")


def _is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _in_dot_git(path: str, root: str) -> bool:
    return ".git" in Path(path).relative_to(root).parts


class _Handler(FileSystemEventHandler):
    def __init__(
        self, relevant: Callable[[FileSystemEvent], bool], poke: Callable[[], None]
    ) -> None:
        self._relevant = relevant
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        if self._relevant(event):
            self._poke()


class _Debouncer:
    """Runs `action` on its own thread `delay` seconds after the last poke of a burst, and at
    the latest `max_wait` after its first poke, so a tree that never settles still reports."""

    def __init__(self, delay: float, max_wait: float, action: Callable[[], object]) -> None:
        self._delay = delay
        self._max_wait = max_wait
        self._action = action
        self._cond = threading.Condition()
        self._due: float | None = None
        self._burst_start = 0.0
        self._stopped = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="tree-watch-debounce", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            now = time.monotonic()
            if self._due is None:
                self._burst_start = now
            self._due = min(now + self._delay, self._burst_start + self._max_wait)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._due = None
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (self._due is None or self._due > time.monotonic()):
                    wait = None if self._due is None else self._due - time.monotonic()
                    self._cond.wait(wait)
                if self._stopped:
                    return
                self._due = None
            self._action()
