"""Field selectors as the API server reads them: `field=value`, `field==value` and
`field!=value` terms over the fields each kind may be selected by.

Pure. The fields are those of each kind's registry (pkg/registry/core/event/strategy.go
ToSelectableFields, pkg/registry/core/namespace/strategy.go); every kind has metadata's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.sandbox.apiserver import statuses
from agent.sandbox.apiserver.resources import EVENTS, NAMESPACES, ResourceType

_METADATA = ("metadata.name", "metadata.namespace")
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
# Field label -> path into the object (the Event's `source` selects on its component).
_SELECTABLE: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    EVENTS.id: {
        **{f"involvedObject.{name}": ("involvedObject", name) for name in _INVOLVED},
        "reason": ("reason",),
        "reportingComponent": ("reportingComponent",),
        "source": ("source", "component"),
        "type": ("type",),
    },
    NAMESPACES.id: {"status.phase": ("status", "phase")},
}


@dataclass(frozen=True, slots=True)
class Term:
    field: str
    path: tuple[str, ...]
    value: str
    equal: bool  # = and ==; False for !=

    def matches(self, obj: Mapping[str, Any]) -> bool:
        found: Any = obj
        for key in self.path:
            found = found.get(key) if isinstance(found, Mapping) else None
        actual = "" if found is None else str(found)
        return (actual == self.value) == self.equal


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[Term, ...] = ()

    @property
    def name(self) -> str:
        """The one name the selector requires (`metadata.name=version`), or ""."""
        return next((t.value for t in self.terms if t.field == "metadata.name" and t.equal), "")

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(term.matches(obj) for term in self.terms)


def parse(selector: str, rt: ResourceType) -> FieldSelector:
    """The selector's terms; a field the kind cannot be selected by is a bad request."""
    selectable = {name: tuple(name.split(".")) for name in _METADATA} | dict(
        _SELECTABLE.get(rt.id, {})
    )
    terms: list[Term] = []
    for text in filter(None, (part.strip() for part in selector.split(","))):
        field, equal, value = _split(text)
        if field not in selectable:
            raise statuses.bad_request(f"field label not supported: {field}")
        terms.append(Term(field, selectable[field], value, equal))
    return FieldSelector(tuple(terms))


def _split(term: str) -> tuple[str, bool, str]:
    for operator in ("!=", "==", "="):
        field, found, value = term.partition(operator)
        if found:
            return field.strip(), operator != "!=", value.strip()
    raise statuses.bad_request(f"invalid selector: '{term}'; can't understand '{term}'")
