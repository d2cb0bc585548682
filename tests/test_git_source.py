"""GitCloneSource against real repositories: a bare remote over file://, and a smart-HTTP
server with basic auth in front of `git http-backend`; secrets must never leak."""

from __future__ import annotations

import logging
import shutil
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from git.exc import GitCommandError
from git_http_server import GitHttpServer
from gitrepo import isolate_git
from gitrepo import run_git as git

from agent.adapters.git import (
    GitAuthError,
    GitCloneSource,
    GitConfigError,
    GitCredentials,
    GitFetchError,
    GitHostKeyError,
    GitRefNotFoundError,
    GitUnreachableError,
    classify,
    redact,
)
from agent.errors import SourceError

SPEC = "clusters/prod/clusterversion.yaml"
POLICY = "clusters/prod/policy.yaml"
PATHS = (SPEC, POLICY, "status")
TOKEN = "tok-5f3c9a1e7d2b4c6a8e0f"


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the tests nor the source under test may see the machine's git config."""
    isolate_git(tmp_path / "home", monkeypatch)


@dataclass
class Upstream:
    """A bare remote and a working clone that commits and pushes to it."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git(self.work, "add", "--all")
        git(self.work, "commit", "--quiet", "--allow-empty", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *options: str) -> None:
        git(self.work, "push", "--quiet", *options, "origin", "HEAD:main")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    bare = tmp_path / "remote.git"
    work = tmp_path / "author"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    git(work, "remote", "add", "origin", bare.as_uri())
    return Upstream(bare, work)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "clone"


async def read(source: GitCloneSource) -> tuple[str, dict[str, bytes]]:
    snapshot = await source.refresh()
    return snapshot.revision.sha, dict(snapshot.files)


async def test_a_clone_sees_each_new_commit_and_only_the_requested_files(
    upstream: Upstream, workdir: Path
) -> None:
    first = upstream.commit({SPEC: "v: 1\n", "README.md": "x", "status/prod.yaml": "s: 1\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    try:
        snapshot = await source.refresh()
        assert str(snapshot.revision) == f"main@sha1:{first}"
        assert dict(snapshot.files) == {SPEC: b"v: 1\n", "status/prod.yaml": b"s: 1\n"}

        second = upstream.commit({SPEC: "v: 2\n", POLICY: "p: 1\n"})
        upstream.push()
        sha, files = await read(source)
        assert sha == second
        assert files == {SPEC: b"v: 2\n", POLICY: b"p: 1\n", "status/prod.yaml": b"s: 1\n"}

        assert (await read(source))[0] == second  # nothing new: the same revision again
    finally:
        await source.close()


async def test_the_clone_is_shallow(upstream: Upstream, workdir: Path) -> None:
    for number in range(3):
        upstream.commit({SPEC: f"v: {number}\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    try:
        await source.refresh()
        upstream.commit({SPEC: "v: 4\n"})
        upstream.push()
        await source.refresh()
    finally:
        await source.close()
    assert git(workdir, "rev-parse", "--is-shallow-repository") == "true"
    assert git(workdir, "rev-list", "--count", "HEAD") == "1"


async def test_depth_none_fetches_the_full_history(upstream: Upstream, workdir: Path) -> None:
    for number in range(3):
        upstream.commit({SPEC: f"v: {number}\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials(), depth=None)
    try:
        await source.refresh()
    finally:
        await source.close()
    assert git(workdir, "rev-parse", "--is-shallow-repository") == "false"
    assert git(workdir, "rev-list", "--count", "HEAD") == "3"


async def test_files_come_from_the_commit_not_from_a_dirty_work_tree(
    upstream: Upstream, workdir: Path
) -> None:
    upstream.commit({SPEC: "v: 1\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    try:
        await source.refresh()
        (workdir / SPEC).write_text("edited locally\n")
        (workdir / POLICY).write_text("untracked\n")
        _, files = await read(source)
    finally:
        await source.close()
    assert files == {SPEC: b"v: 1\n"}


@pytest.mark.parametrize("annotated", [True, False], ids=["annotated", "lightweight"])
async def test_a_tag_ref_reads_the_tagged_commit(
    upstream: Upstream, workdir: Path, annotated: bool
) -> None:
    tagged = upstream.commit({SPEC: "v: tagged\n"})
    git(upstream.work, "tag", *(["-a", "-m", "release"] if annotated else []), "v1.0")
    upstream.commit({SPEC: "v: later\n"})
    upstream.push("--tags")
    source = GitCloneSource(upstream.url, "v1.0", workdir, PATHS, GitCredentials())
    try:
        snapshot = await source.refresh()
    finally:
        await source.close()
    assert snapshot.revision.ref == "v1.0"
    assert snapshot.revision.sha == tagged
    assert snapshot.file(SPEC) == b"v: tagged\n"


async def test_a_commit_sha_ref_reads_that_commit(upstream: Upstream, workdir: Path) -> None:
    pinned = upstream.commit({SPEC: "v: pinned\n"})
    upstream.commit({SPEC: "v: later\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, pinned, workdir, PATHS, GitCredentials())
    try:
        sha, files = await read(source)
    finally:
        await source.close()
    assert sha == pinned
    assert files == {SPEC: b"v: pinned\n"}


async def test_a_force_pushed_remote_still_refreshes_to_the_new_commit(
    upstream: Upstream, workdir: Path
) -> None:
    base = upstream.commit({SPEC: "v: 1\n"})
    upstream.commit({SPEC: "v: 2\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    try:
        await source.refresh()
        git(upstream.work, "reset", "--quiet", "--hard", base)
        rewritten = upstream.commit({SPEC: "v: rewritten\n"}, "history rewritten")
        upstream.push("--force")
        sha, files = await read(source)
    finally:
        await source.close()
    assert sha == rewritten
    assert files == {SPEC: b"v: rewritten\n"}


@pytest.mark.parametrize("ref", ["no-such-branch", "0" * 40], ids=["branch", "sha"])
async def test_a_missing_ref_is_reported_as_ref_not_found(
    upstream: Upstream, workdir: Path, ref: str
) -> None:
    upstream.commit({SPEC: "v: 1\n"})
    upstream.push()
    source = GitCloneSource(upstream.url, ref, workdir, PATHS, GitCredentials())
    try:
        with pytest.raises(GitRefNotFoundError) as caught:
            await source.refresh()
    finally:
        await source.close()
    assert caught.value.reason == "GitRefNotFound"
    assert not caught.value.retryable


async def test_a_restarted_agent_reuses_its_work_directory(
    upstream: Upstream, workdir: Path
) -> None:
    upstream.commit({SPEC: "v: 1\n"})
    upstream.push()
    first = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    await first.refresh()
    await first.close()
    newer = upstream.commit({SPEC: "v: 2\n"})
    upstream.push()
    second = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    try:
        assert (await read(second))[0] == newer
    finally:
        await second.close()


async def test_a_work_directory_holding_other_files_is_refused(
    upstream: Upstream, workdir: Path
) -> None:
    workdir.mkdir()
    (workdir / "precious.txt").write_text("not ours")
    source = GitCloneSource(upstream.url, "main", workdir, PATHS, GitCredentials())
    with pytest.raises(GitConfigError):
        await source.refresh()
    await source.close()
    assert (workdir / "precious.txt").read_text() == "not ours"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["file", "http"])
async def test_an_unreachable_remote_fails_without_secrets_in_the_error(
    tmp_path: Path, workdir: Path, kind: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    if kind == "file":
        url = (tmp_path / "missing.git").as_uri()
    else:
        url = f"http://127.0.0.1:{closed_port()}/repo.git"
    source = GitCloneSource(url, "main", workdir, PATHS, GitCredentials(token_file=token_file))
    try:
        with pytest.raises(GitUnreachableError) as caught:
            await source.refresh()
    finally:
        await source.close()
    assert caught.value.retryable
    assert caught.value.reason == "GitRepositoryUnreachable"
    assert caught.value.__cause__ is None
    assert TOKEN not in "".join(traceback.format_exception(caught.value))


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the OpenSSH client")
async def test_ssh_uses_the_key_and_known_hosts_and_never_trusts_a_new_host(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "ssh key"  # a space, to prove the command is quoted for the shell
    key.write_text("not really a key\n")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))
    creds = GitCredentials(ssh_key_file=key, known_hosts_file=known_hosts)
    port = closed_port()
    source = GitCloneSource(f"ssh://git@127.0.0.1:{port}/repo.git", "main", workdir, PATHS, creds)
    try:
        with pytest.raises(GitUnreachableError) as caught:
            await source.refresh()
    finally:
        await source.close()
    # ssh got as far as our host and port: the quoted key path did not split the command.
    assert f"connect to host 127.0.0.1 port {port}" in str(caught.value)
    ran = trace.read_text()
    assert str(key) in ran
    assert f"UserKnownHostsFile={known_hosts}" in ran
    assert "StrictHostKeyChecking=yes" in ran
    assert "BatchMode=yes" in ran


def test_a_url_with_a_password_is_refused_without_echoing_it(workdir: Path) -> None:
    with pytest.raises(GitConfigError) as caught:
        GitCloneSource(f"https://me:{TOKEN}@git.example/r.git", "main", workdir, PATHS)
    assert TOKEN not in str(caught.value)


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (
            "git@github.com: Permission denied (publickey).\n"
            "fatal: Could not read from remote repository.\n\n"
            "Please make sure you have the correct access rights\nand the repository exists.",
            GitAuthError,
        ),
        (
            "No ED25519 host key is known for github.com and you have requested strict checking."
            "\nHost key verification failed.\nfatal: Could not read from remote repository.",
            GitHostKeyError,
        ),
        (
            "remote: Permission to org/repo.git denied to bot.\nfatal: unable to access "
            "'https://github.com/org/repo.git/': The requested URL returned error: 403",
            GitAuthError,
        ),
        ("fatal: couldn't find remote ref refs/heads/nope", GitRefNotFoundError),
        ('Timeout: the command "git fetch" did not complete in 300 secs.', GitUnreachableError),
        ("error: object file .git/objects/ab/cd is empty\nfatal: loose object is corrupt", None),
    ],
    ids=["ssh-key-refused", "host-key", "https-403", "ref", "timeout", "other"],
)
def test_git_failures_are_classified_by_what_git_printed(
    stderr: str, expected: type[SourceError] | None
) -> None:
    failure = GitCommandError(["git", "fetch", "origin", "main"], 128, stderr)
    error = classify(failure, "fetch", "ssh://git@github.com/org/repo.git", [])
    assert type(error) is (expected or GitFetchError)
    assert "Please make sure" not in str(error)
    assert stderr.splitlines()[0] in str(error)  # the cause, not only "could not read"


def test_redact_hides_secrets_and_credentials_written_into_urls() -> None:
    text = f"fatal: {TOKEN} at https://{TOKEN}@h/r and ssh://git:pw@h/r and https://u:pw@h/r"
    assert redact(text, [TOKEN, ""]) == (
        "fatal: *** at https://***@h/r and ssh://git:***@h/r and https://***@h/r"
    )


@pytest.fixture
def http_server(tmp_path: Path, upstream: Upstream) -> Iterator[GitHttpServer]:
    upstream.commit({SPEC: "v: over-http\n"})
    upstream.push()
    with GitHttpServer(tmp_path, token=TOKEN) as server:
        yield server


def assert_no_token(texts: list[str], root: Path) -> None:
    for text in texts:
        assert TOKEN not in text
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path


async def test_https_with_the_right_token_clones_and_the_token_appears_nowhere(
    tmp_path: Path,
    workdir: Path,
    http_server: GitHttpServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    trace = tmp_path / "git-trace.log"
    monkeypatch.setenv("GIT_TRACE", str(trace))  # every command git runs, with its arguments
    # A machine-wide `credential.helper store` would write whatever git was given to disk.
    stored = tmp_path / "home" / "stored-credentials"
    global_config = tmp_path / "home" / "gitconfig"
    global_config.write_text(f"[credential]\n\thelper = store --file={stored}\n")
    token_file = tmp_path / "secret" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    url = http_server.url("remote")
    creds = GitCredentials(token_file=token_file)
    source = GitCloneSource(url, "main", workdir, PATHS, creds)
    try:
        snapshot = await source.refresh()
        assert snapshot.file(SPEC) == b"v: over-http\n"
    finally:
        await source.close()
    assert 401 in http_server.statuses()  # the server did ask, and then accepted
    ran = trace.read_text()
    assert "CVSYNC_GIT_SECRET_FILE" in ran  # git ran our credential helper
    remotes = git(workdir, "remote", "-v")
    assert url in remotes
    helper_env = "\n".join(f"{k}={v}" for k, v in creds.environment().items())
    assert_no_token([remotes, helper_env, caplog.text, ran], workdir)
    assert not stored.exists()


async def test_https_with_a_wrong_token_fails_auth_and_names_no_secret(
    tmp_path: Path,
    workdir: Path,
    http_server: GitHttpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-7c1d2e3f4a5b6c7d"
    token_file = tmp_path / "token"
    token_file.write_text(wrong)
    creds = GitCredentials(token_file=token_file)
    source = GitCloneSource(http_server.url("remote"), "main", workdir, PATHS, creds)
    try:
        with pytest.raises(GitAuthError) as caught:
            await source.refresh()
    finally:
        await source.close()
    error = caught.value
    assert error.reason == "GitAuthFailed"
    assert not error.retryable
    shown = "".join(traceback.format_exception(error))
    assert wrong not in shown
    assert wrong not in caplog.text
    assert_no_token([shown, caplog.text], workdir)


async def test_https_basic_auth_reads_the_password_from_an_environment_variable(
    tmp_path: Path, upstream: Upstream, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream.commit({SPEC: "v: basic\n"})
    upstream.push()
    monkeypatch.setenv("CVSYNC_TEST_GIT_PASSWORD", TOKEN)
    creds = GitCredentials(username="robot", password_env="CVSYNC_TEST_GIT_PASSWORD")
    with GitHttpServer(tmp_path, token=TOKEN, username="robot") as server:
        source = GitCloneSource(server.url("remote"), "main", workdir, PATHS, creds)
        try:
            assert (await source.refresh()).file(SPEC) == b"v: basic\n"
        finally:
            await source.close()
    assert_no_token([git(workdir, "remote", "-v")], workdir)


def test_credentials_naming_two_secrets_are_refused() -> None:
    with pytest.raises(SourceError):
        GitCredentials(token_file=Path("/a"), password_env="B", username="u")
    with pytest.raises(SourceError):
        GitCredentials(password_env="B")
