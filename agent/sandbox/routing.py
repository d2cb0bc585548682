"""Map request paths to resources the way kube-apiserver lays out its URL space.

Pure: `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` and
the core group's `/api/v1/...`.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.sandbox import statuses
from agent.sandbox.resources import BY_GROUP_VERSION, ResourceType


@dataclass(frozen=True, slots=True)
class Target:
    resource: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def parse_resource_path(path: str) -> Target | None:
    """The resource a path names, or None when it names none the sandbox serves."""
    parts = [part for part in path.split("/") if part]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    types = BY_GROUP_VERSION.get((group, version))
    if types is None or not rest:
        return None
    namespace = ""
    if (
        rest[0] == "namespaces"
        and len(rest) >= 3
        and rest[2] in types
        and types[rest[2]].namespaced
    ):
        namespace, rest = rest[1], rest[2:]
    resource = types.get(rest[0])
    if resource is None or len(rest) > 3:
        return None
    if resource.namespaced and not namespace and len(rest) > 1:
        return None
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if subresource and not (subresource == "status" and resource.status_subresource):
        return None
    return Target(resource, namespace, name, subresource)


def field_selector_name(selector: str) -> str:
    """The name a `metadata.name=<name>` field selector asks for ("" for none)."""
    name = ""
    for term in filter(None, selector.split(",")):
        field_name, _, value = term.replace("==", "=").partition("=")
        if field_name == "metadata.name":
            name = value
        elif field_name != "metadata.namespace":
            raise statuses.bad_request(
                f'"{field_name}" is not a known field selector: only "metadata.name", '
                '"metadata.namespace"'
            )
    return name
