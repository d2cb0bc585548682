"""Notice changes to a local work tree (git-sync's swapped symlink, or a plain directory).

Part of the Source port's adapters: watchdog events, filtered into one callback; a link swap
calls it at once, edits inside a tree after a short debounce.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from enum import Enum
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
# Edits inside a plain work tree arrive as a burst (an editor's write and close, or git
# touching several files) a few milliseconds long: waiting this long after the last one lets
# a cycle read the finished files, not a half-written spec.
DEFAULT_DEBOUNCE = 0.015


class _Change(Enum):
    SWAP = "swap"  # a finished tree put in place in one step: nothing partial to wait for
    EDIT = "edit"  # a file changing inside the tree: more may follow


class TreeWatcher:
    """Calls `on_change` when `link` is swapped (git-sync's atomic rename of a new symlink over
    it, or a finished directory renamed into place): at once, since the new tree is complete.
    Edits to files under the directory it points to are debounced: one call per burst.

    `on_change` runs on a background thread, so the caller makes it thread-safe: from asyncio,
    pass something like `lambda: loop.call_soon_threadsafe(trigger.set)`. The callback only
    says "look again"; re-read the tree, never trust one event.
    """

    def __init__(
        self,
        link: Path,
        on_change: Callable[[], object],
        *,
        debounce: float = DEFAULT_DEBOUNCE,
    ) -> None:
        # Absolute but not resolved: events name the link by the path that was watched.
        self.link = Path(os.path.abspath(link))
        self._on_change = on_change
        self._debouncer = _Debouncer(debounce, debounce * _MAX_WAIT_FACTOR, self._fire)
        self._observer: BaseObserver | None = None
        self._target_watch: ObservedWatch | None = None
        self._target: str | None = None
        self._handler = _Handler(self._classify, self._debouncer.poke)
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

    def _classify(self, event: FileSystemEvent) -> _Change | None:
        """What `event` means for the tree behind the link, or None when nothing."""
        if event.event_type not in _CHANGES:
            return None
        link = str(self.link)
        source, destination = os.fsdecode(event.src_path), os.fsdecode(event.dest_path)
        if event.event_type == "moved" and destination == link:
            return _Change.SWAP  # a rename is atomic: what it puts there is finished
        if event.event_type == "created" and source == link and os.path.islink(link):
            return _Change.SWAP  # a new symlink, made in one call (ln -sfn unlinks first)
        target = self._current_target()
        for path in (source, destination):
            if not path:
                continue
            if path == link:
                return _Change.EDIT
            # Only the tree the link points to now: git-sync deleting the old checkout after a
            # swap is not a change, and neither is git's own bookkeeping in .git.
            if target is not None and _is_under(path, target) and not _in_dot_git(path, target):
                return _Change.EDIT
        return None

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
        try:
            self._on_change()
        except Exception:
            logger.exception("the work tree change callback failed")
        # After the callback: the cycle starts reading the new tree while inotify is told to
        # watch it (a recursive watch on a large tree takes a few milliseconds).
        self._retarget()


def _is_under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _in_dot_git(path: str, root: str) -> bool:
    return ".git" in Path(path).relative_to(root).parts


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        classify: Callable[[FileSystemEvent], _Change | None],
        poke: Callable[..., None],
    ) -> None:
        self._classify = classify
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        change = self._classify(event)
        if change is not None:
            self._poke(at_once=change is _Change.SWAP)


class _Debouncer:
    """Runs `action` on its own thread `delay` seconds after the last poke of a burst, and at
    the latest `max_wait` after its first poke, so a tree that never settles still reports; a
    poke `at_once` runs it now, answering any poke still waiting too."""

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

    def poke(self, *, at_once: bool = False) -> None:
        with self._cond:
            now = time.monotonic()
            if self._due is None:
                self._burst_start = now
            if at_once:
                self._due = now
            else:
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
