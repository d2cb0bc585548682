"""Read the desired state from git: cvsync's own shallow clone, or a git-sync work tree.

Implements the Source port with GitPython; credentials reach git only through its environment.
"""

from __future__ import annotations

import asyncio
import base64
import os
import posixpath
import re
import shlex
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError, ODBError
from git.refs.symbolic import SymbolicReference

from agent.adapters.git_upkeep import CloneKeeper, GitCloneBrokenError, git_said
from agent.errors import SourceError
from agent.model.revision import Revision, Snapshot

REDACTED = "***"
DEFAULT_TOKEN_USERNAME = "x-access-token"  # what GitHub documents; most hosts accept any name
_SYMLINK_MODE = 0o120000
_SHA_RE = re.compile(r"[0-9a-fA-F]{7,64}")
# scheme://user:password@ and, for http(s), scheme://token@: both are secrets in a URL.
_URL_PASSWORD_RE = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*):[^@\s/]*@")
_HTTP_USERINFO_RE = re.compile(r"(\bhttps?://)[^/\s@]+@", re.IGNORECASE)

# A credential helper run by git's shell (no file to write or execute; /tmp may be noexec). It
# holds no secret: each git call's environment names the secret's file or variable, read only
# when git asks, so a rotated Secret volume is picked up without a restart. "store" and "erase"
# are ignored: nothing is ever written anywhere.
_HELPER = (
    '!f() { cat >/dev/null; test "$1" = get || return 0;'
    ' echo "username=$CVSYNC_GIT_USERNAME";'
    ' if [ -n "$CVSYNC_GIT_SECRET_FILE" ]; then s=$(head -n 1 "$CVSYNC_GIT_SECRET_FILE");'
    ' else s=$(printenv "$CVSYNC_GIT_SECRET_ENV"); fi;'
    " printf 'password=%s\\n' \"$s\" | tr -d '\\r'; }; f"
)


class GitAuthError(SourceError):
    """The server refused our credentials, or wanted some. Not retried: retrying bad
    credentials gets the address locked out; fix the Secret."""

    reason = "GitAuthFailed"
    retryable = False


class GitHostKeyError(SourceError):
    """SSH host key verification failed: the host is not in known_hosts, or its key changed."""

    reason = "GitHostKeyRejected"
    retryable = False


class GitRefNotFoundError(SourceError):
    """The branch, tag or commit cvsync is told to read does not exist on the remote."""

    reason = "GitRefNotFound"
    retryable = False


class GitUnreachableError(SourceError):
    """The remote could not be reached (DNS, connection, TLS, timeout, no repository there)."""

    reason = "GitRepositoryUnreachable"
    retryable = True


class GitFetchError(SourceError):
    """Any other failure of a git command while fetching or reading a revision."""

    reason = "GitFetchFailed"
    retryable = True


class GitConfigError(SourceError):
    """Settings that cannot work: credentials in the URL, a work directory holding other files."""

    reason = "GitConfigInvalid"
    retryable = False


class WorkTreeMissingError(SourceError):
    """The git-sync link (or its parent) does not exist yet; git-sync may not have synced."""

    reason = "GitWorkTreeMissing"
    retryable = True


class WorkTreeInvalidError(SourceError):
    """The directory behind the link is not a git checkout with a commit."""

    reason = "GitWorkTreeInvalid"
    retryable = False


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret, and any credential written into a URL, with ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _URL_PASSWORD_RE.sub(rf"\1:{REDACTED}@", text)
    return _HTTP_USERINFO_RE.sub(rf"\1{REDACTED}@", text)


