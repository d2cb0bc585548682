"""StatusWriter at fleet scale, against real bare remotes: the clone stays small however many
statuses it pushes (.git/shallow, its own commits), a writer alone on a branch of its own
skips the fetch and still keeps a human's commit, and branch names are checked up front."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from gitrepo import Remote, git

from agent.adapters.git import GitConfigError
from agent.adapters.git_writer import StatusWriter, status_commit_message

MESSAGE = status_commit_message("x", "4.16.3", "Completed", "id-x", "main@sha1:" + "a" * 40)
SPEC = "clusters/x/clusterversion.yaml"


pytestmark = pytest.mark.usefixtures("git_without_identity")


def shallow_lines(workdir: Path) -> int:
    shallow = workdir / ".git" / "shallow"
    return len(shallow.read_text().split()) if shallow.exists() else 0


def commits_in_clone(workdir: Path) -> int:
    """Every commit the clone holds, reachable or not (loose or packed)."""
    listed = git(workdir, "cat-file", "--batch-all-objects", "--batch-check=%(objecttype)")
    return listed.split().count("commit")


@pytest.mark.timeout(300)
async def test_the_shallow_file_and_the_clone_stay_small_on_a_branch_many_writers_share(
    remote: Remote, tmp_path: Path
) -> None:
    # Two writers take turns, so each publish finds the branch moved and fetches first.
    first = StatusWriter(remote.url, "main", tmp_path / "a")
    second = StatusWriter(remote.url, "main", tmp_path / "b")
    most_lines = 0
    try:
        for number in range(40):
            for name, status in (("a", first), ("b", second)):
                body = f"update: {number}\n".encode()
                result = await status.publish({f"status/{name}.yaml": body}, MESSAGE)
                assert result.attempts == 1
                most_lines = max(most_lines, shallow_lines(tmp_path / name))
    finally:
        await first.close()
        await second.close()
    assert git(remote.bare, "rev-list", "--count", "main") == "81"  # nothing lost
    # Without compaction each clone would list 40 shallow commits and keep 80 commits.
    assert 1 <= most_lines <= 9
    for name in ("a", "b"):
        assert commits_in_clone(tmp_path / name) <= 20
        assert git(tmp_path / name, "fsck", "--connectivity-only", "--no-dangling") == ""


@pytest.mark.timeout(300)
async def test_a_writer_alone_on_its_branch_pushes_without_fetching_and_stays_shallow(
    remote: Remote, tmp_path: Path
) -> None:
    workdir = tmp_path / "w"
    status = StatusWriter(remote.url, "cvsync-status/x", workdir, create_branch=True)
    fetched: list[str] = []
    try:
        for number in range(60):
            result = await status.publish({"status/x.yaml": f"n: {number}\n".encode()}, MESSAGE)
            assert (result.committed, result.attempts) == (True, 1)
            fetched.append((workdir / ".git" / "FETCH_HEAD").read_text().split("\t")[0])
    finally:
        await status.close()
    assert git(remote.bare, "rev-list", "--count", "cvsync-status/x") == "60"
    # FETCH_HEAD changes only when a fetch ran: the first publish (the branch is absent),
    # the second (to learn that nobody else writes it), then one in every 17.
    fetches = 1 + sum(1 for before, after in itertools.pairwise(fetched) if before != after)
    assert fetches <= 6
    # Each of those fetches cuts the chain of its own commits the clone builds on.
    assert int(git(workdir, "rev-list", "--count", "refs/cvsync/publish")) <= 18
    assert shallow_lines(workdir) <= 9


async def test_a_human_commit_on_a_clusters_own_branch_is_kept_by_the_next_status(
    remote: Remote, tmp_path: Path
) -> None:
    status = StatusWriter(remote.url, "cvsync-status/x", tmp_path / "w", create_branch=True)
    try:
        await status.publish({"status/x.yaml": b"n: 1\n"}, MESSAGE)
        await status.publish({"status/x.yaml": b"n: 2\n"}, MESSAGE)  # now it skips the fetch
        human = tmp_path / "human"
        git(tmp_path, "clone", "--quiet", "--branch", "cvsync-status/x", remote.url, str(human))
        (human / "status" / "NOTES.md").write_text("x is being retired\n")
        git(human, "add", "status/NOTES.md")
        git(human, "commit", "--quiet", "-m", "human: a note")
        git(human, "push", "--quiet", "origin", "HEAD:cvsync-status/x")
        human_sha = git(human, "rev-parse", "HEAD")
        # Built on its own last commit, the push is refused; fetched again, it lands on top.
        result = await status.publish({"status/x.yaml": b"n: 3\n"}, MESSAGE)
    finally:
        await status.close()
    assert (result.committed, result.attempts) == (True, 2)
    assert git(remote.bare, "rev-parse", "cvsync-status/x^") == human_sha
    assert git(remote.bare, "show", "cvsync-status/x:status/NOTES.md") == "x is being retired"
    assert git(remote.bare, "show", "cvsync-status/x:status/x.yaml") == "n: 3"


@pytest.mark.parametrize(
    "branch", ["cvsync-status/prod east", "status..x", "cvsync-status/", "-x", "a.lock", "a@{1}"]
)
def test_a_status_branch_git_would_refuse_is_refused_before_any_git_call(
    tmp_path: Path, branch: str
) -> None:
    with pytest.raises(GitConfigError) as caught:
        StatusWriter("file:///nowhere.git", branch, tmp_path / "w")
    assert "not a valid branch name" in caught.value.message
    assert not (tmp_path / "w").exists()
