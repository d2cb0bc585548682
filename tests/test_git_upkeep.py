"""Lock files and broken clones in cvsync's own clones, the read clone and the write-back clone
alike, with real repositories in temp dirs: a stale lock is removed and logged, a fresh one
waited for, a broken clone cloned again; a git-sync tree is never touched."""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from git.exc import GitCommandError
from gitrepo import GitSyncLayout, Remote, git

from agent.adapters.git import GitCloneSource, LocalTreeSource, classify
from agent.adapters.git_upkeep import GitCloneUnusableError, GitLockedError
from agent.adapters.git_writer import StatusWriter, status_commit_message
from agent.errors import SourceError

SPEC = "clusters/x/clusterversion.yaml"
STATUS = "status/x.yaml"
MESSAGE = status_commit_message("x", "4.16.3", "Completed", "id-x", "main@sha1:" + "a" * 40)
HOUR = 3600.0


pytestmark = pytest.mark.usefixtures("git_without_identity")


@dataclass
class Clone:
    """One of cvsync's clones and the cycle that uses it: a refresh of the read clone, or a
    publish of the write-back clone; either gives the sha that is then the remote's tip."""

    workdir: Path
    cycle: Callable[[], Awaitable[str]]
    close: Callable[[], Awaitable[None]]

    @property
    def git_dir(self) -> Path:
        return self.workdir / ".git"


def read_clone(remote: Remote, workdir: Path, **options: Any) -> Clone:
    source = GitCloneSource(remote.url, "main", workdir, (SPEC,), **options)

    async def refresh() -> str:
        snapshot = await source.refresh()
        assert snapshot.file(SPEC) == (remote.work / SPEC).read_bytes()  # the tip's content
        return snapshot.revision.sha

    return Clone(workdir, refresh, source.close)


def write_clone(remote: Remote, workdir: Path, **options: Any) -> Clone:
    status = StatusWriter(remote.url, "main", workdir, backoff_base=0.01, **options)
    numbers = itertools.count()

    async def publish() -> str:
        result = await status.publish({STATUS: f"n: {next(numbers)}\n".encode()}, MESSAGE)
        return result.sha

    return Clone(workdir, publish, status.close)


CLONES = {"read clone": read_clone, "write-back clone": write_clone}
# Locks in the way of each clone's cycle: the read side checks out (index) after a shallow
# fetch; the writer fetches shallow and builds its commit on a private ref.
LOCKS_IN_THE_WAY = [
    ("read clone", "index.lock"),
    ("read clone", "shallow.lock"),
    ("write-back clone", "shallow.lock"),
    ("write-back clone", "refs/cvsync/publish.lock"),
]


@pytest.fixture
async def open_clone(remote: Remote, tmp_path: Path) -> AsyncIterator[Callable[..., Clone]]:
    """Opens a clone of `kind` (in `workdir`, else tmp_path/clone); all closed at the end."""
    opened: list[Clone] = []

    def make(kind: str, workdir: Path | None = None, **options: Any) -> Clone:
        clone = CLONES[kind](remote, workdir or tmp_path / "clone", **options)
        opened.append(clone)
        return clone

    yield make
    for clone in opened:
        await clone.close()


def tip(remote: Remote) -> str:
    return git(remote.bare, "rev-parse", "main")


