"""What a request asks for, read from its method, path and query alone, before anyone knows
whether the server serves it: the attributes authorization decides on.

Pure. Follows the API server's request-info resolver (k8s.io/apiserver endpoints/request).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# Paths under a namespace that belong to the Namespace itself, not to a resource inside it.
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """A request's attributes; for a resource request: group, version, namespace, resource,
    name and subresource as the URL spells them (the resource may not exist)."""

    path: str
    verb: str
    is_resource_request: bool = False
    api_prefix: str = ""  # "api" (the core group) or "apis"
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    parts: tuple[str, ...] = ()  # resource, name, subresource and anything after them

    @property
    def qualified_resource(self) -> str:
        """`clusterversions.config.openshift.io`, or `secrets` for the core group."""
        return f"{self.resource}.{self.api_group}" if self.api_group else self.resource


def resolve(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """The request's attributes. `/api/v1/...` and `/apis/<group>/<version>/...` with at least
    a resource are resource requests; anything else (discovery, /healthz) is not."""
    parts = [part for part in path.split("/") if part]
    non_resource = RequestInfo(path=path, verb=method.lower())
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]

    verb = _METHOD_VERBS.get(method.upper(), "")
    special_watch = rest[0] == "watch" and len(rest) > 1  # the deprecated /watch/ form
    if special_watch:
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""

    if not name and verb == "get":
        verb = "watch" if query.get("watch", "") in _TRUE else "list"
        # A list or watch of exactly one name is authorized as a request for that name, so
        # RBAC resourceNames can allow it.
        name = _single_name(query.get("fieldSelector", ""))
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource_request=True,
        api_prefix=prefix,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=subresource,
        parts=tuple(rest),
    )


def _single_name(selector: str) -> str:
    """The name a field selector requires exactly (`metadata.name=version`), or ""."""
    for term in filter(None, selector.split(",")):
        field, operator, value = _split_term(term)
        if field == "metadata.name" and operator in ("=", "==") and _valid_segment(value):
            return value
    return ""


def _split_term(term: str) -> tuple[str, str, str]:
    for operator in ("!=", "==", "="):
        field, found, value = term.partition(operator)
        if found:
            return field.strip(), operator, value.strip()
    return term.strip(), "", ""


def _valid_segment(name: str) -> bool:
    return bool(name) and name not in (".", "..") and "/" not in name and "%" not in name