@dataclass(frozen=True, slots=True)
class GitCredentials:
    """How to authenticate; secrets are named by file or environment variable, never held.

    HTTPS: a token (`token_file` or `token_env`, sent as the password of `username`, which
    defaults to x-access-token), or basic auth (`username` with `password_file` or
    `password_env`). SSH: `ssh_key_file`, checked against `known_hosts_file`.
    """

    token_file: Path | None = None
    token_env: str | None = None
    username: str | None = None
    password_file: Path | None = None
    password_env: str | None = None
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None

    def __post_init__(self) -> None:
        named = [self.token_file, self.token_env, self.password_file, self.password_env]
        if sum(item is not None for item in named) > 1:
            raise GitConfigError("git credentials: name one token or password source, not several")
        if (self.password_file or self.password_env) and not self.username:
            raise GitConfigError("git credentials: a password needs a username")

    @property
    def secret_file(self) -> Path | None:
        return self.token_file or self.password_file

    @property
    def secret_env(self) -> str | None:
        return self.token_env or self.password_env

    @property
    def http_username(self) -> str:
        return self.username or DEFAULT_TOKEN_USERNAME

    def current_secrets(self) -> tuple[str, ...]:
        """The secret as it is now (file or variable), in the forms a message could hold."""
        values: list[str] = []
        if self.secret_file is not None:
            try:
                raw = self.secret_file.read_text(errors="replace")
            except OSError:
                raw = ""
            values += [raw.strip(), *raw.splitlines()[:1]]
        if self.secret_env is not None:
            values.append(os.environ.get(self.secret_env, ""))
        out: list[str] = []
        for value in filter(None, {v.strip() for v in values}):
            pair = f"{self.http_username}:{value}".encode()
            out += [value, base64.b64encode(pair).decode()]
        return tuple(out)

    def environment(self) -> dict[str, str]:
        """Variables for one git call: no secret values, only where to find them. The empty
        helper first drops the machine's helpers (`store` would write our secret to disk)."""
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",  # set but empty: git then runs no askpass program at all
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "credential.helper",
            "GIT_CONFIG_VALUE_0": "",
        }
        if self.secret_file is not None or self.secret_env is not None:
            env |= {"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_1": "credential.helper"}
            env |= {"GIT_CONFIG_VALUE_1": _HELPER, "CVSYNC_GIT_USERNAME": self.http_username}
            if self.secret_file is not None:
                env["CVSYNC_GIT_SECRET_FILE"] = str(self.secret_file.absolute())
            else:
                env["CVSYNC_GIT_SECRET_ENV"] = self.secret_env or ""
        if self.ssh_key_file is not None:
            ssh = ["ssh", "-i", str(self.ssh_key_file.absolute()), "-o", "IdentitiesOnly=yes"]
            if self.known_hosts_file is not None:
                ssh += ["-o", f"UserKnownHostsFile={self.known_hosts_file.absolute()}"]
            ssh += ["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"]
            env["GIT_SSH_COMMAND"] = shlex.join(ssh)  # git runs it through the shell
        return env


# What git, curl and ssh print for each kind of failure, tried in this order.
_FAILURES: tuple[tuple[type[SourceError], re.Pattern[str]], ...] = (
    (GitHostKeyError, re.compile(r"host key verification failed|host identification has changed")),
    (
        GitAuthError,
        re.compile(
            r"authentication failed|could not read (username|password)|terminal prompts disabled"
            r"|permission denied \(publickey|access denied|returned error: 40[13]"
            r"|invalid username or password"
        ),
    ),
    (GitRefNotFoundError, re.compile(r"couldn't find remote ref|not our ref|unadvertised object")),
    (
        GitUnreachableError,
        re.compile(
            r"could not resolve|connect|connection reset|timed out|timeout:|unreachable"
            r"|no route to host|does not appear to be a git repository|repository not found"
            r"|repository '[^']*' not found"  # git over smart HTTP, when the server answers 404
            r"|could not read from remote repository|returned error: 404|ssl|unable to access"
        ),
    ),
)


def classify(exc: GitCommandError, action: str, url: str, secrets: Iterable[str]) -> SourceError:
    """Turn a failed git call into a SourceError whose message is safe to log and report:
    git's own words, whole (see git_said), with every secret redacted."""
    raw = str(exc.stderr or "").lower()
    detail = git_said(exc, lambda text: redact(text, secrets))
    message = f"{action} {redact(url, secrets)}: {detail}"
    for error, pattern in _FAILURES:
        if pattern.search(raw):
            return error(message)
    return GitFetchError(message)


