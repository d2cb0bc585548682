"""Collect spec files from the paths a user names: recursion, symlink containment, size limit.

I/O adapter for `cvsync validate` and the local work tree; returns bytes and findings,
never raises for a bad file (only for a path that does not exist).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agent.errors import UsageError
from agent.model import findings as rules
from agent.model.findings import Finding
from agent.model.source import SourceLocation
from agent.spec.parse import MAX_FILE_BYTES, too_large_finding

SPEC_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class CollectedFiles:
    contents: list[tuple[str, bytes]] = field(default_factory=list)
    problems: list[Finding] = field(default_factory=list)


def collect_spec_files(paths: Sequence[str]) -> CollectedFiles:
    """Read every spec file named by `paths` (files, or directories walked recursively)."""
    collected = CollectedFiles()
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"{raw}: no such file or directory")
        if path.is_dir():
            root = path.resolve()
            _walk(path, root, {root}, collected)
        else:
            _read(path, collected)
    return collected


def _display(path: Path) -> str:
    return path.as_posix()


def _walk(directory: Path, root: Path, visited: set[Path], collected: CollectedFiles) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        collected.problems.append(_unreadable(directory, exc))
        return
    for entry in entries:
        path = directory / entry.name
        if entry.name.startswith("."):
            continue  # .git and editor files
        if entry.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                collected.problems.append(_outside_root(path, target, root))
                continue
            if target.is_dir():
                if target not in visited:
                    visited.add(target)
                    _walk(path, root, visited, collected)
                continue
        elif entry.is_dir(follow_symlinks=False):
            _walk(path, root, visited, collected)
            continue
        if entry.name.endswith(SPEC_SUFFIXES):
            _read(path, collected)


def _read(path: Path, collected: CollectedFiles) -> None:
    display = _display(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size > MAX_FILE_BYTES:
            collected.problems.append(too_large_finding(display, info.st_size))
            return
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        collected.problems.append(_unreadable(path, exc))
        return
    collected.contents.append((display, data))


def _unreadable(path: Path, exc: OSError) -> Finding:
    return rules.FILE_UNREADABLE.at(
        SourceLocation(_display(path), 1, 1),
        f"cannot read: {exc.strerror or exc}",
        "check the path and its permissions",
    )


def _outside_root(path: Path, target: Path, root: Path) -> Finding:
    return rules.SYMLINK_OUTSIDE_ROOT.at(
        SourceLocation(_display(path), 1, 1),
        f"the symlink points outside the scanned directory {root.name}/ ({target})",
        "replace the symlink with the file itself, or validate the target's directory explicitly",
    )
