"""ClusterVersion's schemas as kube-apiserver publishes a CRD in OpenAPI v3: the served CRD's
structural schema whole, metadata as a reference to ObjectMeta, and the List kind.

Pure: a feature set in, components.schemas entries out. Facts from kubernetes
staging/src/k8s.io/apiextensions-apiserver/pkg/controller/openapi/builder/builder.go (the
schema converted as it is, nothing stripped for v3; metadata replaced by a reference with the
PartialObjectMetadata description; apiVersion and kind from TypeMeta; the GVK extension on the
kind) and pkg/apiserver/schema/kubeopenapi.go (which keywords and extensions are kept).
"""

from __future__ import annotations

from typing import Any

from agent.sandbox.apiserver.crd_schema import FeatureSet, Schema, cluster_version_schema
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, ResourceType
from agent.sandbox.apiserver.typemodel import OBJECT_META, TypeNode

REF_PREFIX = "#/components/schemas/"
OBJECT_META_NAME = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META_NAME = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
_METADATA_DESCRIPTION = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)
_LIST_METADATA_DESCRIPTION = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)
_TYPE_META = {
    "apiVersion": {
        "description": "APIVersion defines the versioned schema of this representation of an "
        "object. Servers should convert recognized schemas to the latest internal value, and "
        "may reject unrecognized values. More info: https://git.k8s.io/community/contributors/"
        "devel/sig-architecture/api-conventions.md#resources",
        "type": "string",
    },
    "kind": {
        "description": "Kind is a string value representing the REST resource this object "
        "represents. Servers may infer this from the endpoint the client submits requests to. "
        "Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/"
        "devel/sig-architecture/api-conventions.md#types-kinds",
        "type": "string",
    },
}
# Schema attribute -> OpenAPI keyword, in the order kube-openapi writes them.
_KEYWORDS = (
    ("format", "format"),
    ("enum", "enum"),
    ("nullable", "nullable"),
    ("pattern", "pattern"),
    ("min_length", "minLength"),
    ("max_length", "maxLength"),
    ("min_items", "minItems"),
    ("max_items", "maxItems"),
    ("minimum", "minimum"),
)
_SCALAR_TYPES = {"string": "string", "numeric": "integer", "boolean": "boolean"}


def schema_name(rt: ResourceType, kind: str | None = None) -> str:
    """`io.openshift.config.v1.ClusterVersion`: the group reversed, as kube-apiserver's
    definition namer does (k8s.io/apiserver pkg/endpoints/openapi friendlyName)."""
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{kind or rt.kind}"


def list_kind(rt: ResourceType) -> str:
    return f"{rt.kind}List"


def components(feature_set: FeatureSet) -> dict[str, Any]:
    """The components.schemas entries the config.openshift.io/v1 document holds."""
    rt = CLUSTER_VERSIONS
    return {
        schema_name(rt): _kind_schema(rt, cluster_version_schema(feature_set)),
        schema_name(rt, list_kind(rt)): _list_schema(rt),
        OBJECT_META_NAME: _type_schema(OBJECT_META),
        LIST_META_NAME: _LIST_META,
    }


def openapi_schema(schema: Schema) -> dict[str, Any]:
    """One structural-schema node as OpenAPI: every keyword and extension the CRD sets."""
    out: dict[str, Any] = {"type": schema.type}
    if schema.properties:
        out["properties"] = {name: openapi_schema(sub) for name, sub in schema.properties.items()}
    if schema.required:
        out["required"] = list(schema.required)
    if schema.items is not None:
        out["items"] = openapi_schema(schema.items)
    for attribute, keyword in _KEYWORDS:
        value = getattr(schema, attribute)
        # Absent is None, False or empty; 0 is a value (minimum: 0).
        if value is None or value is False or (isinstance(value, str | tuple) and not value):
            continue
        out[keyword] = list(value) if isinstance(value, tuple) else value
    if schema.list_type:
        out["x-kubernetes-list-type"] = schema.list_type
    if schema.list_map_keys:
        out["x-kubernetes-list-map-keys"] = list(schema.list_map_keys)
    if schema.rules:
        out["x-kubernetes-validations"] = [
            {"message": rule.message, "rule": rule.rule} for rule in schema.rules
        ]
    return out


def _gvk(rt: ResourceType, kind: str) -> list[dict[str, str]]:
    return [{"group": rt.group, "kind": kind, "version": rt.version}]


def _kind_schema(rt: ResourceType, schema: Schema) -> dict[str, Any]:
    out = openapi_schema(schema)
    out["properties"] = {
        **out["properties"],
        **_TYPE_META,
        "metadata": {"$ref": REF_PREFIX + OBJECT_META_NAME, "description": _METADATA_DESCRIPTION},
    }
    out["x-kubernetes-group-version-kind"] = _gvk(rt, rt.kind)
    return out


def _list_schema(rt: ResourceType) -> dict[str, Any]:
    return {
        "description": f"{list_kind(rt)} is a list of {rt.kind}",
        "properties": {
            **_TYPE_META,
            "items": {
                "description": f"List of {rt.plural}. More info: https://git.k8s.io/community/"
                "contributors/devel/sig-architecture/api-conventions.md",
                "items": {"$ref": REF_PREFIX + schema_name(rt)},
                "type": "array",
            },
            "metadata": {
                "$ref": REF_PREFIX + LIST_META_NAME,
                "description": _LIST_METADATA_DESCRIPTION,
            },
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": _gvk(rt, list_kind(rt)),
    }


def _type_schema(node: TypeNode) -> dict[str, Any]:
    """A built-in type (ObjectMeta) from the sandbox's type model, inline."""
    if node.kind == "map" and node.fields:
        return {
            "properties": {name: _type_schema(child) for name, child in node.fields.items()},
            "type": "object",
        }
    if node.kind == "map":
        element = _type_schema(node.element) if node.element is not None else {}
        return {"additionalProperties": element, "type": "object"}
    if node.kind == "list":
        out: dict[str, Any] = {"type": "array"}
        out["items"] = _type_schema(node.element) if node.element is not None else {}
        out["x-kubernetes-list-type"] = node.list_type.kind
        if node.list_type.keys:
            out["x-kubernetes-list-map-keys"] = list(node.list_type.keys)
        return out
    if node.kind == "scalar":
        return {"type": _SCALAR_TYPES.get(node.scalar, "string")}
    return {"type": "object"}  # FieldsV1: free-form


_LIST_META: dict[str, Any] = {
    "properties": {
        "continue": {"type": "string"},
        "remainingItemCount": {"format": "int64", "type": "integer"},
        "resourceVersion": {"type": "string"},
        "selfLink": {"type": "string"},
    },
    "type": "object",
}
