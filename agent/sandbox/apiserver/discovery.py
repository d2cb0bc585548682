"""Discovery documents as a real API server serves them: /version, /api, /apis, group
versions, and the OpenAPI v2/v3 documents kubectl reads for its verbs.

Pure: builds JSON-ready dicts from the resource table.
"""

from __future__ import annotations

from typing import Any

from agent.sandbox.apiserver.resources import BY_GROUP_VERSION, RESOURCE_TYPES, ResourceType

KUBERNETES_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-cvsync-sandbox"}


def version_info() -> dict[str, str]:
    return {
        **KUBERNETES_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_entry(group: str, version: str) -> dict[str, Any]:
    group_version = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [group_version], "preferredVersion": group_version}


def api_groups() -> dict[str, Any]:
    groups = sorted({(rt.group, rt.version) for rt in RESOURCE_TYPES if rt.group})
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(group, version) for group, version in groups],
    }


def api_group(group: str) -> dict[str, Any] | None:
    versions = [v for g, v in BY_GROUP_VERSION if g == group and g]
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, versions[0])}


def _resource_entries(rt: ResourceType) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    entries = [entry]
    if rt.status_subresource:
        entries.append(
            {
                "name": f"{rt.plural}/status",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    types = BY_GROUP_VERSION.get((group, version))
    if types is None:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rt in types.values() for entry in _resource_entries(rt)],
    }
