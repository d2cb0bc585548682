"""OpenAPI v3 documents as kube-apiserver publishes them: a root index of group-versions and
one document per group-version with every path, operation, parameter and GVK extension, and
ClusterVersion's whole schema as the CRD of the served feature set declares it.

Pure. kubectl reads these to learn, for example, that PATCH takes `fieldValidation`, and
`kubectl explain` reads the schemas; cvsync reads which fields ClusterVersion declares.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent.sandbox.apiserver import crd_openapi
from agent.sandbox.apiserver.crd_schema import FeatureSet
from agent.sandbox.apiserver.resources import (
    BY_GROUP_VERSION,
    CLUSTER_VERSIONS,
    RESOURCE_TYPES,
    ResourceType,
)

_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
_READ_PARAMETERS = (
    "allowWatchBookmarks",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "timeoutSeconds",
    "watch",
)


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rt: ResourceType, action: str = "") -> str:
    """The schema an operation answers with; a CRD's list answers with its List kind."""
    if action == "list" and rt is CLUSTER_VERSIONS:
        return crd_openapi.schema_name(rt, crd_openapi.list_kind(rt))
    return crd_openapi.schema_name(rt)


def _parameters(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
        for name in names
    ]


def _operation(rt: ResourceType, action: str, parameters: tuple[str, ...]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt, action)}"}
    return {
        "operationId": f"{action}{rt.kind}",
        "parameters": _parameters(parameters),
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}}
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
    }


def _paths(rt: ResourceType) -> dict[str, Any]:
    prefix = "/" + _gv_path(rt.group, rt.version)
    scope = f"{prefix}/namespaces/{{namespace}}" if rt.namespaced else prefix
    collection = f"{scope}/{rt.plural}"
    item = f"{collection}/{{name}}"
    writable = "create" in rt.verbs
    paths: dict[str, Any] = {
        collection: {"get": _operation(rt, "list", _READ_PARAMETERS)},
        item: {"get": _operation(rt, "get", ())},
    }
    if writable:
        paths[collection]["post"] = _operation(rt, "post", _WRITE_PARAMETERS)
        paths[item]["put"] = _operation(rt, "put", _WRITE_PARAMETERS)
        paths[item]["patch"] = _operation(rt, "patch", (*_WRITE_PARAMETERS, "force"))
        paths[item]["delete"] = _operation(rt, "delete", ("dryRun",))
    if rt.status_subresource:
        paths[f"{item}/status"] = {
            "get": _operation(rt, "get", ()),
            "put": _operation(rt, "put", _WRITE_PARAMETERS),
            "patch": _operation(rt, "patch", (*_WRITE_PARAMETERS, "force")),
        }
    return paths


def group_version_document(
    group: str, version: str, feature_set: FeatureSet = "Default"
) -> dict[str, Any] | None:
    types = BY_GROUP_VERSION.get((group, version))
    if types is None:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types.values():
        paths |= _paths(rt)
        if rt is CLUSTER_VERSIONS:
            schemas |= crd_openapi.components(feature_set)
            continue
        schemas[_schema_name(rt)] = {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-group-version-kind": [
                {"group": rt.group, "version": rt.version, "kind": rt.kind}
            ],
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def root_index(feature_set: FeatureSet = "Default") -> dict[str, Any]:
    paths = {}
    for group, version in sorted({(rt.group, rt.version) for rt in RESOURCE_TYPES}):
        # The hash changes with the document: a client's cached copy goes stale with it.
        document = group_version_document(group, version, feature_set)
        digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}


def document_for(path: str, feature_set: FeatureSet = "Default") -> dict[str, Any] | None:
    """The document served at /openapi/v3/<path>, or None."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) == 2:
        return group_version_document("", parts[1], feature_set)
    if parts[:1] == ["apis"] and len(parts) == 3:
        return group_version_document(parts[1], parts[2], feature_set)
    return None
