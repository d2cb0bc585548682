"""What kube-apiserver does with a ClusterVersion body: prune, validate, and word the refusal.

Pure: dicts in, dicts and causes out; no I/O, no HTTP. Never imports the
agent's spec, sync or report.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from agent.sandbox.apiserver import field_errors as fe
from agent.sandbox.apiserver.crd_schema import FeatureSet, Schema, cluster_version_schema
from agent.sandbox.apiserver.field_errors import Cause
from agent.sandbox.apiserver.schema_check import (
    BLOCKING,
    blocked_rules_cause,
    cel_errors,
    list_type_errors,
    openapi_errors,
)
from agent.sandbox.apiserver.statuses import status

__all__ = [
    "Cause",
    "FieldValidation",
    "FieldValidationMode",
    "bad_request_status",
    "field_validation",
    "invalid_status",
    "prune",
    "validate",
    "warning_header",
]

FieldValidationMode = Literal["Strict", "Warn", "Ignore"]

# The root keys pruning leaves alone: TypeMeta and ObjectMeta are not the schema's to prune.
_META_ROOT = frozenset({"apiVersion", "kind", "metadata"})
# metav1.ObjectMeta's JSON fields (Kubernetes 1.33; clusterName is gone since 1.25).
OBJECT_META_FIELDS = frozenset(
    {
        "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
        "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
        "annotations", "ownerReferences", "finalizers", "managedFields",
    }
)  # fmt: skip
# ObjectMeta's object lists are decoded strictly too, so their unknown keys are reported.
_META_LIST_FIELDS = {
    "ownerReferences": frozenset(
        {"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}
    ),
    "managedFields": frozenset(
        {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"}
    ),
}


# --- Pruning ---------------------------------------------------------------------------


def _prune_metadata(metadata: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Keep ObjectMeta's fields only, as decoding into metav1.ObjectMeta does."""
    kept: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in metadata.items():
        if name not in OBJECT_META_FIELDS:
            unknown.append(f"metadata.{name}")
            continue
        known = _META_LIST_FIELDS.get(name)
        if known is not None and isinstance(value, list):
            path = f"metadata.{name}"
            kept[name] = [
                _prune_meta_item(item, known, f"{path}[{i}]", unknown)
                for i, item in enumerate(value)
            ]
        else:
            kept[name] = value
    return kept, unknown


def _prune_meta_item(item: Any, known: frozenset[str], path: str, unknown: list[str]) -> Any:
    if not isinstance(item, dict):
        return item
    unknown.extend(f"{path}.{name}" for name in item if name not in known)
    return {name: value for name, value in item.items() if name in known}


def _prune_unknown(value: Any, schema: Schema | None, path: str, out: list[str]) -> None:
    """structural pruning: drop what the schema does not declare, recording each path."""
    if isinstance(value, dict):
        for name in list(value):
            if not path and name in _META_ROOT:
                continue
            child = schema.properties.get(name) if schema is not None else None
            if child is None:
                out.append(f"{path}.{name}" if path else name)
                del value[name]
            else:
                _prune_unknown(value[name], child, f"{path}.{name}" if path else name, out)
    elif isinstance(value, list):
        items = schema.items if schema is not None else None
        for index, item in enumerate(value):
            _prune_unknown(item, items, f"{path}[{index}]", out)


