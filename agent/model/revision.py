"""A git revision as cvsync reports it: `main@sha1:<hex>` (the Flux/Argo convention).

Pure data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_REVISION = re.compile(r"(?P<ref>\S+)@sha1:(?P<sha>[0-9a-f]{40}|[0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class Revision:
    ref: str  # the branch or ref cvsync reads, such as "main"
    sha: str  # the full commit hash

    def __str__(self) -> str:
        return f"{self.ref}@sha1:{self.sha}"

    @property
    def short(self) -> str:
        return f"{self.ref}@{self.sha[:12]}"

    @classmethod
    def parse(cls, text: str) -> Revision | None:
        """The revision `str(revision)` wrote, or None for anything else."""
        found = _REVISION.fullmatch(text.strip())
        return cls(found["ref"], found["sha"]) if found else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The desired state as git holds it at one revision: file paths (relative to the
    repository root, POSIX form) and their bytes, only the files cvsync reads."""

    revision: Revision
    files: tuple[tuple[str, bytes], ...]

    def file(self, path: str) -> bytes | None:
        return next((data for name, data in self.files if name == path), None)
