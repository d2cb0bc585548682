"""The ClusterVersion schema the API server serves, read from the OpenAPI v3 document it
publishes for config.openshift.io/v1: which fields depend on the cluster's feature set.

Pure interpretation of the answer KubeCluster.served_schema fetches: status and body in, a
ServedSchema out. Server-side apply builds its types from the same schemas, so a field
declared there is one an apply may send, and one absent is answered 500 "field not declared
in schema".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.model.clusterversion_api import ServedSchema

OPENAPI_PATH = "/openapi/v3/apis/config.openshift.io/v1"
# kube-apiserver names a CRD kind's schema after the reversed group (k8s.io/apiserver
# pkg/endpoints/openapi: config.openshift.io/v1.ClusterVersion -> io.openshift.config...).
SCHEMA_NAME = "io.openshift.config.v1.ClusterVersion"
GROUP_VERSION_KIND = {"group": "config.openshift.io", "version": "v1", "kind": "ClusterVersion"}
# Refusals that stay until the connection changes: RBAC, and no such document. Others (401
# before credentials rotate, 429, 5xx) are asked again.
_LASTING_REFUSALS = (403, 404)
_DETAIL_LIMIT = 300
_REF_PREFIX = "#/components/schemas/"
_MAX_REFS = 16  # a reference chain longer than this is a loop, not a schema


def schema_from_answer(status: int, body: bytes) -> tuple[ServedSchema, bool]:
    """The server's answer to GET OPENAPI_PATH, and whether it lasts (worth keeping until the
    connection changes): a document read, or a refusal no retry changes."""
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = None
    if status >= 400:
        message = _mapping(decoded).get("message")
        detail = (
            message if isinstance(message, str) and message else body.decode("utf-8", "replace")
        )
        found = ServedSchema.unreadable(
            f"GET {OPENAPI_PATH} answered {status}: {detail[:_DETAIL_LIMIT]}"
        )
        return found, status in _LASTING_REFUSALS
    if decoded is None:
        return ServedSchema.unreadable(f"GET {OPENAPI_PATH} did not answer JSON"), True
    return read_served_schema(decoded), True


def read_served_schema(document: Any) -> ServedSchema:
    """The ClusterVersion schema of an OpenAPI v3 group-version document, found by its
    x-kubernetes-group-version-kind (else by name), with $ref and allOf followed."""
    schemas = _mapping(_mapping(_mapping(document).get("components")).get("schemas"))
    if not schemas:
        return ServedSchema.unreadable("the document has no components.schemas")
    root = next((s for s in schemas.values() if _is_cluster_version(s)), schemas.get(SCHEMA_NAME))
    if not isinstance(root, Mapping):
        return ServedSchema.unreadable(f"no schema for {SCHEMA_NAME} in the document")
    fields = _properties(_resolve(root, schemas))
    spec = _resolve(fields.get("spec"), schemas)
    if not _properties(spec):
        # A schema kept as preserve-unknown-fields says nothing about which fields exist.
        return ServedSchema.unreadable("the ClusterVersion schema declares no spec fields")
    status = _resolve(fields.get("status"), schemas)
    update = _resolve(_properties(spec).get("desiredUpdate"), schemas)
    return ServedSchema(
        desired_update=frozenset(_properties(update)), status=frozenset(_properties(status))
    )


def _is_cluster_version(schema: Any) -> bool:
    kinds = _mapping(schema).get("x-kubernetes-group-version-kind")
    return isinstance(kinds, list) and any(
        isinstance(k, Mapping) and all(k.get(key) == v for key, v in GROUP_VERSION_KIND.items())
        for k in kinds
    )


def _resolve(node: Any, schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema `node` stands for: a `$ref` followed, or an `allOf` holding one schema (how
    OpenAPI v3 documents wrap a reference that carries a description or default)."""
    current = _mapping(node)
    for _ in range(_MAX_REFS):
        ref = current.get("$ref")
        parts = current.get("allOf")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            current = _mapping(schemas.get(_unescape(ref.removeprefix(_REF_PREFIX))))
        elif not current.get("properties") and isinstance(parts, list) and len(parts) == 1:
            current = _mapping(parts[0])
        else:
            return current
    return {}


def _unescape(pointer: str) -> str:
    """A JSON-pointer token (RFC 6901): ~1 is '/', ~0 is '~'."""
    return pointer.replace("~1", "/").replace("~0", "~")


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(schema.get("properties"))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