class GitCloneSource:
    """cvsync's own clone of `url` at `ref` (a branch, tag or commit sha) in `workdir`.

    The work directory belongs to this source: refresh discards local edits to tracked files,
    and a clone that breaks is deleted and cloned again (see CloneKeeper, which also handles
    the lock files git leaves behind: stale after `stale_lock_after`, else waited for up to
    `lock_wait` seconds).
    """

    def __init__(
        self,
        url: str,
        ref: str,
        workdir: Path,
        paths: tuple[str, ...],
        credentials: GitCredentials | None = None,
        *,
        depth: int | None = 1,
        timeout: float = 300.0,
        stale_lock_after: float = 60.0,
        lock_wait: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.password or (parts.scheme in ("http", "https") and parts.username):
            # A credential in the URL would land in .git/config, `git remote -v` and errors.
            raise GitConfigError(f"git URL {redact(url, ())} holds credentials; use a Secret")
        self.url = url
        self.ref = ref
        self.workdir = workdir
        self.paths = paths
        self.credentials = credentials or GitCredentials()
        self.depth = depth
        self.timeout = timeout
        self._keeper = CloneKeeper(
            workdir,
            stale_after=stale_lock_after,
            lock_wait=lock_wait,
            hold_timeout=timeout,
            clean=lambda text: redact(text, self.credentials.current_secrets()),
        )
        self._repo: git.Repo | None = None
        self._lock = threading.Lock()  # to_thread calls outlive a cancelled await

    async def refresh(self) -> Snapshot:
        return await asyncio.to_thread(self._refresh_sync)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)

    def _refresh_sync(self) -> Snapshot:
        with self._lock:
            if not self._keeper.initialize():
                raise GitConfigError(f"{self.workdir} is not empty and is not a git repository")
            return self._keeper.cycle(
                self._read_revision, suspect=(GitFetchError,), release=self._release
            )

    def _read_revision(self) -> Snapshot:
        repo = self._open()
        sha = self._fetch(repo)
        self._git(repo, "checkout", "--force", "--detach", sha, action="checkout")
        try:
            files = read_commit(repo, sha, self.paths)
        except (ValueError, OSError, git.GitError, ODBError) as exc:
            raise GitCloneBrokenError(f"read {sha} in {self.workdir}: {exc}") from None
        return Snapshot(Revision(self.ref, sha), files)

    def _close_sync(self) -> None:
        with self._lock:
            self._release()

    def _release(self) -> None:
        if self._repo is not None:
            self._repo.close()  # ends GitPython's persistent cat-file processes
            self._repo = None

    def _git(self, repo: git.Repo, *args: str, action: str) -> str:
        env = self.credentials.environment() | self._keeper.environment()

        def call() -> str:
            out: str = repo.git.execute(["git", *args], env=env, kill_after_timeout=self.timeout)
            return out

        try:
            return self._keeper.run(call, action)
        except GitCommandError as exc:
            raise classify(exc, action, self.url, self.credentials.current_secrets()) from None

    def _open(self) -> git.Repo:
        if self._repo is None:
            repo = self._keeper.open()
            if args := self._keeper.origin_args(repo, self.url):
                self._git(repo, "remote", *args, action="configure")
            self._repo = repo
        return self._repo

    def _fetch(self, repo: git.Repo) -> str:
        """Fetch the ref into FETCH_HEAD and return its commit. A sha the server will not hand
        out by itself (older servers, short shas) is looked for in the full history instead."""
        depth = [f"--depth={self.depth}"] if self.depth is not None else []
        try:
            self._git(repo, "fetch", "--no-tags", *depth, "origin", self.ref, action="fetch")
        except GitRefNotFoundError:
            if not _SHA_RE.fullmatch(self.ref):
                raise
            return self._fetch_everything_for_sha(repo)
        return self._git(repo, "rev-parse", "--verify", "FETCH_HEAD^{commit}", action="read")

    def _fetch_everything_for_sha(self, repo: git.Repo) -> str:
        shallow = self._git(repo, "rev-parse", "--is-shallow-repository", action="read")
        unshallow = ["--unshallow"] if shallow == "true" else []
        specs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        self._git(repo, "fetch", "--no-tags", *unshallow, "origin", *specs, action="fetch")
        try:
            return self._git(repo, "rev-parse", "--verify", f"{self.ref}^{{commit}}", action="read")
        except SourceError:
            raise GitRefNotFoundError(f"fetch {self.url}: no commit {self.ref}") from None


