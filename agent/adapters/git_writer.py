"""Write cvsync's own status files back to git: commit only real changes, push fast-forward only.

The write side of the git adapter (the StatusSink role), in a clone of its own; GitPython.
"""

from __future__ import annotations

import asyncio
import posixpath
import random
import re
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, TypeVar, cast
from urllib.parse import urlsplit

import git
from git.exc import GitCommandError, ODBError
from git.remote import PushInfo

from agent.adapters.git import (
    GitConfigError,
    GitCredentials,
    GitFetchError,
    GitRefNotFoundError,
    classify,
    redact,
)
from agent.adapters.git_upkeep import CloneKeeper, GitCloneBrokenError, git_said
from agent.adapters.status_clone import (
    OWN_TIP_PUBLISHES,
    compaction,
    shallow_due,
    writer_environment,
)
from agent.adapters.status_commit import (
    StatusPathRefusedError,
    blob_ids,
    branch_problem,
    checked_paths,
    fast_import_stream,
    status_commit_message,
)
from agent.errors import SourceError

__all__ = ["PublishResult", "StatusPathRefusedError", "StatusPushFailedError", "StatusWriter"]
__all__ += ["StatusPushRefusedError", "StatusWriteError", "status_commit_message"]

# The commit is pushed from this private ref: GitPython cannot parse a push whose source is a
# bare sha, and a private ref never collides with a branch a human might check out here.
_PUBLISH_REF = "refs/cvsync/publish"
_FAILED = PushInfo.REJECTED | PushInfo.REMOTE_REJECTED | PushInfo.REMOTE_FAILURE | PushInfo.ERROR
_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_BAD_IDENTITY = re.compile(r"[<>\n]")
_T = TypeVar("_T")


