"""Keep cvsync's own git clones usable, the read clone and the write-back clone alike: lock
files git left behind, a clone that broke, and git's own words about a failure.

Never used on a tree cvsync does not own (git-sync's): only lock files inside the clone's
.git are removed, and only a clone carrying cvsync's mark is ever deleted and cloned again.
"""

from __future__ import annotations

import configparser
import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from agent.errors import SourceError

_T = TypeVar("_T")
_LOG = logging.getLogger("cvsync.git")

# Held (flock) while cvsync runs git in a clone: another cvsync process or instance waits, and
# while it is held a lock file of git's is a leftover or a person's git run, never ours.
HOLDER_FILE = "cvsync.flock"
# Written when cvsync makes a clone or has used one: only a marked clone is ever deleted.
MARK_FILE = "cvsync-clone"
_MARK_TEXT = "cvsync's own clone: when it breaks, cvsync deletes it and clones it again.\n"
# The lock files git's commands take in .git, besides a ref's (found by walking refs/).
_LOCK_FILES = (
    "index.lock", "shallow.lock", "HEAD.lock", "ORIG_HEAD.lock", "config.lock",
    "packed-refs.lock", "objects/info/commit-graph.lock", "objects/info/multi-pack-index.lock",
)  # fmt: skip
# How git says, for any of its locks, that one is in its way; the path is absolute.
_IN_THE_WAY = re.compile(r"unable to create '(.+?\.lock)': file exists", re.IGNORECASE)
_POLL = 0.05
_LOCK_ROUNDS = 8  # locks git trips on, one after another, in one call before it gives up
RECREATE_AFTER = 3  # unexplained failures in a row after which a healthy-looking clone goes
# Lines that say nothing about the cause: hints, progress, git's boilerplate after a failure.
_NOISE = re.compile(
    r"hint:|from |\* |remote: (enumerating|counting|compressing|total)|(receiving|resolving) "
    r"|please make sure you have|and the repository exists",
    re.IGNORECASE,
)
_CAUSE = ("fatal:", "error:")
_DETAIL_LINES = 4
MAX_DETAIL = 1500


class GitLockedError(SourceError):
    """A lock file (git's, or another cvsync's hold on the clone) stayed in the way of a git
    command for longer than cvsync waits; the message names it and what to do."""

    reason = "GitCloneLocked"
    retryable = True


class GitCloneBrokenError(SourceError):
    """A local git step failed in cvsync's clone (it cannot be opened or read)."""

    reason = "GitCloneBroken"
    retryable = True


class GitCloneUnusableError(SourceError):
    """The clone is broken and cvsync may not, or cannot, delete it and clone again."""

    reason = "GitCloneUnusable"
    retryable = False


def git_said(exc: GitCommandError, clean: Callable[[str], str], limit: int = MAX_DETAIL) -> str:
    """git's own account of a failure (cleaned of secrets by `clean`), in whole lines: the
    lines up to its last fatal: or error: line (what follows is advice), without hints or
    progress, at most the last four and `limit` characters (earlier lines go first)."""
    raw = clean(str(exc.stderr or "").removeprefix("\n  stderr: '").removesuffix("'"))
    lines = [ln.strip() for ln in raw.splitlines() if ln.strip() and not _NOISE.match(ln.strip())]
    causes = [number for number, line in enumerate(lines) if line.lower().startswith(_CAUSE)]
    lines = lines[: causes[-1] + 1] if causes else lines
    lines = lines[-_DETAIL_LINES:]
    while len(lines) > 1 and len("; ".join(lines)) > limit:
        lines.pop(0)
    detail = "; ".join(lines)
    if len(detail) > limit:
        detail = detail[:limit] + "…"
    return detail or f"git exited with status {exc.status}"


def _age(path: Path) -> float | None:
    """Seconds since `path` last changed (a clock jump counts either way); None when absent."""
    try:
        return abs(time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path)
    else:
        os.unlink(entry.path)


