"""The API verbs over the store: get, list, create, update, patch (merge, JSON, apply),
delete, with status-subresource rules, generations, managedFields, dry runs and admission.

No HTTP here: the server parses requests into calls and turns results into responses.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.sandbox.apiserver import admission, fieldmanager, namespaces, statuses, strategies
from agent.sandbox.apiserver import field_errors as fe
from agent.sandbox.apiserver.apply_patch import (
    AppliedBody,
    check_kind,
    decode_apply_body,
    repeated_key_warnings,
    typed_patch_failure,
)
from agent.sandbox.apiserver.crd_schema import FeatureSet, cluster_version_schema
from agent.sandbox.apiserver.fieldsets import EMPTY, FieldSet
from agent.sandbox.apiserver.patching import PatchError, json_patch, merge_patch
from agent.sandbox.apiserver.resources import NAMESPACES, ResourceType
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.apiserver.store import JsonObject, ObjectKey, Store
from agent.sandbox.apiserver.typemodel import (
    TypeNode,
    object_type,
    prune_undeclared,
    with_zero_fields,
)

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
# Kubernetes serves strategic merge patch for built-in kinds only, never for custom resources.
_CRD_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, APPLY_PATCH)
_BUILTIN_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class WriteOptions:
    manager: str
    dry_run: bool = False
    field_validation: str = ""
    force: bool = False


@dataclass(frozen=True, slots=True)
class WriteResult:
    object: JsonObject
    created: bool
    warnings: tuple[str, ...] = ()


class Api:
    """The verbs, applied to a Store; `clock` gives RFC 3339 timestamps."""

    def __init__(
        self,
        store: Store,
        feature_set: FeatureSet = "Default",
        clock: Callable[[], str] = now_rfc3339,
    ) -> None:
        self.store = store
        self.feature_set = feature_set
        self.clock = clock

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> ObjectKey:
        return (rt.id, namespace if rt.namespaced else "", name)

    # Reads.
    def get(self, rt: ResourceType, namespace: str, name: str) -> JsonObject:
        found = self.store.get(self.key(rt, namespace, name))
        if found is None:
            raise statuses.not_found(rt, name)
        return found

    def list(
        self, rt: ResourceType, namespace: str, name: str = "", labels: dict[str, str] | None = None
    ) -> tuple[list[JsonObject], str]:
        items = self.store.list(rt.id, namespace if rt.namespaced else "", name)
        if labels:
            items = [
                item
                for item in items
                if all(
                    (item["metadata"].get("labels") or {}).get(k) == v for k, v in labels.items()
                )
            ]
        return items, str(self.store.resource_version)

    # Writes.
    def create(self, target: Target, body: Any, options: WriteOptions) -> WriteResult:
        rt, namespace = target.resource, target.namespace
        obj = self._checked_body(rt, namespace, body, name="", default_type=True)
        # Decoding comes first: a strict field-validation 400 precedes even AlreadyExists.
        obj, warnings = self._pruned(rt, obj, options)
        name = strategies.name_or_generated(obj["metadata"])
        obj = strategies.defaulted(rt, obj)
        if not name and rt.validated_by_schema:
            raise _meta_invalid(rt, "", "metadata.name", "name or generateName is required")
        namespaces.require_namespace(self.store, rt, namespace)
        obj["metadata"].pop("managedFields", None)
        if rt.status_subresource:
            obj.pop("status", None)
        # The writer owns what it sent and what decoding defaulted, not what the strategy sets.
        tracked = copy.deepcopy(obj)
        strategies.prepare_for_create(rt, obj)
        obj, _ = self._admit(rt, obj, None, "", options, pruned=True)
        # Validation comes before existence: a real server answers 422 before 409.
        if self.store.get(self.key(rt, namespace, name)) is not None:
            raise statuses.already_exists(rt, name)
        self._stamp_new(rt, obj, namespace)
        managed = fieldmanager.update(
            None, tracked, [], options.manager, now=self.clock(), types=self._types(rt)
        )
        obj["metadata"]["managedFields"] = fieldmanager.managed_fields_to_json(managed)
        return self._store(dataclasses.replace(target, name=name), None, obj, options, warnings)

    def replace(self, target: Target, body: Any, options: WriteOptions) -> WriteResult:
        rt, namespace, name = target.resource, target.namespace, target.name
        new = self._checked_body(rt, namespace, body, name=name, default_type=True)
        old = self.store.get(self.key(rt, namespace, name))
        if old is None:
            if not rt.create_on_update:
                raise statuses.not_found(rt, name)
            return self.create(target, new, options)
        _check_resource_version(rt, name, new, old)
        return self._update(target, old, new, options)

    def patch(
        self, target: Target, content_type: str, body: Any, options: WriteOptions
    ) -> WriteResult:
        rt, namespace, name = target.resource, target.namespace, target.name
        accepted = _BUILTIN_PATCH_TYPES if not rt.validated_by_schema else _CRD_PATCH_TYPES
        if content_type not in accepted:
            raise statuses.unsupported_media_type(content_type, accepted)
        if content_type == APPLY_PATCH:
            return self._apply(target, body, options)
        old = self.get(rt, namespace, name)
        patcher = json_patch if content_type == JSON_PATCH else merge_patch
        try:
            new = patcher(old, body)
        except PatchError as exc:
            raise ApiError(statuses.status(422, "Invalid", str(exc))) from exc
        if not isinstance(new, dict):
            raise statuses.bad_request("the patch must leave an object")
        _check_resource_version(rt, name, new, old)
        return self._update(target, old, new, options)

    def delete(self, rt: ResourceType, namespace: str, name: str, dry_run: bool) -> JsonObject:
        if rt is NAMESPACES:
            return namespaces.delete_namespace(self.store, name, dry_run=dry_run, now=self.clock())
        key = self.key(rt, namespace, name)
        found = self.get(rt, namespace, name)
        if dry_run:
            return found
        removed = self.store.delete(key)
        return removed if removed is not None else found

    # Internals.
    def _apply(self, target: Target, body: Any, options: WriteOptions) -> WriteResult:
        rt, namespace, name, subresource = (
            target.resource,
            target.namespace,
            target.name,
            target.subresource,
        )
        if not options.manager:
            cause = fe.required("fieldManager", "is required for apply patch")
            raise ApiError(admission.invalid_status("PatchOptions.meta.k8s.io", "", [cause]))
        # The field manager's order: decode the YAML, check the kind, build the typed patch
        # (undeclared fields and wrong types fail here, before anything merges or prunes).
        applied = decode_apply_body(body) if isinstance(body, str | bytes) else AppliedBody(body)
        config = check_kind(applied.object, rt.api_version, rt.kind)
        types = self._types(rt)
        failure = typed_patch_failure(config, types)
        if failure is not None:
            raise failure
        config = self._checked_body(rt, namespace, config, name=name)
        config, warnings = self._pruned(rt, config, options)
        live = self.store.get(self.key(rt, namespace, name))
        if live is None and subresource:
            raise statuses.not_found(rt, name)
        managed = fieldmanager.managed_fields_from_json(
            live["metadata"].get("managedFields") if live else None
        )
        try:
            result = fieldmanager.apply(
                live,
                managed,
                config,
                options.manager,
                force=options.force,
                subresource=subresource,
                now=self.clock(),
                types=types,
                reset_fields=self._reset_fields(rt, subresource),
            )
        except fieldmanager.ApplyConflictError as exc:
            # The field manager's conflict error names only the fields, not the object.
            details = {"causes": exc.causes()}
            raise ApiError(statuses.status(409, "Conflict", exc.message, details)) from exc
        warnings += repeated_key_warnings(applied, options.field_validation)
        new = strategies.defaulted(rt, result.object)
        if live is None:
            namespaces.require_namespace(self.store, rt, namespace)
            if rt.status_subresource:
                new.pop("status", None)
            strategies.prepare_for_create(rt, new)
            self._stamp_new(rt, new, namespace)
        else:
            _check_resource_version(rt, name, new, live)
            strategies.prepare_for_update(rt, new, live)
            self._keep_server_metadata(rt, live, new, subresource)
        new, _ = self._admit(rt, new, live, subresource, options, pruned=True)
        return self._store(target, live, new, options, warnings)

    def _update(
        self, target: Target, old: JsonObject, new: JsonObject, options: WriteOptions
    ) -> WriteResult:
        rt, subresource = target.resource, target.subresource
        new = strategies.defaulted(rt, new)
        strategies.prepare_for_update(rt, new, old)
        new, warnings = self._pruned(rt, new, options)
        if rt.status_subresource:
            if subresource == "status":
                status = new.get("status")
                new = copy.deepcopy(old)
                if status is None:
                    new.pop("status", None)
                else:
                    new["status"] = status
            elif "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        self._keep_server_metadata(rt, old, new, subresource)
        new, _ = self._admit(rt, new, old, subresource, options, pruned=True)
        managed = fieldmanager.update(
            old,
            new,
            fieldmanager.managed_fields_from_json(old["metadata"].get("managedFields")),
            options.manager,
            operation_subresource=subresource,
            now=self.clock(),
            types=self._types(rt),
            reset_fields=self._reset_fields(rt, subresource),
        )
        new["metadata"]["managedFields"] = fieldmanager.managed_fields_to_json(managed)
        return self._store(target, old, new, options, warnings)

    def _store(
        self,
        target: Target,
        old: JsonObject | None,
        new: JsonObject,
        options: WriteOptions,
        warnings: tuple[str, ...],
    ) -> WriteResult:
        rt = target.resource
        if not rt.validated_by_schema:
            # A built-in object is stored as its Go value: a non-pointer struct and a field
            # without omitempty are there even when the request left them out.
            new = with_zero_fields(new, self._types(rt))
        if old is not None and _same_ignoring_times(old, new):
            return WriteResult(old, False, warnings)  # a no-op write stores nothing
        if options.dry_run:
            return WriteResult(new, old is None, warnings)
        key = self.key(rt, target.namespace, target.name)
        stored = self.store.put(key, new)
        return WriteResult(stored, old is None, warnings)

    def _checked_body(
        self, rt: ResourceType, namespace: str, body: Any, name: str, *, default_type: bool = False
    ) -> JsonObject:
        if not isinstance(body, dict):
            raise statuses.bad_request("the request body must be a JSON or YAML object")
        obj = copy.deepcopy(body)
        if default_type:
            # As kube-apiserver's decoder does for create and update (never for apply): a body
            # without apiVersion or kind takes them from the request's resource.
            if not obj.get("kind"):
                obj["kind"] = rt.kind
            if not obj.get("apiVersion"):
                obj["apiVersion"] = rt.api_version
        if obj.get("apiVersion") != rt.api_version or obj.get("kind") != rt.kind:
            raise statuses.bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) and kind "
                f"({obj.get('kind')}) do not match the request ({rt.api_version} {rt.kind})"
            )
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise statuses.bad_request("metadata must be an object")
        if name and metadata.get("name", name) != name:
            raise statuses.bad_request(
                f"the name of the object ({metadata.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        if name:
            metadata["name"] = name
        if rt.namespaced:
            if metadata.get("namespace", namespace) != namespace:
                raise statuses.bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)  # a cluster-scoped object's namespace is cleared
        return obj

    def _pruned(
        self, rt: ResourceType, obj: JsonObject, options: WriteOptions
    ) -> tuple[JsonObject, tuple[str, ...]]:
        if rt.validated_by_schema:
            pruned, unknown = admission.prune(obj, cluster_version_schema(self.feature_set))
        else:  # a built-in kind: decoding into its Go type drops what the type does not declare
            pruned, unknown = prune_undeclared(obj, self._types(rt))
        verdict = admission.field_validation(
            options.field_validation or "",  # type: ignore[arg-type]
            unknown,
            kind=rt.kind,
            version=rt.version,
        )
        if verdict.status is not None:
            raise ApiError(verdict.status)
        return pruned, verdict.warnings

    def _admit(
        self,
        rt: ResourceType,
        obj: JsonObject,
        old: JsonObject | None,
        subresource: str,
        options: WriteOptions,
        *,
        pruned: bool = False,
    ) -> tuple[JsonObject, tuple[str, ...]]:
        warnings: tuple[str, ...] = ()
        if not pruned:
            obj, warnings = self._pruned(rt, obj, options)
        if rt.validated_by_schema:
            causes = admission.validate(
                obj,
                old,
                self.feature_set,
                subresource="status" if subresource == "status" else "",
            )
        else:
            causes = strategies.validate(rt, obj, old)
        if causes:
            name = obj["metadata"].get("name", "")
            raise ApiError(admission.invalid_status(rt.kind_group, name, causes))
        return obj, warnings

    def _stamp_new(self, rt: ResourceType, obj: JsonObject, namespace: str) -> None:
        metadata = obj["metadata"]
        for field in ("resourceVersion", "deletionTimestamp"):
            metadata.pop(field, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = self.clock()
        if rt.tracks_generation:
            metadata["generation"] = 1
        else:
            metadata.pop("generation", None)
        if rt.namespaced:
            metadata["namespace"] = namespace

    @staticmethod
    def _keep_server_metadata(
        rt: ResourceType, old: JsonObject, new: JsonObject, subresource: str
    ) -> None:
        before, after = old["metadata"], new.setdefault("metadata", {})
        if subresource == "status":
            new["metadata"] = copy.deepcopy(before) | {
                "managedFields": after.get("managedFields", before.get("managedFields"))
            }
            after = new["metadata"]
        for field in ("uid", "creationTimestamp", "name", "namespace", "resourceVersion"):
            if field in before:
                after[field] = before[field]
        if rt.tracks_generation:
            generation = int(before.get("generation", 1))
            if subresource != "status" and new.get("spec") != old.get("spec"):
                generation += 1
            after["generation"] = generation

    def _types(self, rt: ResourceType) -> TypeNode:
        return object_type(rt.kind, self.feature_set)

    @staticmethod
    def _reset_fields(rt: ResourceType, subresource: str) -> FieldSet:
        if not rt.status_subresource:
            return EMPTY
        return fieldmanager.crd_reset_fields(subresource)


def _same_ignoring_times(old: JsonObject, new: JsonObject) -> bool:
    def without_times(obj: JsonObject) -> JsonObject:
        copy_ = copy.deepcopy(obj)
        for entry in copy_.get("metadata", {}).get("managedFields") or ():
            entry.pop("time", None)
        return copy_

    return without_times(old) == without_times(new)


def _check_resource_version(rt: ResourceType, name: str, new: JsonObject, live: JsonObject) -> None:
    """The storage's precondition on every update, whatever the verb (PUT, a patch, an apply):
    the written object's resourceVersion must be the stored one's. Without one, a kind whose
    strategy allows unconditional updates writes over the latest; any other refuses."""
    requested = (new.get("metadata") or {}).get("resourceVersion")
    if not requested:
        if rt.unconditional_update:
            return
        # The registry names the resource here, not the kind: `leases.coordination.k8s.io`.
        cause = fe.invalid("metadata.resourceVersion", 0, "must be specified for an update")
        raise ApiError(admission.invalid_status(rt.qualified_plural, name, [cause]))
    if requested != live["metadata"]["resourceVersion"]:
        raise statuses.conflict(rt, name)


def _meta_invalid(rt: ResourceType, name: str, field: str, detail: str) -> ApiError:
    """A required metadata field missing from a create, named by kind as validation does."""
    cause = fe.required(field, detail)
    return ApiError(admission.invalid_status(rt.kind_group, name, [cause]))
