"""Where a value came from: file, line and column, and the field path inside a document.

Pure data; lines and columns are 1-based, as editors and compilers print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    line: int
    column: int


@dataclass(frozen=True, slots=True, order=True)
class SourceLocation:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def format_field_path(path: FieldPath) -> str:
    """Render a path the way the Kubernetes API names fields: `.spec.overrides[0].kind`."""
    parts: list[str] = []
    for step in path:
        parts.append(f"[{step}]" if isinstance(step, int) else f".{step}")
    return "".join(parts) or "."


@dataclass(frozen=True, slots=True)
class PositionMap:
    """Positions of keys and values by field path; a missing path falls back to its parent."""

    keys: Mapping[FieldPath, Position]
    values: Mapping[FieldPath, Position]
    start: Position

    def key(self, path: FieldPath) -> Position:
        return self._nearest(self.keys, path)

    def value(self, path: FieldPath) -> Position:
        return self._nearest(self.values, path)

    def _nearest(self, table: Mapping[FieldPath, Position], path: FieldPath) -> Position:
        for length in range(len(path), -1, -1):
            found = table.get(path[:length])
            if found is not None:
                return found
        return self.start
