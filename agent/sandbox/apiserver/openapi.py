"""OpenAPI v3 documents as kube-apiserver publishes them: a root index of group-versions and
one document per group-version with every path, operation, parameter and GVK extension.

Pure. kubectl reads these to learn, for example, that PATCH takes `fieldValidation`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from agent.sandbox.apiserver.resources import BY_GROUP_VERSION, RESOURCE_TYPES, ResourceType

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


def _schema_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def _parameters(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
        for name in names
    ]


def _operation(rt: ResourceType, action: str, parameters: tuple[str, ...]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
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


def group_version_document(group: str, version: str) -> dict[str, Any] | None:
    types = BY_GROUP_VERSION.get((group, version))
    if types is None:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types.values():
        paths |= _paths(rt)
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


def root_index() -> dict[str, Any]:
    paths = {}
    for group, version in sorted({(rt.group, rt.version) for rt in RESOURCE_TYPES}):
        document = group_version_document(group, version)
        digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()[:32]
        path = _gv_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}


def document_for(path: str) -> dict[str, Any] | None:
    """The document served at /openapi/v3/<path>, or None."""
    parts = [part for part in path.split("/") if part]
    if parts[:1] == ["api"] and len(parts) == 2:
        return group_version_document("", parts[1])
    if parts[:1] == ["apis"] and len(parts) == 3:
        return group_version_document(parts[1], parts[2])
    return None