class StatusPushFailedError(SourceError):
    """Every push attempt was rejected (the branch kept moving, or a hook refused). Retried
    later: nothing is lost, the next publish starts again from the remote's tip."""

    reason = "StatusPushFailed"
    retryable = True

    def __init__(self, message: str, *, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts  # pushes tried


class StatusPushRefusedError(SourceError):
    """The remote refuses every push to the branch for a reason no retry changes: a
    non-bare repository with the branch checked out. Said once; the user must act."""

    reason = "StatusPushRefused"
    retryable = False


# What git's receive-pack answers when the pushed branch is checked out in the remote's own
# work tree (receive.denyCurrentBranch=refuse, the default for a non-bare repository).
_CHECKED_OUT = ("branch is currently checked out", "refusing to update checked out branch")


class StatusWriteError(SourceError):
    """A local step (building the commit, reading FETCH_HEAD) failed."""

    reason = "StatusWriteFailed"
    retryable = True


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish did: `committed` is False when the branch already held these bytes
    (no empty commits); `sha` is the branch tip that holds them; `attempts` counts pushes."""

    committed: bool
    sha: str
    attempts: int


class StatusWriter:
    """Publishes files under `allowed_prefix` to `branch` of `url`, from a clone in `workdir`.

    The clone belongs to this writer alone: never the read side's clone, nor a git-sync tree
    (in local-path mode, give the URL of the remote git-sync pulls from). Each attempt fetches
    the tip, builds one commit on it that changes only the given paths, and pushes it without
    force; a rejected push is rebuilt on the new tip and retried with backoff, at most
    `max_attempts` pushes in one publish (one, after a publish gave up, until one lands).
    While nobody else moves the branch (a branch of its own, such as one per cluster), a
    publish builds on the commit it pushed last and skips the fetch; a rejection sends it
    back to fetching. Lock files and a broken clone are handled as for the read side's clone
    (CloneKeeper): a lock older than `stale_lock_after` is removed, a
    younger one waited for up to `lock_wait` seconds.
    """

    def __init__(
        self,
        url: str,
        branch: str,
        workdir: Path,
        credentials: GitCredentials | None = None,
        *,
        author_name: str = "cvsync",
        author_email: str = "cvsync@localhost",
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        depth: int | None = 1,
        allowed_prefix: str = "status/",
        create_branch: bool = False,
        stale_lock_after: float = 60.0,
        lock_wait: float = 10.0,
        timeout: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(url)
        if parts.password or (parts.scheme in ("http", "https") and parts.username):
            # A credential in the URL would land in .git/config, `git remote -v` and errors.
            raise GitConfigError(f"git URL {redact(url, ())} holds credentials; use a Secret")
        prefix = posixpath.normpath(allowed_prefix.strip("/"))
        if prefix in (".", "..") or prefix.startswith(("../", "/")):
            raise GitConfigError(f"status prefix {allowed_prefix!r} must name a directory")
        if _BAD_IDENTITY.search(author_name + author_email):
            raise GitConfigError("the author's name and email cannot hold <, > or newlines")
        if max_attempts < 1:
            raise GitConfigError("max_attempts must be at least 1")
        if problem := branch_problem(branch):
            raise GitConfigError(f"status branch {problem}")
        self.url = url
        self.branch = branch
        self.workdir = workdir
        self.credentials = credentials or GitCredentials()
        self.allowed_prefix = prefix + "/"
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.depth = depth
        self.create_branch = create_branch
        self.timeout = timeout
        self._sleep = sleep
        self._author = f"{author_name} <{author_email}>".encode()
        self._keeper = CloneKeeper(
            workdir,
            stale_after=stale_lock_after,
            lock_wait=lock_wait,
            hold_timeout=timeout,
            clean=lambda text: redact(text, self.credentials.current_secrets()),
        )
        self._env = writer_environment(self.credentials) | self._keeper.environment()
        self._random = random.Random()
        self._repo: git.Repo | None = None
        # The commit this writer pushed last, and whether the branch was still there when it
        # fetched after that push: then nobody else writes the branch, and the next publish
        # builds on that commit without a fetch (a rejected push proves otherwise).
        self._pushed: str | None = None
        self._pushed_blobs: dict[str, str] = {}  # the blob ids of the files it held
        self._alone = False
        self._unfetched = 0  # publishes built on _pushed since the last fetch
        self._gave_up = False  # every push of the last publish was rejected
        self._thread_lock = threading.Lock()  # to_thread calls outlive a cancelled await
        self._order = asyncio.Lock()  # publishes in call order: an older one never lands last

    async def publish(self, files: Mapping[str, bytes], message: str) -> PublishResult:
        """Make `branch` hold `files` (other paths untouched) and push; see the class doc."""
        checked = checked_paths(files, self.allowed_prefix)  # refused before any git call
        message = redact(message, self.credentials.current_secrets())
        last = ""
        async with self._order:
            # After a give-up, one push per publish until one lands: on a branch that busy,
            # quick retries only add to the contention (WriteBack spaces the publishes out).
            attempts = 1 if self._gave_up else self.max_attempts
            for attempt in range(1, attempts + 1):
                outcome = await asyncio.to_thread(self._attempt_sync, checked, message, attempt)
                if isinstance(outcome, tuple):
                    self._gave_up = False
                    return PublishResult(outcome[0], outcome[1], attempt)
                if any(words in outcome for words in _CHECKED_OUT):
                    raise StatusPushRefusedError(
                        f"push to {redact(self.url, ())} branch {self.branch}: the remote has"
                        f" this branch checked out in its work tree and refuses pushes to it"
                        f" ({outcome}); push status to a bare repository, or give"
                        f" --status-branch a branch nobody has checked out there"
                    )
                last = outcome
                if attempt < attempts:
                    await self._sleep(self._backoff(attempt))
            self._gave_up = True
        raise StatusPushFailedError(
            f"push to {redact(self.url, ())} branch {self.branch}: rejected"
            f" {attempts} times, last: {last or 'no result'}",
            attempts=attempts,
        )

    async def read(self, path: str) -> bytes | None:
        """The file at `path` on the branch's tip on the remote; None when either is absent."""
        checked_paths({path: b""}, self.allowed_prefix)
        async with self._order:
            return await asyncio.to_thread(self._read_sync, path)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    def _read_sync(self, path: str) -> bytes | None:
        with self._thread_lock:
            return self._in_clone(lambda: self._read_tip(path))

    def _read_tip(self, path: str) -> bytes | None:
        repo = self._open()
        tip = self._fetch(repo)
        if tip is None or not self._blobs_at(repo, tip, [path]):
            return None
        try:
            data: bytes = (repo.commit(tip).tree / path).data_stream.read()
        except (ValueError, KeyError, OSError, git.GitError, ODBError) as exc:
            raise GitCloneBrokenError(f"read {tip}:{path} in {self.workdir}: {exc}") from None
        return data

    def _backoff(self, attempt: int) -> float:
        # Equal jitter: writers rejected by the same winner must not retry in lockstep.
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    def _close_sync(self) -> None:
        with self._thread_lock:
            self._release()

    def _attempt_sync(
        self, files: dict[str, bytes], message: str, attempt: int
    ) -> tuple[bool, str] | str:
        """One fetch-build-push round: (committed, sha) on success, else why the push failed."""
        with self._thread_lock:
            return self._in_clone(lambda: self._attempt(files, message, attempt))

    def _attempt(
        self, files: dict[str, bytes], message: str, attempt: int
    ) -> tuple[bool, str] | str:
        repo = self._open()
        # A fetch now and then all the same: its depth cuts the chain of our own commits
        # that building on _pushed leaves in the clone.
        if attempt == 1 and self._alone and self._pushed and self._unfetched < OWN_TIP_PUBLISHES:
            tip: str | None = self._pushed
            self._unfetched += 1
        else:
            tip = self._fetch(repo)
            self._alone, self._unfetched = tip is not None and tip == self._pushed, 0
        commit = self._build(repo, tip, files, message)
        if commit is None:
            assert tip is not None  # nothing to compare against means always a commit
            if tip != self._pushed:  # a ref holds the fetched tip (fetches set none)
                self._git(repo, "update-ref", _PUBLISH_REF, tip, action="commit", local=True)
            return False, tip
        rejected = self._push(repo)
        if rejected is not None:
            self._alone = False
            return rejected
        self._pushed, self._pushed_blobs = commit, blob_ids(files, commit)
        return True, commit

    def _in_clone(self, step: Callable[[], _T]) -> _T:
        """Run `step` in the clone, held against other writers; a broken clone is made again
        (nothing is lost: each attempt builds on the remote's tip)."""
        if not self._keeper.initialize():
            raise GitConfigError(f"{self.workdir} is not empty and is not a git repository")
        suspect = (GitFetchError, StatusWriteError)
        return self._keeper.cycle(step, suspect=suspect, release=self._release)

    def _release(self) -> None:
        self._pushed, self._alone = None, False  # a clone made again has none of its commits
        if self._repo is not None:
            self._repo.close()
            self._repo = None

    def _open(self) -> git.Repo:
        """The clone, with origin checked once per opening."""
        if self._repo is None:
            repo = self._keeper.open()
            if args := self._keeper.origin_args(repo, self.url):
                self._git(repo, "remote", *args, action="configure")
            self._repo = repo
        return self._repo

    def _fetch(self, repo: git.Repo) -> str | None:
        """The branch's tip on the remote; None when it does not exist and may be created.
        `--refmap=` keeps the fetched tip out of every ref (and reflog), so that the tips of
        earlier fetches become unreachable and `_compact` can drop them."""
        depth = [f"--depth={self.depth}"] if self.depth is not None else []
        ref = f"refs/heads/{self.branch}"
        try:
            self._git(
                repo, "fetch", "--no-tags", "--refmap=", *depth, "origin", ref, action="fetch"
            )
        except GitRefNotFoundError:
            if self.create_branch:
                return None
            raise
        head = Path(repo.git_dir, "FETCH_HEAD").read_text().split("\t", 1)[0].strip()
        if not _SHA.fullmatch(head):
            raise StatusWriteError(f"fetch {redact(self.url, ())}: unreadable FETCH_HEAD")
        if shallow_due(repo.git_dir):
            self._compact(repo, head)
        return head

    def _compact(self, repo: git.Repo, tip: str) -> None:
        """Keep .git/shallow short: each depth-limited fetch adds the tip it brought, and git
        sends every line with every fetch. git prune drops the lines (and loose objects) of
        commits no ref reaches (git-prune(1)), so the publish ref moves to `tip` and the
        remote-tracking refs go (a push updates them, and their reflogs hold every commit)."""
        tracking = self._git(
            repo, "for-each-ref", "--format=delete %(refname)", "refs/remotes/",
            action="compact", local=True,
        )  # fmt: skip
        with tempfile.TemporaryFile() as stdin:
            stdin.write(compaction(_PUBLISH_REF, tip, tracking))
            self._git(repo, "update-ref", "--stdin", action="compact", local=True, stdin=stdin)
        # Safe with no expiry: only this writer's git runs in the clone while it holds it.
        self._git(repo, "prune", action="compact", local=True)

    def _build(
        self, repo: git.Repo, tip: str | None, files: dict[str, bytes], message: str
    ) -> str | None:
        """A commit on `tip` whose tree is tip's with only `files` replaced; None when tip
        already holds exactly these bytes. Never built in the work tree or the index: what a
        human changed anywhere else in tip (a spec file, say) is carried over untouched."""
        if tip is not None and self._holds(repo, tip, files):
            return None
        # One fast-import call replaces hash-object, read-tree, update-index, write-tree,
        # commit-tree and update-ref: under 20 racing writers, fewer processes per attempt
        # means a shorter fetch-to-push window and fewer rejections. An absent (dedicated)
        # branch starts as an orphan holding only status files: no stale copies of the specs
        # that someone could mistake for the desired state, and no need for the read branch's
        # history in a shallow clone.
        when = int(time.time())
        stream = fast_import_stream(
            _PUBLISH_REF, message, tip, files, author=self._author, when=when
        )
        with tempfile.TemporaryFile() as commands:
            commands.write(stream)
            commands.seek(0)
            # --force moves only the private local ref (a previous attempt's commit may be
            # there); the push below is never forced.
            out = self._git(
                repo, "fast-import", "--quiet", "--done", "--force", "--date-format=raw",
                action="commit", local=True, stdin=commands,
            )  # fmt: skip
        return out.strip()

    def _holds(self, repo: git.Repo, tip: str, files: dict[str, bytes]) -> bool:
        """Whether `tip` holds exactly these bytes; asked of git unless tip is what this
        writer pushed last (one process fewer per publish on a branch of its own)."""
        wanted = blob_ids(files, tip)
        if tip == self._pushed and self._pushed_blobs.keys() >= wanted.keys():
            return all(self._pushed_blobs[path] == blob for path, blob in wanted.items())
        return self._blobs_at(repo, tip, list(files)) == wanted

    def _blobs_at(self, repo: git.Repo, tip: str, paths: list[str]) -> dict[str, str]:
        out = self._git(repo, "ls-tree", "-z", tip, "--", *paths, action="commit", local=True)
        found: dict[str, str] = {}
        for entry in filter(None, out.split("\0")):
            info, _, path = entry.partition("\t")
            mode, kind, sha = info.split()
            if kind == "blob" and mode == "100644":  # another mode must be rewritten as ours
                found[path] = sha
        return found

    def _push(self, repo: git.Repo) -> str | None:
        """Push the built commit without force: None when the branch took it, else why not.
        A rejected push does not raise in GitPython: the flags of each PushInfo say so."""
        target = f"refs/heads/{self.branch}"

        def push() -> list[PushInfo]:
            with repo.git.custom_environment(**self._env):
                return list(
                    repo.remote("origin").push(
                        f"{_PUBLISH_REF}:{target}", kill_after_timeout=self.timeout
                    )
                )

        try:
            infos = self._keeper.run(push, "push")
        except GitCommandError as exc:  # no result at all: transport, auth, remote down
            raise classify(exc, "push", self.url, self.credentials.current_secrets()) from None
        ours = [info for info in infos if info.remote_ref_string == target]
        if ours and not any(info.flags & _FAILED for info in ours):
            return None
        summary = "; ".join(info.summary.strip() for info in ours) or "no push result"
        return redact(summary, self.credentials.current_secrets())

    def _git(
        self,
        repo: git.Repo,
        *args: str,
        action: str,
        local: bool = False,
        stdin: IO[bytes] | None = None,
    ) -> str:
        def call() -> str:
            if stdin is not None:
                stdin.seek(0)  # a call made again after a lock went reads it from the start
            out: str = repo.git.execute(
                ["git", *args],
                env=self._env,
                kill_after_timeout=self.timeout,
                istream=cast(BinaryIO, stdin),
            )
            return out

        try:
            return self._keeper.run(call, action)
        except GitCommandError as exc:
            secrets = self.credentials.current_secrets()
            if local:
                detail = git_said(exc, lambda text: redact(text, secrets))
                raise StatusWriteError(f"{action} in {self.workdir}: {detail}") from None
            raise classify(exc, action, self.url, secrets) from None
