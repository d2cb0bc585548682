"""StatusWriter against real repositories: bare remotes over file://, hooks that reject pushes
or race a human commit in, and the smart-HTTP server with token auth; no mocks."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from git_http_server import GitHttpServer
from gitrepo import Remote, git

from agent.adapters.git import (
    GitAuthError,
    GitConfigError,
    GitCredentials,
    GitRefNotFoundError,
    GitUnreachableError,
)
from agent.adapters.git_writer import (
    PublishResult,
    StatusPathRefusedError,
    StatusPushFailedError,
    StatusPushRefusedError,
    StatusWriter,
    status_commit_message,
)
from agent.errors import SourceError

SPEC = "clusters/x/clusterversion.yaml"
STATUS = "status/x.yaml"
LOCKS = ("index.lock", "shallow.lock", "refs/cvsync/publish.lock")
TOKEN = "tok-9b8a7c6d5e4f3a2b1c0d"
MESSAGE = status_commit_message("x", "4.16.3", "Completed", "id-x", "main@sha1:" + "a" * 40)


pytestmark = pytest.mark.usefixtures("git_without_identity")


def writer(remote_url: str, workdir: Path, **options: Any) -> StatusWriter:
    options.setdefault("backoff_base", 0.01)
    return StatusWriter(remote_url, "main", workdir, None, **options)


def tip(bare: Path, ref: str = "main") -> str:
    return git(bare, "rev-parse", ref)


def show(bare: Path, path: str, ref: str = "main") -> str:
    return git(bare, "show", f"{ref}:{path}")


def set_hook(bare: Path, body: str) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ncat >/dev/null\n" + body)
    hook.chmod(0o755)


def test_the_commit_message_is_status_cluster_version_state_with_two_trailers(
    tmp_path: Path,
) -> None:
    message = status_commit_message(
        "prod-east", "4.16.3", "Completed", "0a1b2c3d-id", "main@sha1:" + "f" * 40
    )
    assert message == (
        "status(prod-east): 4.16.3 Completed\n\n"
        "Cluster-ID: 0a1b2c3d-id\n"
        f"Source-Revision: main@sha1:{'f' * 40}\n"
    )
    parsed = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=message, capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    trailers = parsed.stdout.strip()
    assert trailers.splitlines() == [
        "Cluster-ID: 0a1b2c3d-id",
        f"Source-Revision: main@sha1:{'f' * 40}",
    ]


def test_a_newline_in_a_value_cannot_forge_a_trailer() -> None:
    message = status_commit_message("x\n\nCluster-ID: evil", "4.16.3", "", "id", "rev")
    assert message.splitlines()[0] == "status(x Cluster-ID: evil): 4.16.3 unknown"
    assert message.count("Cluster-ID:") == 2  # the forged one is inside the subject line
    assert message.splitlines()[2] == "Cluster-ID: id"


async def test_a_publish_commits_only_its_files_as_the_configured_author_on_top_of_the_tip(
    remote: Remote, tmp_path: Path
) -> None:
    before = tip(remote.bare)
    status = writer(
        remote.url, tmp_path / "w", author_name="cvsync bot", author_email="bot@cvsync.test"
    )
    try:
        result = await status.publish(
            {STATUS: b"version: 4.16.3\n", "status/x.md": b"# x\n"}, MESSAGE
        )
    finally:
        await status.close()
    assert result == PublishResult(committed=True, sha=tip(remote.bare), attempts=1)
    assert git(remote.bare, "rev-parse", "main^") == before
    assert git(remote.bare, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%B") == (
        f"cvsync bot <bot@cvsync.test>|cvsync bot <bot@cvsync.test>|{MESSAGE.strip()}"
    )
    changed = git(remote.bare, "diff-tree", "--no-commit-id", "--name-only", "-r", "main")
    assert changed.splitlines() == ["status/x.md", STATUS]
    assert show(remote.bare, STATUS) == "version: 4.16.3"
    assert show(remote.bare, SPEC) == "spec: 1"


async def test_publishing_the_same_bytes_again_makes_no_commit(
    remote: Remote, tmp_path: Path
) -> None:
    status = writer(remote.url, tmp_path / "w")
    try:
        first = await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        again = await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        other = writer(remote.url, tmp_path / "w2")  # a fresh clone sees the same bytes too
        fresh = await other.publish({STATUS: b"version: 1\n"}, MESSAGE)
        await other.close()
    finally:
        await status.close()
    assert first.committed
    assert again == PublishResult(committed=False, sha=first.sha, attempts=1)
    assert fresh == again
    assert tip(remote.bare) == first.sha


async def test_publishes_on_one_writer_land_in_call_order_so_the_newest_content_wins(
    remote: Remote, tmp_path: Path
) -> None:
    status = writer(remote.url, tmp_path / "w")
    try:
        results = await asyncio.gather(
            *(status.publish({STATUS: f"update: {n}\n".encode()}, MESSAGE) for n in range(3))
        )
    finally:
        await status.close()
    assert [r.committed for r in results] == [True, True, True]
    assert tip(remote.bare) == results[-1].sha
    assert show(remote.bare, STATUS) == "update: 2"


@pytest.mark.parametrize(
    "path",
    [
        SPEC,
        "status/../clusters/x/clusterversion.yaml",
        "/status/x.yaml",
        "./status/x.yaml",
        "status//x.yaml",
        "status/.git/config",
        "status/",
        "statusx.yaml",
        "status/x\nclusters/y",
    ],
)
async def test_writes_outside_the_status_prefix_are_refused_before_any_git_call(
    remote: Remote, tmp_path: Path, path: str
) -> None:
    before = tip(remote.bare)
    status = writer(remote.url, tmp_path / "w")
    with pytest.raises(StatusPathRefusedError) as caught:
        await status.publish({STATUS: b"ok\n", path: b"evil\n"}, MESSAGE)
    await status.close()
    assert caught.value.reason == "StatusPathRefused"
    assert not caught.value.retryable
    assert tip(remote.bare) == before
    assert not (tmp_path / "w").exists()


@pytest.mark.timeout(300)  # 45-80 s on 2 cores shared with other work; -s prints the time
async def test_twenty_concurrent_writers_lose_no_commit_and_never_force_push(
    remote: Remote, tmp_path: Path
) -> None:
    git(remote.bare, "config", "core.logAllRefUpdates", "always")  # a reflog of every update
    initial = tip(remote.bare)
    writers = [
        writer(remote.url, tmp_path / f"w{n}", max_attempts=100, backoff_base=0.1)
        for n in range(20)
    ]

    async def updates(number: int, status: StatusWriter) -> list[PublishResult]:
        results = []
        for update in range(10):
            body = f"cluster: cluster-{number}\nupdate: {update}\n".encode()
            message = status_commit_message(
                f"cluster-{number}", f"4.16.{update}", "Completed", f"id-{number}", "main@sha1:0"
            )
            results.append(await status.publish({f"status/cluster-{number}.yaml": body}, message))
        return results

    started = time.monotonic()
    try:
        outcome = await asyncio.gather(*(updates(n, w) for n, w in enumerate(writers)))
    finally:
        await asyncio.gather(*(w.close() for w in writers))
    elapsed = time.monotonic() - started
    final = tip(remote.bare)
    history = git(remote.bare, "rev-list", "main").split()
    assert len(history) == 201  # the human's commit and exactly 200 status commits
    assert git(remote.bare, "rev-list", "--count", f"{initial}..main") == "200"
    assert git(remote.bare, "rev-list", "--count", "--author=cvsync", "main") == "200"
    pushed = {result.sha for results in outcome for result in results}
    assert all(result.committed for results in outcome for result in results)
    assert len(pushed) == 200
    assert pushed <= set(history)
    subjects = set(git(remote.bare, "log", "--format=%s", "main").splitlines())
    for number in range(20):
        for update in range(10):
            assert f"status(cluster-{number}): 4.16.{update} Completed" in subjects
        assert show(remote.bare, f"status/cluster-{number}.yaml").endswith("update: 9")
    # Never forced: every value the branch ever held is still in the final tip's history.
    # Never forced: the remote's reflog shows 200 updates, each moving the branch from the
    # previous tip to a commit whose parent is that tip (a fast-forward by one commit).
    parents = dict(
        line.split()
        for line in git(remote.bare, "rev-list", "--parents", f"{initial}..main").splitlines()
    )
    updates_seen = [
        line.split()[:2] for line in (remote.bare / "logs/refs/heads/main").read_text().splitlines()
    ]
    assert len(updates_seen) == 200
    expected_old = initial
    for old, new in updates_seen:
        assert (old, parents[new]) == (expected_old, old)
        expected_old = new
    assert expected_old == final == history[0]
    attempts = sum(result.attempts for results in outcome for result in results)
    print(f"20 writers x 10 updates: {elapsed:.1f} s, {attempts} push attempts")


async def test_a_human_commit_pushed_between_the_writers_fetch_and_push_is_kept(
    remote: Remote, tmp_path: Path
) -> None:
    human = tmp_path / "human"
    git(tmp_path, "clone", "--quiet", remote.url, str(human))
    (human / SPEC).write_text("spec: 2 by a human\n")
    git(human, "commit", "--quiet", "-am", "human: bump the spec")
    human_sha = git(human, "rev-parse", "HEAD")
    marker = tmp_path / "race-once"
    marker.touch()
    # The first time the writer pushes (after its fetch), the human's push lands first.
    set_hook(
        remote.bare,
        f'if [ -e "{marker}" ]; then rm -f "{marker}"\n'
        "  unset GIT_DIR GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY\n"
        "  unset GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        f'  git -C "{human}" push --quiet origin HEAD:main >/dev/null 2>&1 || exit 1\n'
        "fi\n",
    )
    status = writer(remote.url, tmp_path / "w")
    try:
        result = await status.publish({STATUS: b"version: 4.16.3\n"}, MESSAGE)
    finally:
        await status.close()
    assert not marker.exists()
    assert result.committed
    assert result.attempts == 2
    assert tip(remote.bare) == result.sha
    assert git(remote.bare, "rev-parse", "main^") == human_sha
    assert show(remote.bare, SPEC) == "spec: 2 by a human"
    assert show(remote.bare, STATUS) == "version: 4.16.3"


async def test_a_writer_with_an_old_clone_keeps_a_human_commit_pushed_before_it(
    remote: Remote, tmp_path: Path
) -> None:
    status = writer(remote.url, tmp_path / "w")
    try:
        await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        git(remote.work, "pull", "--quiet", "--rebase", "origin", "main")
        human_sha = remote.commit({SPEC: "spec: 3\n"}, "human: edit")
        result = await status.publish({STATUS: b"version: 2\n"}, MESSAGE)
    finally:
        await status.close()
    assert git(remote.bare, "rev-parse", "main^") == human_sha
    assert result.attempts == 1
    assert (show(remote.bare, SPEC), show(remote.bare, STATUS)) == ("spec: 3", "version: 2")


async def test_a_remote_that_does_not_exist_gives_a_retryable_unreachable_error(
    tmp_path: Path,
) -> None:
    status = writer((tmp_path / "nowhere.git").as_uri(), tmp_path / "w")
    try:
        with pytest.raises(GitUnreachableError) as caught:
            await status.publish({STATUS: b"x\n"}, MESSAGE)
    finally:
        await status.close()
    assert caught.value.retryable
    assert "nowhere.git" in caught.value.message


@pytest.fixture
def http_server(tmp_path: Path, remote: Remote) -> Iterator[GitHttpServer]:
    # The server serves <root>/<name>.git: the remote's bare repository is upstream/remote.git.
    with GitHttpServer(remote.bare.parent, token=TOKEN) as server:
        yield server


async def test_the_right_token_pushes_over_http_and_appears_nowhere(
    tmp_path: Path, remote: Remote, http_server: GitHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token_file = tmp_path / "secret" / "token"
    token_file.parent.mkdir()
    token_file.write_text(TOKEN + "\n")
    creds = GitCredentials(token_file=token_file)
    status = StatusWriter(http_server.url("remote"), "main", tmp_path / "w", creds)
    try:
        result = await status.publish({STATUS: b"over: http\n"}, MESSAGE + f"leak {TOKEN}\n")
    finally:
        await status.close()
    assert result.committed
    assert show(remote.bare, STATUS) == "over: http"
    assert 401 in http_server.statuses()
    assert TOKEN not in git(remote.bare, "log", "-1", "--format=%B")  # redacted from messages
    assert TOKEN not in caplog.text
    for path in (tmp_path / "w").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


async def test_a_wrong_token_over_http_fails_auth_and_the_error_never_shows_it(
    tmp_path: Path, remote: Remote, http_server: GitHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-1f2e3d4c5b6a7980"
    token_file = tmp_path / "token"
    token_file.write_text(wrong + "\n")
    creds = GitCredentials(token_file=token_file)
    status = StatusWriter(http_server.url("remote"), "main", tmp_path / "w", creds)
    try:
        with pytest.raises(GitAuthError) as caught:
            await status.publish({STATUS: b"x\n"}, MESSAGE)
    finally:
        await status.close()
    assert not caught.value.retryable
    shown = "".join(traceback.format_exception(caught.value))
    for secret in (wrong, TOKEN):
        assert secret not in shown
        assert secret not in caplog.text


async def test_a_shallow_work_clone_commits_and_pushes(remote: Remote, tmp_path: Path) -> None:
    for number in range(2, 6):
        remote.commit({SPEC: f"spec: {number}\n"}, f"human: spec {number}")
    before = tip(remote.bare)
    workdir = tmp_path / "w"
    status = writer(remote.url, workdir, depth=1)
    try:
        result = await status.publish({STATUS: b"shallow: yes\n"}, MESSAGE)
    finally:
        await status.close()
    assert git(workdir, "rev-parse", "--is-shallow-repository") == "true"
    assert git(workdir, "rev-list", "--count", result.sha) == "2"  # our commit and the tip
    assert git(remote.bare, "rev-parse", "main^") == before
    assert git(remote.bare, "rev-list", "--count", "main") == "6"


async def test_stale_lock_files_left_by_a_killed_process_are_removed(
    remote: Remote, tmp_path: Path
) -> None:
    workdir = tmp_path / "w"
    status = writer(remote.url, workdir, stale_lock_after=30.0)
    try:
        await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        # index.lock as the issue names it; shallow.lock and the publish ref's lock are the
        # ones a killed fetch or commit of the writer leaves, and they would block it.
        locks = [workdir / ".git" / name for name in LOCKS]
        old = time.time() - 600
        for lock in locks:
            lock.write_bytes(b"")
            os.utime(lock, (old, old))
        result = await status.publish({STATUS: b"version: 2\n"}, MESSAGE)
    finally:
        await status.close()
    assert result.committed
    assert [lock for lock in locks if lock.exists()] == []
    assert show(remote.bare, STATUS) == "version: 2"


@pytest.mark.parametrize("name", LOCKS[1:])
async def test_a_fresh_lock_is_left_alone_and_the_publish_fails_retryably(
    remote: Remote, tmp_path: Path, name: str
) -> None:
    workdir = tmp_path / "w"
    status = writer(remote.url, workdir, stale_lock_after=30.0, lock_wait=0.2)
    try:
        await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        lock = workdir / ".git" / name
        lock.write_bytes(b"")  # as if a git process were running in the work directory now
        with pytest.raises(SourceError) as caught:
            await status.publish({STATUS: b"version: 2\n"}, MESSAGE)
    finally:
        await status.close()
    assert lock.exists()
    assert caught.value.retryable
    assert name in caught.value.message
    assert show(remote.bare, STATUS) == "version: 1"


async def test_a_remote_rejecting_every_push_ends_in_status_push_failed_after_max_attempts(
    remote: Remote, tmp_path: Path
) -> None:
    before = tip(remote.bare)
    calls = tmp_path / "hook-calls"
    set_hook(remote.bare, f'echo call >> "{calls}"\necho "protected branch" >&2\nexit 1\n')
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    status = StatusWriter(
        remote.url, "main", tmp_path / "w", max_attempts=6, backoff_base=0.5, backoff_cap=2.0,
        sleep=record,
    )  # fmt: skip
    try:
        with pytest.raises(StatusPushFailedError) as caught:
            await status.publish({STATUS: b"x\n"}, MESSAGE)
    finally:
        await status.close()
    error = caught.value
    assert (error.reason, error.retryable) == ("StatusPushFailed", True)
    assert "rejected 6 times" in error.message
    assert "pre-receive hook declined" in error.message
    assert calls.read_text().count("call") == 6
    assert tip(remote.bare) == before
    # Capped exponential backoff with jitter: each wait lies in [ceiling / 2, ceiling].
    ceilings = [0.5, 1.0, 2.0, 2.0, 2.0]
    assert len(waits) == 5
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_a_missing_dedicated_status_branch_is_created_as_an_orphan(
    remote: Remote, tmp_path: Path
) -> None:
    main = tip(remote.bare)
    status = StatusWriter(remote.url, "cvsync-status", tmp_path / "w", create_branch=True)
    try:
        first = await status.publish({STATUS: b"version: 1\n"}, MESSAGE)
        second = await status.publish({"status/y.yaml": b"version: 2\n"}, MESSAGE)
    finally:
        await status.close()
    assert first.committed
    assert second.committed
    assert tip(remote.bare, "cvsync-status") == second.sha
    assert git(remote.bare, "rev-list", "--max-parents=0", "cvsync-status") == first.sha
    files = git(remote.bare, "ls-tree", "-r", "--name-only", "cvsync-status").splitlines()
    assert files == [STATUS, "status/y.yaml"]
    assert tip(remote.bare) == main  # the branch people edit is untouched


async def test_a_missing_branch_is_not_created_unless_asked(remote: Remote, tmp_path: Path) -> None:
    status = StatusWriter(remote.url, "no-such-branch", tmp_path / "w")
    try:
        with pytest.raises(GitRefNotFoundError):
            await status.publish({STATUS: b"x\n"}, MESSAGE)
    finally:
        await status.close()
    assert "no-such-branch" not in git(remote.bare, "branch", "--list")


def test_a_url_holding_credentials_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GitConfigError) as caught:
        StatusWriter(f"https://bot:{TOKEN}@git.example/repo.git", "main", tmp_path / "w")
    assert TOKEN not in str(caught.value)


async def test_read_gives_a_status_file_from_the_remote_tip_and_none_when_absent(
    remote: Remote, tmp_path: Path
) -> None:
    status = writer(remote.url, tmp_path / "w")
    try:
        assert await status.read("status/x.yaml") is None
        await status.publish({"status/x.yaml": b"cvsync:\n  lastApplied: main@sha1:ab\n"}, MESSAGE)
        # Someone else's later commit on the branch is what a read sees.
        git(remote.work, "pull", "-q", "origin", "main")
        remote.commit({"status/x.yaml": "cvsync:\n  lastApplied: edited\n"}, "human edit")
        assert await status.read("status/x.yaml") == b"cvsync:\n  lastApplied: edited\n"
        with pytest.raises(SourceError):
            await status.read("clusters/x/clusterversion.yaml")  # only under status/
    finally:
        await status.close()


async def test_a_remote_with_the_branch_checked_out_is_refused_once_with_what_to_do(
    tmp_path: Path,
) -> None:
    # A normal clone (not bare) with main checked out: git's receive.denyCurrentBranch
    # refuses every push to main, so retrying can never help.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    git(checkout, "init", "--initial-branch=main")
    (checkout / "README").write_text("fleet\n")
    git(checkout, "add", "README")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-m", "initial")
    before = tip(checkout)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    status = writer(checkout.as_uri(), tmp_path / "w", sleep=record)
    try:
        with pytest.raises(StatusPushRefusedError) as caught:
            await status.publish({STATUS: b"x\n"}, MESSAGE)
    finally:
        await status.close()
    error = caught.value
    assert (error.reason, error.retryable) == ("StatusPushRefused", False)
    assert waits == []  # one attempt: no backoff, no second push
    assert "checked out" in error.message
    assert "bare repository" in error.message
    assert "--status-branch" in error.message
    assert tip(checkout) == before
