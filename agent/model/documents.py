"""A parsed manifest document: plain JSON-like data plus the position of every field.

Pure data produced by `spec.parse` and read by every later stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model.findings import Finding
from agent.model.source import FieldPath, PositionMap, SourceLocation

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ManifestDocument:
    """One ClusterVersion as written in git.

    `body` holds only plain dict / list / str / int / float / bool / None values.
    `index` is the 0-based document number in its file; `item` the index inside a
    `kind: List` wrapper, when the object came from one. `yaml11_types` names the plain
    scalars read as text here that kubectl and oc (YAML 1.1) read as another JSON type;
    `yaml11_keys` maps plain mapping keys they name otherwise (by the path of the value under
    the key) to that name, or to None where they refuse the key.
    """

    file: str
    index: int
    item: int | None
    body: JsonObject
    positions: PositionMap
    yaml11_types: Mapping[FieldPath, str] = field(default_factory=dict)
    yaml11_keys: Mapping[FieldPath, str | None] = field(default_factory=dict)

    def at_key(self, path: FieldPath) -> SourceLocation:
        where = self.positions.key(path)
        return SourceLocation(self.file, where.line, where.column)

    def at_value(self, path: FieldPath) -> SourceLocation:
        where = self.positions.value(path)
        return SourceLocation(self.file, where.line, where.column)

    @property
    def label(self) -> str:
        """How messages name this document: `document 2` or `document 1, item 3`."""
        text = f"document {self.index + 1}"
        return text if self.item is None else f"{text}, item {self.item + 1}"


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Everything one file yielded: its ClusterVersion documents and the problems found."""

    file: str
    documents: tuple[ManifestDocument, ...] = ()
    findings: tuple[Finding, ...] = field(default_factory=tuple)
