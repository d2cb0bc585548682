"""The resource types the sandbox serves, with what discovery, routing and admission need.

Pure data: ClusterVersion (cluster-scoped, /status), Lease, Event (namespaced) and
Namespace, as a real server lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_NAMESPACE_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    status_subresource: bool = False
    tracks_generation: bool = False
    validated_by_schema: bool = False
    # The strategy's AllowCreateOnUpdate (a PUT may create) and AllowUnconditionalUpdate (a
    # PUT need not carry a resourceVersion).
    create_on_update: bool = False
    unconditional_update: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def id(self) -> str:
        """The store's key for this resource: `config.openshift.io/clusterversions`."""
        return f"{self.group}/{self.plural}"

    @property
    def kind_group(self) -> str:
        """How errors name the resource: `ClusterVersion.config.openshift.io`."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def qualified_plural(self) -> str:
        """How NotFound and Forbidden messages name it: `clusterversions.config.openshift.io`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


CLUSTER_VERSIONS = ResourceType(
    group="config.openshift.io",
    version="v1",
    plural="clusterversions",
    singular="clusterversion",
    kind="ClusterVersion",
    namespaced=False,
    verbs=_ALL_VERBS,
    status_subresource=True,
    tracks_generation=True,
    validated_by_schema=True,
)
LEASES = ResourceType(
    group="coordination.k8s.io",
    version="v1",
    plural="leases",
    singular="lease",
    kind="Lease",
    namespaced=True,
    verbs=_ALL_VERBS,
)
EVENTS = ResourceType(
    group="",
    version="v1",
    plural="events",
    singular="event",
    kind="Event",
    namespaced=True,
    verbs=_ALL_VERBS,
    short_names=("ev",),
    create_on_update=True,
    unconditional_update=True,
)
NAMESPACES = ResourceType(
    group="",
    version="v1",
    plural="namespaces",
    singular="namespace",
    kind="Namespace",
    namespaced=False,
    verbs=_NAMESPACE_VERBS,
    short_names=("ns",),
    unconditional_update=True,
)

RESOURCE_TYPES = (CLUSTER_VERSIONS, LEASES, EVENTS, NAMESPACES)
BY_GROUP_VERSION: Mapping[tuple[str, str], Mapping[str, ResourceType]] = {
    (rt.group, rt.version): {
        other.plural: other
        for other in RESOURCE_TYPES
        if (other.group, other.version) == (rt.group, rt.version)
    }
    for rt in RESOURCE_TYPES
}