def _normalize(path: str) -> str | None:
    """A requested path as a repository-relative POSIX path ("" for the root); None if it
    leaves the repository."""
    norm = posixpath.normpath(path.replace("\\", "/").lstrip("/"))
    if norm == ".":
        return ""
    return None if norm == ".." or norm.startswith("../") else norm


def read_commit(repo: git.Repo, sha: str, paths: Iterable[str]) -> tuple[tuple[str, bytes], ...]:
    """The requested files and directories (recursively) as stored in commit `sha`. Symlinks
    are skipped: their blob is only the link text, and a work-tree reader must not follow them."""
    tree = repo.commit(sha).tree
    found: dict[str, bytes] = {}
    for requested in paths:
        norm = _normalize(requested)
        if norm is None:
            continue
        try:
            item = tree / norm if norm else tree
        except KeyError:
            continue
        items = item.traverse() if isinstance(item, git.Tree) else [item]
        for entry in items:
            if isinstance(entry, git.Blob) and entry.mode != _SYMLINK_MODE:
                found[str(entry.path)] = entry.data_stream.read()
    return tuple(sorted(found.items()))


class LocalTreeSource:
    """A git-sync work tree: `link` is the symlink git-sync swaps (or a plain directory)."""

    _ATTEMPTS = 5

    def __init__(self, link: Path, ref_name: str, paths: tuple[str, ...]) -> None:
        self.link = link
        self.ref_name = ref_name
        self.paths = paths

    async def refresh(self) -> Snapshot:
        return await asyncio.to_thread(self._refresh_sync)

    async def close(self) -> None:
        return None

    def _resolve(self) -> Path:
        try:
            return self.link.resolve(strict=True)
        except (FileNotFoundError, NotADirectoryError, RuntimeError):
            raise WorkTreeMissingError(f"{self.link} does not exist (yet)") from None

    def _refresh_sync(self) -> Snapshot:
        # git-sync swaps the link and then deletes the old checkout, possibly while we read it:
        # read, then check the link still points where it did, else read again.
        for _ in range(self._ATTEMPTS):
            root = self._resolve()
            try:
                sha = _head_sha(root)
                files = read_tree(root, self.paths)
            except (OSError, WorkTreeInvalidError) as exc:
                if self._resolve() != root or isinstance(exc, FileNotFoundError):
                    continue  # the link moved on, or a file vanished, while we read
                if isinstance(exc, OSError):
                    raise WorkTreeInvalidError(f"{root}: cannot read: {exc.strerror}") from None
                raise
            if self._resolve() == root:
                return Snapshot(Revision(self.ref_name, sha), files)
        raise WorkTreeMissingError(f"{self.link} kept changing while it was read")


def _head_sha(root: Path) -> str:
    try:
        with git.Repo(root) as repo:
            # Resolved from the ref files in Python: `repo.head.commit` would start a
            # `git cat-file` process on every refresh (~7 ms of a ~25 ms cycle).
            return str(SymbolicReference.dereference_recursive(repo, "HEAD"))
    except NoSuchPathError:
        raise FileNotFoundError(root) from None
    except InvalidGitRepositoryError:
        raise WorkTreeInvalidError(f"{root} is not a git checkout") from None
    except ValueError:  # HEAD names a branch with no commit
        raise WorkTreeInvalidError(f"{root} has no commit checked out") from None


def read_tree(root: Path, paths: Iterable[str]) -> tuple[tuple[str, bytes], ...]:
    """The requested files and directories under `root` (already resolved). Anything reached
    through a symlink is skipped, so a link in the repository cannot read the pod's secrets."""
    found: dict[str, bytes] = {}
    for requested in paths:
        norm = _normalize(requested)
        if norm is None:
            continue
        start = root / norm if norm else root
        if not start.exists() or start.resolve() != start:
            continue
        if start.is_file():
            found[norm] = start.read_bytes()
            continue
        for directory, dirnames, filenames in os.walk(start):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in filenames:
                path = Path(directory, name)
                if not path.is_symlink() and path.is_file():
                    found[path.relative_to(root).as_posix()] = path.read_bytes()
    return tuple(sorted(found.items()))
