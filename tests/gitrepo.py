"""Real git repositories for tests: a bare remote and a working clone that commits and pushes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
}


def run_git(cwd: Path, *args: str) -> str:
    """git with the caller's environment as it is (see `isolate_git`)."""
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def isolate_git(
    home: Path, monkeypatch: pytest.MonkeyPatch, identity: Mapping[str, str] | None = IDENTITY
) -> None:
    """Keep the machine's git config away from a test; set `identity`, or remove any."""
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("AUTHOR", "COMMITTER"):
        for part in ("NAME", "EMAIL"):
            variable = f"GIT_{name}_{part}"
            if identity is None:
                monkeypatch.delenv(variable, raising=False)
            else:
                monkeypatch.setenv(variable, identity[variable])


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


class Remote:
    """A bare repository plus a clone to commit from, on branch main."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        self.bare.mkdir(parents=True)
        git(self.bare, "init", "--bare", "--initial-branch=main")
        git(root, "clone", str(self.bare), str(self.work))
        git(self.work, "checkout", "-B", "main")

    @property
    def url(self) -> str:
        return self.bare.as_uri()

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(self.work, "add", name)
        git(self.work, "commit", "-m", message)
        for attempt in range(5):
            if git(self.work, "ls-remote", "--heads", "origin", "main"):
                # Others (cvsync's status commits) may have pushed meanwhile, as in real life.
                git(self.work, "pull", "--rebase", "origin", "main")
            pushed = subprocess.run(
                ["git", "push", "origin", "main"], cwd=self.work, capture_output=True, check=False
            )
            if pushed.returncode == 0:
                break
            assert attempt < 4, pushed.stderr.decode(errors="replace")
        return git(self.work, "rev-parse", "HEAD")


@dataclass
class GitSyncLayout:
    """What git-sync leaves on disk: a worktree per revision and a `current` symlink that is
    replaced atomically (a new link renamed over the old one)."""

    origin: Path
    root: Path
    spec_path: str
    swaps: int = 0

    @classmethod
    def create(cls, base: Path, spec_path: str) -> GitSyncLayout:
        origin, root = base / "origin", base / "root"
        root.mkdir(parents=True)
        git(base, "init", "--quiet", "--initial-branch=main", str(origin))
        return cls(origin, root, spec_path)

    @property
    def link(self) -> Path:
        return self.root / "current"

    def commit(self, text: str) -> str:
        """Commit `text` as the spec and check the commit out in its own worktree."""
        path = self.origin / self.spec_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        git(self.origin, "add", "--all")
        git(self.origin, "commit", "--quiet", "-m", "spec")
        sha = git(self.origin, "rev-parse", "HEAD")
        git(self.origin, "worktree", "add", "--quiet", "--detach", str(self.root / f"rev-{sha}"))
        return sha

    def swap(self, sha: str) -> None:
        """Point `current` at rev-<sha> the way git-sync does: a new link, renamed over."""
        self.swaps += 1
        temporary = self.root / f".current-{self.swaps}.tmp"
        os.symlink(f"rev-{sha}", temporary)
        os.replace(temporary, self.link)

    def remove(self, sha: str) -> None:
        git(self.origin, "worktree", "remove", "--force", str(self.root / f"rev-{sha}"))