class CloneKeeper:
    """Keeps the clone in `workdir` usable. A lock file older than `stale_after` seconds is
    removed (and logged with its path, once); a younger one in git's way is waited for up to
    `lock_wait` seconds. A clone that proves broken (git cannot read it, or `RECREATE_AFTER`
    cycles in a row failed in it) is deleted and cloned again: nothing is lost, a clone holds
    no work of its own (the read side's has no commits, the writer rebuilds on the tip)."""

    def __init__(
        self,
        workdir: Path,
        *,
        stale_after: float,
        lock_wait: float,
        hold_timeout: float,
        clean: Callable[[str], str],
    ) -> None:
        self.workdir = workdir
        self.git_dir = workdir.absolute() / ".git"
        self.stale_after = stale_after
        self.lock_wait = lock_wait
        self.hold_timeout = hold_timeout
        self.clean = clean
        self._failures = 0  # cycles in a row that failed for no reason git's remote gave

    def environment(self) -> dict[str, str]:
        """Variables that tie each git call to this clone: with its .git broken, git would
        otherwise look for a repository in the directories above it."""
        return {"GIT_DIR": str(self.git_dir), "GIT_WORK_TREE": str(self.workdir.absolute())}

    def initialize(self) -> bool:
        """An absent or empty work directory becomes an empty clone with cvsync's mark. False
        when it holds other files and no clone: not cvsync's to use."""
        if self.git_dir.exists() or self.git_dir.is_symlink():
            return True
        try:
            if self.workdir.exists() and any(self.workdir.iterdir()):
                return False
            self.workdir.mkdir(parents=True, exist_ok=True)
            git.Repo.init(self.workdir).close()
            self._mark()
        except (OSError, GitCommandError) as exc:
            raise GitCloneUnusableError(f"cannot create a clone in {self.workdir}: {exc}") from None
        return True

    def open(self) -> git.Repo:
        try:
            return git.Repo(self.workdir)
        except (InvalidGitRepositoryError, NoSuchPathError):
            raise GitCloneBrokenError(f"git cannot open the clone in {self.workdir}") from None

    def origin_args(self, repo: git.Repo, url: str) -> tuple[str, ...]:
        """The `git remote` arguments that make origin `url`; none when it already is."""
        try:
            urls = {remote.name: remote.url for remote in repo.remotes}
        except (configparser.Error, ValueError, OSError) as exc:
            said = self.clean(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise GitCloneBrokenError(f"{self.git_dir / 'config'} is unreadable: {said}") from None
        if "origin" not in urls:
            return ("add", "origin", url)
        return () if urls["origin"] == url else ("set-url", "origin", url)

    def cycle(
        self,
        step: Callable[[], _T],
        *,
        suspect: tuple[type[SourceError], ...],
        release: Callable[[], None],
    ) -> _T:
        """Run `step` (one cycle's git work) holding the clone, stale locks cleared first.
        When it fails with a `suspect` error (nothing the remote said) and the clone proves
        broken, `release` (drop open handles), delete the clone, clone again, run once more."""
        catch: tuple[type[SourceError], ...] = (*suspect, GitCloneBrokenError)
        with self._held():
            self.sweep()
            try:
                result = step()
            except catch as exc:
                problem = self._diagnose(exc)
                if problem is None:
                    raise
                release()
                self._recreate(problem)
                result = step()
            self._failures = 0
            self._mark()
            return result

    def run(self, command: Callable[[], _T], action: str) -> _T:
        """One git call. A lock file git finds in its way is removed once it is stale, or
        waited for; then the call is made again. GitCommandError for any other failure."""
        lock: Path | None = None
        for _ in range(_LOCK_ROUNDS):
            try:
                return command()
            except GitCommandError as exc:
                found = _IN_THE_WAY.search(str(exc.stderr or ""))
                if found is None:
                    raise
                lock = Path(found.group(1))
                self._wait_out(lock if lock.is_absolute() else self.workdir / lock, action)
        raise GitLockedError(f"{action} in {self.workdir}: git kept finding locks, last {lock}")

    def sweep(self) -> None:
        """Remove the lock files here older than `stale_after`; younger ones are left alone
        (`run` waits for one that is in git's way)."""
        candidates = [self.git_dir / name for name in _LOCK_FILES]
        for directory, _, names in os.walk(self.git_dir / "refs"):
            candidates += [Path(directory, name) for name in names if name.endswith(".lock")]
        for path in candidates:
            age = _age(path)
            if age is not None and age >= self.stale_after:
                self._remove_stale(path, age)

    def owned(self) -> bool:
        """Whether cvsync made or has used this clone (and so may delete it)."""
        return not self.git_dir.is_symlink() and (self.git_dir / MARK_FILE).is_file()

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        holder = self.git_dir / HOLDER_FILE
        try:
            fd = os.open(holder, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:  # .git is a file (someone's worktree), or not writable
            raise GitCloneUnusableError(
                f"{self.workdir} is not a clone cvsync can use: {holder}: {exc.strerror}"
            ) from None
        try:
            deadline = time.monotonic() + self.hold_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise GitLockedError(
                            f"{self.workdir} is in use by another cvsync (it holds {holder}):"
                            " give each cvsync a work directory of its own"
                        ) from None
                    time.sleep(_POLL)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the hold

    def _wait_out(self, lock: Path, action: str) -> None:
        if not lock.resolve().is_relative_to(self.git_dir.resolve()):
            raise GitLockedError(
                f"{action} in {self.workdir}: {lock} is in git's way; it is outside cvsync's"
                " clone, so cvsync leaves it: remove it if no git process is using it"
            )
        deadline = time.monotonic() + self.lock_wait
        while (age := _age(lock)) is not None:
            if age >= self.stale_after:
                self._remove_stale(lock, age)
                return
            if time.monotonic() >= deadline:
                raise GitLockedError(
                    f"{action} in {self.workdir}: the lock file {lock} is in the way"
                    f" ({age:.0f} s old): a git process is working in this clone, or one was"
                    f" stopped there. cvsync removes it once it is {self.stale_after:.0f} s old;"
                    " if no git process is running there, remove it now"
                )
            time.sleep(_POLL)

    def _remove_stale(self, lock: Path, age: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
            _LOG.warning(
                "removed the git lock file %s: %.0f s old, left by a git process that was stopped",
                lock,
                age,
                extra={"path": str(lock)},
            )

    def _diagnose(self, failure: SourceError) -> str | None:
        """Why the clone must be made again after `failure`; None to keep it (and fail)."""
        problem = self._fsck()
        if problem is not None and not self.owned():
            raise GitCloneUnusableError(
                f"the git repository in {self.workdir} is broken ({problem}), and cvsync did"
                " not make it, so it leaves it alone: remove it, and cvsync clones again"
            ) from None
        if problem is None:
            self._failures += 1
            if self._failures < RECREATE_AFTER or not self.owned():
                return None
            problem = f"{self._failures} cycles in a row failed in it, the last: {failure}"
        return problem

    def _fsck(self) -> str | None:
        try:
            git.Git(self.workdir).execute(
                ["git", "fsck", "--connectivity-only", "--no-dangling", "--no-progress"],
                env=self.environment(),
                kill_after_timeout=self.hold_timeout,
            )
        except GitCommandError as exc:
            # fsck names missing and broken objects on stdout, git's own failures on stderr.
            found = str(exc.stdout or "").removeprefix("\n  stdout: '").strip("' \n")
            if exc.stderr or not found:
                return git_said(exc, self.clean)
            return self.clean(found.splitlines()[0])
        return None

    def _recreate(self, problem: str) -> None:
        _LOG.warning(
            "the git clone in %s is broken (%s): deleting it and cloning it again",
            self.workdir,
            problem,
            extra={"path": str(self.workdir)},
        )
        try:
            for entry in os.scandir(self.workdir):
                if entry.name != ".git":
                    _remove(entry)
            for entry in os.scandir(self.git_dir):
                if entry.name not in (HOLDER_FILE, MARK_FILE):
                    _remove(entry)
            git.Repo.init(self.workdir).close()
        except (OSError, GitCommandError) as exc:
            raise GitCloneUnusableError(
                f"the git clone in {self.workdir} is broken ({problem}) and cannot be made"
                f" again: {exc}"
            ) from None
        self._failures = 0

    def _mark(self) -> None:
        mark = self.git_dir / MARK_FILE
        if not mark.exists():
            mark.write_text(_MARK_TEXT)
