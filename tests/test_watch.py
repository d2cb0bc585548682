"""TreeWatcher and LocalTreeSource on a git-sync style layout: worktrees `rev-<sha>/` and a
`current` symlink swapped atomically, plus a plain directory edited in place."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitrepo import GitSyncLayout, isolate_git

from agent.adapters.git import LocalTreeSource, WorkTreeInvalidError, WorkTreeMissingError
from agent.adapters.watch import TreeWatcher

SPEC = "clusters/prod/clusterversion.yaml"
PATHS = (SPEC, "clusters/prod/policy.yaml")
QUIET = 0.4  # long enough after a burst for any stray second callback to show up


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_git(tmp_path / "home", monkeypatch)


@pytest.fixture
def gitsync(tmp_path: Path) -> GitSyncLayout:
    return GitSyncLayout.create(tmp_path, SPEC)


class Calls:
    """Counts callbacks from the watcher's thread."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.count >= count, timeout)


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def watcher(gitsync: GitSyncLayout, calls: Calls) -> Iterator[TreeWatcher]:
    with TreeWatcher(gitsync.link, calls) as watching:
        yield watching


async def test_each_swap_fires_once_and_the_source_then_reads_the_new_revision(
    gitsync: GitSyncLayout,
) -> None:
    first = gitsync.commit("v: 1\n")
    gitsync.swap(first)
    source = LocalTreeSource(gitsync.link, "main", PATHS)
    assert (await source.refresh()).revision.sha == first

    loop = asyncio.get_running_loop()
    changes: asyncio.Queue[None] = asyncio.Queue()
    # The callback runs on a watchdog thread: hand it to the loop thread-safely.
    with TreeWatcher(gitsync.link, lambda: loop.call_soon_threadsafe(changes.put_nowait, None)):
        previous = first
        for number in (2, 3):
            sha = gitsync.commit(f"v: {number}\n")
            gitsync.swap(sha)
            gitsync.remove(previous)  # git-sync deletes the old checkout right after the swap
            await asyncio.wait_for(changes.get(), timeout=5)
            snapshot = await source.refresh()
            assert str(snapshot.revision) == f"main@sha1:{sha}"
            assert dict(snapshot.files) == {SPEC: f"v: {number}\n".encode()}
            await asyncio.sleep(QUIET)
            assert changes.empty(), "one swap gave more than one callback"
            previous = sha
    await source.close()


async def test_a_burst_of_five_swaps_gives_no_more_callbacks_than_swaps(
    gitsync: GitSyncLayout, calls: Calls
) -> None:
    shas = [gitsync.commit(f"v: {number}\n") for number in range(6)]
    gitsync.swap(shas[0])
    with TreeWatcher(gitsync.link, calls):
        for sha in shas[1:]:
            gitsync.swap(sha)
            time.sleep(0.005)
        assert calls.wait_for(1)
        time.sleep(QUIET)
    # Each swap may fire (none waits for the next); the runtime coalesces the triggers. What
    # the new tree holds never fires on its own.
    assert 1 <= calls.count <= 5
    snapshot = await LocalTreeSource(gitsync.link, "main", PATHS).refresh()
    assert snapshot.revision.sha == shas[-1]


def test_a_link_swap_fires_at_once_while_edits_in_the_tree_wait_for_the_debounce(
    gitsync: GitSyncLayout, calls: Calls
) -> None:
    first = gitsync.commit("v: 1\n")
    gitsync.swap(first)
    second = gitsync.commit("v: 2\n")
    # A debounce far longer than the test: only an undebounced callback can arrive in time.
    with TreeWatcher(gitsync.link, calls, debounce=60.0):
        (gitsync.root / f"rev-{first}" / SPEC).write_text("v: edited in place\n")
        time.sleep(QUIET)
        assert calls.count == 0, "an edit inside the tree fired before its debounce"
        gitsync.swap(second)
        assert calls.wait_for(1), "the swap waited for the debounce"
        time.sleep(QUIET)
        assert calls.count == 1  # the swap's callback also answered the edit that was waiting


def test_a_directory_renamed_into_place_fires_at_once(tmp_path: Path, calls: Calls) -> None:
    staged = tmp_path / "staged"
    (staged / "clusters" / "prod").mkdir(parents=True)
    (staged / SPEC).write_text("v: 1\n")
    target = tmp_path / "current"
    with TreeWatcher(target, calls, debounce=60.0):
        os.rename(staged, target)  # one atomic rename of a finished tree, like a link swap
        assert calls.wait_for(1), "the rename waited for the debounce"


async def test_reading_the_tree_does_not_fire_the_watcher(
    gitsync: GitSyncLayout, calls: Calls
) -> None:
    gitsync.swap(gitsync.commit("v: 1\n"))
    source = LocalTreeSource(gitsync.link, "main", PATHS)
    with TreeWatcher(gitsync.link, calls):
        for _ in range(3):
            await source.refresh()
        time.sleep(QUIET)
    assert calls.count == 0  # else every refresh would trigger the next one


def test_a_link_that_appears_after_the_watch_started_fires(
    gitsync: GitSyncLayout, watcher: TreeWatcher, calls: Calls
) -> None:
    gitsync.swap(gitsync.commit("v: 1\n"))
    assert calls.wait_for(1)


def test_edits_inside_a_plain_directory_fire(tmp_path: Path, calls: Calls) -> None:
    plain = tmp_path / "plain"
    (plain / "clusters" / "prod").mkdir(parents=True)
    (plain / SPEC).write_text("v: 1\n")
    with TreeWatcher(plain, calls):
        (plain / SPEC).write_text("v: 2\n")
        assert calls.wait_for(1)
        time.sleep(QUIET)
        assert calls.count == 1
        (plain / "clusters" / "staging").mkdir()
        (plain / "clusters" / "staging" / "clusterversion.yaml").write_text("v: 1\n")
        assert calls.wait_for(2)


def test_a_watcher_on_a_missing_directory_says_so(tmp_path: Path, calls: Calls) -> None:
    watcher = TreeWatcher(tmp_path / "absent" / "current", calls)
    with pytest.raises(WorkTreeMissingError):
        watcher.start()
    watcher.stop()


async def test_a_missing_link_is_a_retryable_error(gitsync: GitSyncLayout) -> None:
    with pytest.raises(WorkTreeMissingError) as caught:
        await LocalTreeSource(gitsync.link, "main", PATHS).refresh()
    assert caught.value.retryable
    assert caught.value.reason == "GitWorkTreeMissing"


async def test_a_directory_that_is_not_a_checkout_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorkTreeInvalidError):
        await LocalTreeSource(plain, "main", PATHS).refresh()


async def test_a_symlink_in_the_checkout_is_not_followed(
    gitsync: GitSyncLayout, tmp_path: Path
) -> None:
    outside = tmp_path / "secret-token"
    outside.write_text("do not read me")
    policy = gitsync.origin / "clusters" / "prod" / "policy.yaml"
    policy.parent.mkdir(parents=True)
    policy.symlink_to(outside)
    sha = gitsync.commit("v: 1\n")
    gitsync.swap(sha)
    snapshot = await LocalTreeSource(gitsync.link, "main", ("clusters",)).refresh()
    assert dict(snapshot.files) == {SPEC: b"v: 1\n"}
