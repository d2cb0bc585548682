"""How the API server treats each built-in kind on create and update: defaults, the fields its
JSON always carries, preparation and validation (Event, Namespace, Lease).

Pure: dicts in, dicts and field errors out. The rules are those of the kinds' registry
strategies and validation in kubernetes/kubernetes (pkg/registry/core, pkg/apis/*/validation).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Mapping
from typing import Any

from agent.sandbox.apiserver import field_errors as fe
from agent.sandbox.apiserver import names
from agent.sandbox.apiserver.field_errors import Cause
from agent.sandbox.apiserver.resources import EVENTS, LEASES, NAMESPACES, ResourceType

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
KUBERNETES_FINALIZER = "kubernetes"
# Finalizer names a Namespace may carry without a domain (pkg/apis/core/helper).
_STANDARD_FINALIZERS = frozenset({KUBERNETES_FINALIZER, "orphan", "foregroundDeletion"})
# names.SimpleNameGenerator: at most 58 characters of the prefix, then 5 random ones from
# an alphabet without vowels (k8s.io/apimachinery/pkg/util/rand).
_GENERATED_PREFIX_LIMIT = 58
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_EVENT_LIMITS = {"reportingInstance": 128, "action": 128, "reason": 128, "message": 1024}


def generate_name(prefix: str) -> str:
    """A name for metadata.generateName, as the API server makes one."""
    suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    return prefix[:_GENERATED_PREFIX_LIMIT] + suffix


def name_or_generated(metadata: dict[str, Any]) -> str:
    """The new object's name: its own, or one made from its generateName ("" for neither)."""
    if not metadata.get("name") and metadata.get("generateName"):
        metadata["name"] = generate_name(str(metadata["generateName"]))
    return str(metadata.get("name") or "")


def defaulted(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """The object after decoding's defaults; the writer owns what they add."""
    if rt is NAMESPACES:
        metadata = obj.setdefault("metadata", {})
        if metadata.get("name"):
            labels = metadata.get("labels") or {}
            metadata["labels"] = {**labels, NAMESPACE_NAME_LABEL: metadata["name"]}
    return obj


def prepare_for_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    """What the strategy sets on a new object; no writer owns these fields."""
    if rt is NAMESPACES:
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec") or {}
        finalizers = list(spec.get("finalizers") or [])
        if KUBERNETES_FINALIZER not in finalizers:
            finalizers.append(KUBERNETES_FINALIZER)
        obj["spec"] = {**spec, "finalizers": finalizers}


def prepare_for_update(rt: ResourceType, new: dict[str, Any], old: Mapping[str, Any]) -> None:
    """What an update may not change: a Namespace's finalizers (only /finalize does) and its
    status; its name label always follows its name."""
    if rt is NAMESPACES:
        spec = dict(new.get("spec") or {})
        spec.pop("finalizers", None)
        if "finalizers" in (old.get("spec") or {}):
            spec["finalizers"] = copy.deepcopy(old["spec"]["finalizers"])
        new["spec"] = spec
        new["status"] = copy.deepcopy(old.get("status") or {})
        defaulted(rt, new)


def validate(
    rt: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> list[Cause]:
    """The field errors the kind's strategy and then ObjectMeta validation report, in order."""
    if rt is EVENTS:
        causes = _legacy_event_causes(obj)
        if old is None and not causes:
            causes = _meta_causes(obj, names.path_segment_errors)
        return causes
    if rt is NAMESPACES:
        causes = _meta_causes(obj, names.dns1123_label_errors) if old is None else []
        for finalizer in (obj.get("spec") or {}).get("finalizers") or ():
            causes += _finalizer_causes(str(finalizer))
        return causes
    if rt is LEASES:
        causes = _meta_causes(obj, names.dns1123_subdomain_errors) if old is None else []
        return causes + _lease_spec_causes(obj.get("spec") or {})
    return []


def _meta_causes(obj: Mapping[str, Any], name_errors: Any) -> list[Cause]:
    """ValidateObjectMeta's name rules (generateName was already turned into a name)."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not name:
        return [fe.required("metadata.name", "name or generateName is required")]
    return [fe.invalid("metadata.name", name, message) for message in name_errors(name)]


def _legacy_event_causes(event: Mapping[str, Any]) -> list[Cause]:
    """legacyValidateEvent (pkg/apis/core/validation/events.go), which every core/v1 Event
    write passes. Field paths are the internal type's: reportingController, not
    reportingComponent."""
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    involved = str((event.get("involvedObject") or {}).get("namespace") or "")
    mismatch = fe.invalid("involvedObject.namespace", involved, "does not match event.namespace")
    causes: list[Cause] = []
    if not event.get("eventTime"):
        # An old-style Event: about an object in its own namespace, or (for old clients)
        # about a cluster-scoped one, from the default namespace only.
        matches = involved == namespace if involved else namespace in ("", "default")
        if not matches:
            causes.append(mismatch)
    else:
        if not involved and namespace not in ("default", "kube-system"):
            causes.append(mismatch)
        controller = str(event.get("reportingComponent") or "")
        if not controller:
            causes.append(fe.required("reportingController"))
        causes += [
            fe.invalid("reportingController", controller, message)
            for message in names.qualified_name_errors(controller)
        ]
        causes += _event_text_causes(event)
    causes += [
        fe.invalid("namespace", namespace, message)
        for message in names.dns1123_subdomain_errors(namespace)
    ]
    return causes


def _event_text_causes(event: Mapping[str, Any]) -> list[Cause]:
    """The required and length-limited strings of an Event with eventTime set."""
    causes: list[Cause] = []
    for field, limit in _EVENT_LIMITS.items():
        value = str(event.get(field) or "")
        if not value and field != "message":
            causes.append(fe.required(field))
        if len(value) > limit:
            causes.append(fe.invalid(field, "", f"can have at most {limit} characters"))
    return causes


def _finalizer_causes(finalizer: str) -> list[Cause]:
    field = "spec.finalizers"
    causes = [
        fe.invalid(field, finalizer, message) for message in names.qualified_name_errors(finalizer)
    ]
    if "/" not in finalizer and finalizer not in _STANDARD_FINALIZERS:
        causes.append(
            fe.invalid(
                field,
                finalizer,
                "name is neither a standard finalizer name nor is it fully qualified",
            )
        )
    return causes


def _lease_spec_causes(spec: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    duration = spec.get("leaseDurationSeconds")
    if isinstance(duration, int) and duration <= 0:
        causes.append(fe.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if isinstance(transitions, int) and transitions < 0:
        causes.append(
            fe.invalid("spec.leaseTransitions", transitions, "must be greater than or equal to 0")
        )
    return causes
