"""Validate one ClusterVersion document against the API's documented shape and rules.

Pure: a ManifestDocument in, findings out. The shape walk (unknown fields, types,
required fields) runs first; the semantic rules of `spec_rules` see only well-typed values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent.model import findings as rules
from agent.model.clusterversion_api import (
    API_VERSION,
    OBJECT_NAME,
    SERVER_OWNED_METADATA,
    SPEC_SHAPE,
    TOP_LEVEL_FIELDS,
    USER_METADATA,
    USER_METADATA_EXTRA,
    FieldShape,
)
from agent.model.documents import ManifestDocument
from agent.model.findings import Finding
from agent.model.source import FieldPath, format_field_path
from agent.spec.rules import check_spec_rules
from agent.spec.suggest import closest
from agent.spec.yaml_events import yaml11_type

_JSON_TYPE_NAMES = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def json_type(value: Any) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def validate_document(doc: ManifestDocument) -> list[Finding]:
    out: list[Finding] = []
    body = doc.body
    _check_type_meta(doc, out)
    _check_metadata(doc, out)
    for key in body:
        if key not in TOP_LEVEL_FIELDS:
            out.append(_unknown_field(doc, (key,), TOP_LEVEL_FIELDS))
    if "status" in body:
        out.append(
            rules.STATUS_IGNORED.at(
                doc.at_key(("status",)),
                "status is set by the cluster-version operator and ignored in a desired spec",
                "remove the status block; `cvsync status` shows the live status",
                ".status",
            )
        )
    if "spec" not in body or body["spec"] is None:
        out.append(
            rules.REQUIRED_FIELD.at(
                doc.at_key(("spec",)) if "spec" in body else doc.at_value(()),
                f"{doc.label} has no spec",
                "add a spec with at least clusterID",
                ".spec",
            )
        )
        return out
    if check_shape(doc, body["spec"], SPEC_SHAPE, ("spec",), out):
        # A value the readers disagree on is reported once, not judged again as text.
        unread = {f.field for f in out if f.rule == rules.YAML_AMBIGUOUS_VALUE.id}
        out.extend(f for f in check_spec_rules(doc, body["spec"]) if f.field not in unread)
    return out


def check_shape(
    doc: ManifestDocument, value: Any, shape: FieldShape, path: FieldPath, out: list[Finding]
) -> bool:
    """Check type, unknown and required fields below `path`; True when the type is right."""
    field = format_field_path(path)
    if value is None:
        out.append(_null(doc, path))
        return False
    actual = json_type(value)
    if actual != shape.type:
        out.append(_type_error(doc, path, shape.type, value))
        return False
    if shape.type == "string" and path in doc.yaml11_types:
        out.append(_ambiguous(doc, path, value))
        return False
    if shape.type == "object":
        for key, child in value.items():
            child_shape = shape.fields.get(key)
            if child_shape is None:
                out.append(_unknown_field(doc, (*path, key), shape.fields))
            else:
                check_shape(doc, child, child_shape, (*path, key), out)
        for key in shape.required:
            if value.get(key) is None:
                out.append(
                    rules.REQUIRED_FIELD.at(
                        doc.at_key(path)
                        if path and isinstance(path[-1], str)
                        else doc.at_value(path),
                        f"{field} has no {key}, which is required",
                        f"add {key} to {field}",
                        format_field_path((*path, key)),
                    )
                )
    elif shape.type == "array" and shape.items is not None:
        for index, item in enumerate(value):
            check_shape(doc, item, shape.items, (*path, index), out)
    return True


def _null(doc: ManifestDocument, path: FieldPath) -> Finding:
    field = format_field_path(path)
    if path and isinstance(path[-1], int):
        return rules.NULL_LIST_ITEM.at(
            doc.at_value(path),
            f"{field} is null; the API server drops null object fields but rejects a null "
            "list item",
            "remove the item (`- ` with nothing after it, `~` and `null` are null), or give "
            "it a value",
            field,
        )
    return rules.NULL_VALUE.at(
        doc.at_value(path),
        f"{field} is null; the API server drops null fields",
        "remove the line to leave the field unset, or give it a value",
        field,
    )


def _ambiguous(doc: ManifestDocument, path: FieldPath, value: str) -> Finding:
    """A plain scalar kubectl and oc read as another type than cvsync does."""
    field = format_field_path(path)
    kubectl_type = doc.yaml11_types[path]
    article = "an" if kubectl_type[0] in "aeiou" else "a"
    return rules.YAML_AMBIGUOUS_VALUE.at(
        doc.at_value(path),
        f"{field} is the unquoted {value}: kubectl and oc (YAML 1.1) read it as {article} "
        f"{kubectl_type}, cvsync (YAML 1.2) as the string {value!r}; the same file would "
        "mean two things",
        f'put it in quotes ("{value}") so that every reader takes it as text',
        field,
    )


def _ambiguous_key(doc: ManifestDocument, path: FieldPath) -> Finding | None:
    """A plain key kubectl and oc name otherwise, or refuse (YAML 1.1 reads it as a boolean,
    number or null, and sigs.k8s.io/yaml writes that value back as text its own way)."""
    if path not in doc.yaml11_keys:
        return None
    kubectl_key, key, field = doc.yaml11_keys[path], str(path[-1]), format_field_path(path)
    if kubectl_key is None:
        what = "null" if yaml11_type(key) == "null" else "a number only a uint64 holds"
        reading = f"refuse the file: they read the unquoted key {key} as {what}, not text"
    else:
        reading = f"name the unquoted key {key} {kubectl_key!r} (YAML 1.1 reads it as a"
        reading += f" {'boolean' if kubectl_key in ('true', 'false') else 'number'}); cvsync"
        reading += f" (YAML 1.2) keeps {key!r}: the same file would mean two things"
    return rules.YAML_AMBIGUOUS_KEY.at(
        doc.at_key(path),
        f"{field}: kubectl and oc {reading}",
        f'put the key in quotes ("{key}": ...) so that every reader takes it as text',
        field,
    )


def _type_error(doc: ManifestDocument, path: FieldPath, expected: str, value: Any) -> Finding:
    field = format_field_path(path)
    actual = json_type(value)
    shown = f" {value!r}" if actual in ("string", "integer", "number", "boolean") else ""
    if expected == "string" and actual in ("integer", "number", "boolean"):
        hint = "put the value in quotes so YAML keeps it as text exactly as written"
    elif expected == "boolean" and doc.yaml11_types.get(path) == "boolean":
        hint = (
            f"write true or false: kubectl and oc (YAML 1.1) read {value} as a boolean, "
            "cvsync (YAML 1.2) as text"
        )
    elif expected == "boolean" and actual == "string":
        hint = "write true or false without quotes"
    else:
        hint = f"give {field} a value of type {expected}"
    return rules.FIELD_TYPE.at(
        doc.at_value(path), f"{field} must be a {expected}, not the {actual}{shown}", hint, field
    )


def _unknown_field(doc: ManifestDocument, path: FieldPath, known: Iterable[str]) -> Finding:
    name = str(path[-1])
    parent = format_field_path(path[:-1])
    suggestion = closest(name, known)
    hint = (
        f'did you mean "{suggestion}"?'
        if suggestion
        else f"known fields here: {', '.join(sorted(known))}"
    )
    return rules.UNKNOWN_FIELD.at(
        doc.at_key(path),
        f'unknown field "{name}" in {parent}; the API server would silently drop it',
        hint,
        format_field_path(path),
    )


def _check_type_meta(doc: ManifestDocument, out: list[Finding]) -> None:
    api_version = doc.body.get("apiVersion")
    if api_version != API_VERSION:
        where = doc.at_value(("apiVersion",)) if "apiVersion" in doc.body else doc.at_value(())
        shown = "is missing" if api_version is None else f"is {api_version!r}"
        out.append(
            rules.API_VERSION.at(
                where,
                f"apiVersion {shown}; a ClusterVersion is {API_VERSION}",
                f"set apiVersion: {API_VERSION}",
                ".apiVersion",
            )
        )


def _check_metadata(doc: ManifestDocument, out: list[Finding]) -> None:
    metadata = doc.body.get("metadata")
    if not isinstance(metadata, dict):
        if metadata is not None:
            out.append(_type_error(doc, ("metadata",), "object", metadata))
        out.append(
            rules.METADATA_NAME.at(
                doc.at_key(("metadata",)) if "metadata" in doc.body else doc.at_value(()),
                f"{doc.label} has no metadata.name; the cluster's only ClusterVersion is "
                f"named {OBJECT_NAME!r}",
                f"add `metadata: {{name: {OBJECT_NAME}}}`",
                ".metadata.name",
            )
        )
        return
    name = metadata.get("name")
    if name != OBJECT_NAME:
        path: FieldPath = ("metadata", "name") if "name" in metadata else ("metadata",)
        shown = "is missing" if name is None else f"is {name!r}"
        out.append(
            rules.METADATA_NAME.at(
                doc.at_value(path) if "name" in metadata else doc.at_key(path),
                f"metadata.name {shown}; the cluster's only ClusterVersion is named "
                f"{OBJECT_NAME!r}",
                f"set metadata.name: {OBJECT_NAME}",
                ".metadata.name",
            )
        )
    for key, value in metadata.items():
        path = ("metadata", key)
        if key in SERVER_OWNED_METADATA:
            out.append(
                rules.METADATA_SERVER_OWNED.at(
                    doc.at_key(path),
                    f"metadata.{key} is set by the API server and ignored in a desired spec",
                    f"remove metadata.{key} (it was probably copied from `oc get -o yaml`)",
                    format_field_path(path),
                )
            )
        elif key in ("labels", "annotations"):
            _check_string_map(doc, path, value, out)
        elif key not in USER_METADATA | USER_METADATA_EXTRA:
            known = USER_METADATA | USER_METADATA_EXTRA | SERVER_OWNED_METADATA
            out.append(_unknown_field(doc, path, known))


def _check_string_map(
    doc: ManifestDocument, path: FieldPath, value: Any, out: list[Finding]
) -> None:
    if not isinstance(value, dict):
        out.append(_type_error(doc, path, "object", value))
        return
    for key, item in value.items():
        if (finding := _ambiguous_key(doc, (*path, key))) is not None:
            out.append(finding)
        if not isinstance(item, str):
            out.append(_type_error(doc, (*path, key), "string", item))
        elif (*path, key) in doc.yaml11_types:
            out.append(_ambiguous(doc, (*path, key), item))
