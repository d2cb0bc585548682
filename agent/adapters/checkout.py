"""The git revision a file in a local checkout is at, for commands people run in a clone
(`cvsync drift`): `main@sha1:<hex>`, and whether the file differs from that commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git

from agent.model.revision import Revision

_UNREADABLE = "git cannot read its checkout (try `git status` there)"


@dataclass(frozen=True, slots=True)
class CheckoutRevision:
    """Where a file stands in git: the checkout's branch (HEAD when detached) and commit,
    or None with `unknown` saying why; `uncommitted` when the file differs from that commit
    (an edit, or a file git does not track yet). `file` is its path in the repository."""

    file: str
    revision: Revision | None
    uncommitted: bool = False
    unknown: str = ""

    def label(self) -> str:
        """One line for a report: the revision, with a word when the file is not that."""
        if self.revision is None:
            return f"{self.file} ({self.unknown})"
        if self.uncommitted:
            return f"{self.revision} with uncommitted changes to {self.file}"
        return str(self.revision)


def checkout_revision(path: Path) -> CheckoutRevision:
    """The revision of the checkout holding `path` (an existing file)."""
    shown = path.as_posix()
    try:
        repo = git.Repo(path.resolve().parent, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return CheckoutRevision(shown, None, unknown="not in a git checkout")
    with repo:
        root = Path(repo.working_tree_dir or ".").resolve()
        inside = path.resolve().relative_to(root).as_posix()
        try:
            sha = repo.head.commit.hexsha
        except ValueError:  # a branch with no commit yet
            return CheckoutRevision(inside, None, unknown="no commit in its git checkout yet")
        except git.GitError:
            return CheckoutRevision(inside, None, unknown=_UNREADABLE)
        ref = "HEAD" if repo.head.is_detached else repo.active_branch.name
        try:
            changed = bool(repo.git.status("--porcelain", "--", inside))
        except git.GitError:
            return CheckoutRevision(inside, None, unknown=_UNREADABLE)
    return CheckoutRevision(inside, Revision(ref, sha), uncommitted=changed)
