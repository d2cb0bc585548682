"""Namespaces' lifecycle: no writes into a namespace that does not exist, the namespaces that
may never be deleted, and deletion that takes a namespace's content with it.

Over the Store: the NamespaceLifecycle admission plugin's checks, and the namespace
controller's work done at once (plugin/pkg/admission/namespace/lifecycle, pkg/controller/namespace).
"""

from __future__ import annotations

import copy

from agent.sandbox.apiserver import statuses
from agent.sandbox.apiserver.resources import NAMESPACES, RESOURCE_TYPES, ResourceType
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.apiserver.store import JsonObject, Store

IMMORTAL = frozenset({"default", "kube-system", "kube-public"})


def require_namespace(store: Store, rt: ResourceType, namespace: str) -> None:
    """A create of a namespaced object is refused while its namespace does not exist."""
    if rt.namespaced and store.get((NAMESPACES.id, "", namespace)) is None:
        raise statuses.namespace_not_found(namespace)


def delete_namespace(store: Store, name: str, *, dry_run: bool, now: str) -> JsonObject:
    """Delete a namespace as the API server and its namespace controller do: the DELETE
    answers with the namespace marked Terminating; then everything in it is deleted, its
    `kubernetes` finalizer removed and the namespace itself deleted. Watchers see each step."""
    if name in IMMORTAL:
        raise ApiError(
            statuses.status(
                403,
                "Forbidden",
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                {"name": name, "kind": "namespaces"},
            )
        )
    key = (NAMESPACES.id, "", name)
    found = store.get(key)
    if found is None:
        raise statuses.not_found(NAMESPACES, name)
    terminating = copy.deepcopy(found)
    terminating["metadata"].setdefault("deletionTimestamp", now)
    terminating["status"] = {**(terminating.get("status") or {}), "phase": "Terminating"}
    if dry_run:
        return terminating
    answer = store.put(key, terminating)
    _empty(store, name)
    finalized = copy.deepcopy(answer)
    finalized["spec"] = {**(finalized.get("spec") or {}), "finalizers": []}
    store.put(key, finalized)
    store.delete(key)
    return answer


def _empty(store: Store, namespace: str) -> None:
    for rt in _namespaced():
        for obj in store.list(rt.id, namespace):
            store.delete((rt.id, namespace, obj["metadata"]["name"]))


def _namespaced() -> tuple[ResourceType, ...]:
    return tuple(rt for rt in RESOURCE_TYPES if rt.namespaced)