def _prune_nulls(value: Any, schema: Schema | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: null map values the schema does not allow go."""
    if isinstance(value, dict):
        for name in list(value):
            child = schema.properties.get(name) if schema is not None else None
            if value[name] is None and child is not None and not child.nullable:
                del value[name]
            else:
                _prune_nulls(value[name], child)
    elif isinstance(value, list):
        for item in value:
            _prune_nulls(item, schema.items if schema is not None else None)


def prune(obj: Mapping[str, Any], schema: Schema) -> tuple[dict[str, Any], list[str]]:
    """The body the API server keeps, and the unknown field paths it dropped (metadata first).

    The input is not modified. Non-nullable nulls are dropped silently, as the server does.
    """
    pruned = copy.deepcopy(dict(obj))
    unknown: list[str] = []
    if isinstance(pruned.get("metadata"), dict):
        pruned["metadata"], unknown = _prune_metadata(pruned["metadata"])
    dropped: list[str] = []
    _prune_unknown(pruned, schema, "", dropped)
    _prune_nulls(pruned, schema)
    return pruned, unknown + sorted(dropped)


# --- Validation ------------------------------------------------------------------------


def validate(
    obj: Mapping[str, Any],
    old_obj: Mapping[str, Any] | None,
    feature_set: FeatureSet,
    *,
    subresource: Literal["", "status"] = "",
    meta_causes: Sequence[Cause] = (),
) -> list[Cause]:
    """The field errors of a create (old_obj None) or update, in the order the server lists them.

    The object is pruned first (unknown fields and disallowed nulls never reach validation).
    With subresource="status" only status is checked against the schema, as the status
    endpoint does; list uniqueness and CEL rules always cover the whole object. TypeMeta and
    ObjectMeta checks are the caller's: pass their causes as meta_causes, which come first and,
    like the server's, can stop the CEL rules. So is copying status on create and update.
    """
    schema = cluster_version_schema(feature_set)
    new, _ = prune(obj, schema)
    causes = list(meta_causes)
    if subresource == "status":
        if "status" in new:
            causes += openapi_errors(new["status"], schema.properties["status"], "status")
    else:
        causes += openapi_errors(new, schema)
    # An update only checks list uniqueness if the stored object passed it (ratcheting).
    if old_obj is None or not list_type_errors(prune(old_obj, schema)[0], schema):
        causes += list_type_errors(new, schema)
    if any(cause.reason in BLOCKING for cause in causes):
        return [*causes, blocked_rules_cause()]
    return causes + cel_errors(new, schema)


# --- Status bodies ---------------------------------------------------------------------


def invalid_status(kind_group: str, name: str, causes: Sequence[Cause]) -> dict[str, Any]:
    """errors.NewInvalid's 422 Status; kind_group is e.g. "ClusterVersion.config.openshift.io"."""
    kind, _, group = kind_group.partition(".")
    message = f"{kind_group} {fe.go_quote(name)} is invalid"
    if causes:
        message += ": " + fe.aggregate(causes)
    details = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [cause.as_dict() for cause in causes],
    }
    # metav1.StatusDetails' fields are all omitempty.
    return status(422, "Invalid", message, {key: value for key, value in details.items() if value})


def bad_request_status(message: str) -> dict[str, Any]:
    """The 400 metav1.Status of errors.NewBadRequest."""
    return status(400, "BadRequest", message)


# --- fieldValidation ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldValidation:
    """What a request's fieldValidation does with unknown and duplicate fields."""

    status: dict[str, Any] | None
    warnings: tuple[str, ...]

    @property
    def headers(self) -> tuple[str, ...]:
        """The Warning response header values carrying the warnings."""
        return tuple(warning_header(text) for text in self.warnings)


def warning_header(text: str) -> str:
    """A Warning header value as the API server writes it: code 299, agent "-", quoted text."""
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{quoted}"'


def field_validation(
    mode: FieldValidationMode | Literal[""],
    unknown_paths: Iterable[str],
    duplicate_paths: Iterable[str] = (),
    *,
    kind: str = "ClusterVersion",
    version: str = "v1",
) -> FieldValidation:
    """Strict: a 400 Status naming every problem; Warn (the default, ""): warnings; Ignore: none.

    Duplicates come first, then unknown fields in the order given (prune's order).
    """
    problems = [f'duplicate field "{path}"' for path in duplicate_paths]
    problems += [f'unknown field "{path}"' for path in unknown_paths]
    if mode == "Ignore" or not problems:
        return FieldValidation(None, ())
    if mode in ("Warn", ""):
        return FieldValidation(None, tuple(problems))
    if mode != "Strict":
        raise ValueError(f"unknown fieldValidation mode {mode!r}")
    reason = "strict decoding error: " + ", ".join(problems)
    message = f"{kind} in version {fe.go_quote(version)} cannot be handled as a {kind}: {reason}"
    return FieldValidation(bad_request_status(message), ())
