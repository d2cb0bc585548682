"""Map resource requests to the resources the sandbox serves, and answer the rest with the
404 the real server's handler chain gives.

Pure: `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` and
the core group's `/api/v1/...`, as `requestinfo` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.sandbox.apiserver import statuses
from agent.sandbox.apiserver.requestinfo import RequestInfo
from agent.sandbox.apiserver.resources import BY_GROUP_VERSION, RESOURCE_TYPES, ResourceType


@dataclass(frozen=True, slots=True)
class Target:
    resource: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""


# Groups the built-in router serves; a CRD's group (and any unknown one) is the extensions
# server's, whose unknown paths fall through to the plain-text 404.
_BUILTIN_GROUPS = frozenset(rt.group for rt in RESOURCE_TYPES if not rt.validated_by_schema)


def target_for(info: RequestInfo) -> Target:
    """The served resource a resource request names; raise the real server's 404 otherwise."""
    types = BY_GROUP_VERSION.get((info.api_group, info.api_version), {})
    resource = types.get(info.resource)
    if resource is None or len(info.parts) > 3:
        raise not_served(info.path)
    if resource.namespaced and not info.namespace and info.name:
        raise not_served(info.path)  # no route for a namespaced name outside a namespace
    if not resource.namespaced and info.namespace and resource.plural != "namespaces":
        raise not_served(info.path)
    if info.subresource and not (info.subresource == "status" and resource.status_subresource):
        if resource.validated_by_schema:
            # The extensions server answers an unknown subresource of a custom resource with
            # the object's NotFound (apiextensions-apiserver customresource_handler.go).
            raise statuses.not_found(resource, info.name)
        raise not_served(info.path)
    namespace = info.namespace if resource.namespaced else ""
    return Target(resource, namespace, info.name, info.subresource)


def not_served(path: str) -> Exception:
    """The 404 for a path nothing serves: JSON from the built-in router for /api/... and the
    built-in groups, plain text from the last handler in the chain for everything else."""
    parts = [part for part in path.split("/") if part]
    builtin = parts[:1] == ["api"] or (
        len(parts) > 1 and parts[0] == "apis" and parts[1] in _BUILTIN_GROUPS
    )
    return statuses.no_route() if builtin else statuses.PageNotFoundError()
