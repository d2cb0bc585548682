"""Real git repositories for tests: a bare remote and a working clone that commits and pushes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
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
        if git(self.work, "ls-remote", "--heads", "origin", "main"):
            # Others (cvsync's status commits) may have pushed meanwhile, as in real life.
            git(self.work, "pull", "--rebase", "origin", "main")
        git(self.work, "push", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")