def lock_file(path: Path, age: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def mentions(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


@pytest.mark.parametrize(("kind", "name"), LOCKS_IN_THE_WAY)
async def test_an_hour_old_lock_is_removed_logged_once_with_its_path_and_the_next_cycle_succeeds(
    open_clone: Callable[..., Clone],
    remote: Remote,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    name: str,
) -> None:
    clone = open_clone(kind)
    await clone.cycle()
    lock = lock_file(clone.git_dir / name, age=HOUR)
    human = remote.commit({SPEC: "spec: 2\n"}, "human: a new spec")
    with caplog.at_level(logging.WARNING, logger="cvsync.git"):
        sha = await clone.cycle()
        assert sha == tip(remote)
        await clone.cycle()
    assert git(remote.bare, "merge-base", "--is-ancestor", human, sha) == ""
    assert not lock.exists()
    assert len(mentions(caplog, str(lock))) == 1


@pytest.mark.parametrize(("kind", "name"), LOCKS_IN_THE_WAY)
async def test_a_fresh_lock_is_waited_for_until_its_git_process_lets_it_go(
    open_clone: Callable[..., Clone],
    remote: Remote,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    name: str,
) -> None:
    clone = open_clone(kind)
    await clone.cycle()
    lock = lock_file(clone.git_dir / name)  # as if a git process were working there now
    remote.commit({SPEC: "spec: 2\n"}, "human: a new spec")
    # The "other process" finishes a second later; the cycle's first git call comes sooner.
    finishing = threading.Timer(1.0, lock.unlink)
    finishing.start()
    try:
        with caplog.at_level(logging.WARNING, logger="cvsync.git"):
            sha = await clone.cycle()
    finally:
        finishing.join()
    assert sha == tip(remote)
    assert mentions(caplog, str(lock)) == []  # it was not removed: its owner let it go


@pytest.mark.parametrize(("kind", "name"), LOCKS_IN_THE_WAY)
async def test_a_lock_still_there_after_the_wait_fails_the_cycle_naming_its_whole_path(
    open_clone: Callable[..., Clone], remote: Remote, tmp_path: Path, kind: str, name: str
) -> None:
    # A long work directory: the message must carry the lock's path whole, not cut short.
    workdir = tmp_path.joinpath(*["deeply-nested-work-directory"] * 24)
    clone = open_clone(kind, workdir, lock_wait=0.3)
    await clone.cycle()
    before = tip(remote)
    lock = lock_file(clone.git_dir / name)
    with pytest.raises(GitLockedError) as caught:
        await clone.cycle()
    error = caught.value
    assert (error.reason, error.retryable) == ("GitCloneLocked", True)
    assert str(lock) in error.message
    assert "remove it" in error.message
    assert lock.exists()  # a fresh lock may be a person's git run: never removed
    assert tip(remote) == before


def break_head(clone: Clone) -> None:
    (clone.git_dir / "HEAD").write_text("garbage\n")


def break_config(clone: Clone) -> None:
    (clone.git_dir / "config").write_text("[[[ not a config\n")


def break_shallow(clone: Clone) -> None:
    (clone.git_dir / "shallow").write_text("not a commit\n")


def break_index(clone: Clone) -> None:
    (clone.git_dir / "index").write_bytes(b"garbage")


def remove_a_tree_the_next_commit_shares(clone: Clone) -> None:
    sha = git(clone.workdir, "rev-parse", "FETCH_HEAD:clusters")
    loose = clone.git_dir / "objects" / sha[:2] / sha[2:]
    loose.unlink()  # small fetches are stored loose: the file is there to remove


BREAKAGES = [
    ("read clone", break_head),
    ("read clone", break_config),
    ("read clone", break_shallow),
    ("read clone", break_index),
    ("read clone", remove_a_tree_the_next_commit_shares),
    ("write-back clone", break_head),
    ("write-back clone", break_config),
    ("write-back clone", break_shallow),
    ("write-back clone", remove_a_tree_the_next_commit_shares),
]


@pytest.mark.parametrize("restarted", [False, True], ids=["same process", "after a restart"])
@pytest.mark.parametrize(("kind", "breakage"), BREAKAGES)
async def test_a_broken_clone_is_cloned_again_from_the_remote_and_the_cycle_succeeds(
    open_clone: Callable[..., Clone],
    remote: Remote,
    caplog: pytest.LogCaptureFixture,
    *,
    kind: str,
    breakage: Callable[[Clone], None],
    restarted: bool,
) -> None:
    clone = open_clone(kind)
    first = await clone.cycle()
    breakage(clone)
    if restarted:
        clone = open_clone(kind)
    # A commit that leaves clusters/ as it was: the remote will not send that tree again.
    human = remote.commit({"README.md": "fleet\n"}, "human: a readme")
    with caplog.at_level(logging.WARNING, logger="cvsync.git"):
        sha = await clone.cycle()
    assert sha == tip(remote)
    # Nothing is lost: the remote keeps every commit, the human's and cvsync's own.
    for kept in (first, human):
        assert git(remote.bare, "merge-base", "--is-ancestor", kept, sha) == ""
    assert len(mentions(caplog, f"the git clone in {clone.workdir} is broken")) == 1
    assert git(clone.workdir, "fsck", "--connectivity-only") == ""  # sound again


@pytest.mark.parametrize("kind", CLONES)
async def test_a_broken_repository_cvsync_did_not_make_is_left_alone(
    open_clone: Callable[..., Clone], tmp_path: Path, kind: str
) -> None:
    workdir = tmp_path / "theirs"
    workdir.mkdir()
    git(workdir, "init", "--quiet")
    (workdir / "precious.txt").write_text("not cvsync's")
    (workdir / ".git" / "HEAD").write_text("garbage\n")
    clone = open_clone(kind, workdir)
    with pytest.raises(GitCloneUnusableError) as caught:
        await clone.cycle()
    assert not caught.value.retryable
    assert "remove it" in caught.value.message
    assert (workdir / "precious.txt").read_text() == "not cvsync's"
    assert (workdir / ".git" / "HEAD").read_text() == "garbage\n"


@pytest.mark.parametrize("kind", CLONES)
async def test_a_clone_where_git_keeps_failing_is_cloned_again_on_the_third_cycle(
    open_clone: Callable[..., Clone],
    remote: Remote,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    clone = open_clone(kind)
    await clone.cycle()
    # git's data is sound (fsck passes), yet every fetch fails: it cannot write FETCH_HEAD.
    (clone.git_dir / "FETCH_HEAD").unlink()
    (clone.git_dir / "FETCH_HEAD" / "in-the-way").mkdir(parents=True)
    remote.commit({SPEC: "spec: 2\n"}, "human: a new spec")
    with caplog.at_level(logging.WARNING, logger="cvsync.git"):
        for _ in range(2):
            with pytest.raises(SourceError, match="FETCH_HEAD"):
                await clone.cycle()
        sha = await clone.cycle()
    assert sha == tip(remote)
    assert len(mentions(caplog, "3 cycles in a row failed")) == 1


async def test_git_s_own_message_keeps_the_lock_s_path_whole_and_drops_its_advice(
    tmp_path: Path,
) -> None:
    repo = tmp_path.joinpath(*["a-directory-with-a-long-name"] * 30)
    repo.mkdir(parents=True)
    git(repo, "init", "--quiet")
    lock = lock_file(repo / ".git" / "index.lock")
    done = subprocess.run(
        ["git", "add", "."], cwd=repo, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    error = classify(GitCommandError(["git", "add"], 128, done.stderr), "add", "file:///r", [])
    assert f"fatal: Unable to create '{lock}': File exists." in error.message
    assert "Please make sure" not in error.message
    assert "remove the file manually" not in error.message


async def test_lock_files_in_a_git_sync_tree_are_left_alone(tmp_path: Path) -> None:
    gitsync = GitSyncLayout.create(tmp_path, SPEC)
    sha = gitsync.commit("spec: 1\n")
    gitsync.swap(sha)
    theirs = [
        lock_file(gitsync.origin / ".git" / "index.lock", age=HOUR),
        lock_file(gitsync.origin / ".git" / "worktrees" / f"rev-{sha}" / "index.lock", age=HOUR),
        lock_file(gitsync.origin / ".git" / "shallow.lock"),
    ]
    snapshot = await LocalTreeSource(gitsync.link, "main", (SPEC,)).refresh()
    assert snapshot.revision.sha == sha
    assert snapshot.file(SPEC) == b"spec: 1\n"
    assert all(lock.exists() for lock in theirs)  # git-sync's tree: cvsync runs no git there
    shutil.rmtree(gitsync.root)
