"""The ClusterVersion API as cvsync checks it: field shapes, enums and release tables, and
the fields only some feature sets' CRDs declare (what a cluster serves: ServedSchema).

Pure data. A new OpenShift release is a one-line change here (a baseline set, a
capability, a channel prefix); nothing else in cvsync lists these values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

API_GROUP = "config.openshift.io"
API_VERSION = "config.openshift.io/v1"
KIND = "ClusterVersion"
LIST_KINDS = frozenset({"List", "ClusterVersionList"})
OBJECT_NAME = "version"

# spec.capabilities.baselineCapabilitySet (CRD enum).
BASELINE_CAPABILITY_SETS = (
    "None",
    "v4.11",
    "v4.12",
    "v4.13",
    "v4.14",
    "v4.15",
    "v4.16",
    "v4.17",
    "v4.18",
    "vCurrent",
)

# spec.capabilities.additionalEnabledCapabilities items (CRD enum).
CAPABILITIES = (
    "openshift-samples",
    "baremetal",
    "marketplace",
    "Console",
    "Insights",
    "Storage",
    "CSISnapshot",
    "NodeTuning",
    "MachineAPI",
    "Build",
    "DeploymentConfig",
    "ImageRegistry",
    "OperatorLifecycleManager",
    "CloudCredential",
    "Ingress",
    "CloudControllerManager",
    "OperatorLifecycleManagerV1",
)

# Capabilities the CRD's CEL rules make depend on another one when the baseline is None.
CAPABILITY_REQUIREMENTS: Mapping[str, str] = {"marketplace": "OperatorLifecycleManager"}

# Channel names the update service publishes: `stable-4.15`, `eus-4.14`, OKD's `stable-scos-4`.
CHANNEL_PREFIXES = ("stable", "fast", "candidate", "eus")
OKD_CHANNEL_STREAMS = ("scos", "okd")

# spec.desiredUpdate.architecture (CRD enum).
ARCHITECTURES = ("Multi", "")

# spec.overrides is a map list with these keys, in the CRD's order.
OVERRIDE_KEYS = ("kind", "group", "namespace", "name")

# metadata fields the API server owns; a desired spec may carry them (copied from
# `oc get -o yaml`), but they are never applied.
SERVER_OWNED_METADATA = frozenset(
    {
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)
USER_METADATA = frozenset({"name", "labels", "annotations", "namespace", "generateName"})
USER_METADATA_EXTRA = frozenset({"finalizers", "ownerReferences"})

JsonType = Literal["string", "boolean", "integer", "object", "array"]


@dataclass(frozen=True, slots=True)
class FieldShape:
    """The schema of one field: its JSON type and, for objects and arrays, what is inside."""

    type: JsonType
    fields: Mapping[str, FieldShape] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: FieldShape | None = None


_STRING = FieldShape("string")
_BOOLEAN = FieldShape("boolean")

SPEC_SHAPE = FieldShape(
    "object",
    fields={
        "capabilities": FieldShape(
            "object",
            fields={
                "additionalEnabledCapabilities": FieldShape("array", items=_STRING),
                "baselineCapabilitySet": _STRING,
            },
        ),
        "channel": _STRING,
        "clusterID": _STRING,
        "desiredUpdate": FieldShape(
            "object",
            fields={
                "architecture": _STRING,
                "force": _BOOLEAN,
                "image": _STRING,
                "version": _STRING,
            },
        ),
        "overrides": FieldShape(
            "array",
            items=FieldShape(
                "object",
                fields={
                    "group": _STRING,
                    "kind": _STRING,
                    "name": _STRING,
                    "namespace": _STRING,
                    "unmanaged": _BOOLEAN,
                },
                required=("group", "kind", "name", "namespace", "unmanaged"),
            ),
        ),
        "upstream": _STRING,
    },
    required=("clusterID",),
)

TOP_LEVEL_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")

# Fields only some feature sets' CRDs declare (TechPreviewNoUpgrade: ClusterUpdateAcceptRisks).
ACCEPT_RISKS = "acceptRisks"  # spec.desiredUpdate.acceptRisks: [{name}], a map list by name
CONDITIONAL_UPDATE_RISKS = "conditionalUpdateRisks"  # status.conditionalUpdateRisks


@dataclass(frozen=True, slots=True)
class ServedSchema:
    """The fields the cluster's served ClusterVersion schema declares where feature sets
    differ, as its API server publishes them (adapters.served_schema reads them).

    `problem` says why nothing could be read; then every set is empty and no optional field
    counts as declared: cvsync sends only what every schema has."""

    desired_update: frozenset[str] = frozenset()  # spec.desiredUpdate's fields
    status: frozenset[str] = frozenset()  # status's fields
    problem: str = ""

    @classmethod
    def unreadable(cls, problem: str) -> ServedSchema:
        return cls(problem=problem)

    @property
    def accept_risks(self) -> bool:
        """spec.desiredUpdate.acceptRisks is declared (ClusterUpdateAcceptRisks is on)."""
        return ACCEPT_RISKS in self.desired_update

    @property
    def conditional_update_risks(self) -> bool:
        return CONDITIONAL_UPDATE_RISKS in self.status

    def describe(self) -> str:
        """One line for logs: what was learned, or why nothing was."""
        if self.problem:
            return f"the ClusterVersion schema could not be read ({self.problem})"
        declared = "declares" if self.accept_risks else "does not declare"
        return f"the served ClusterVersion schema {declared} spec.desiredUpdate.acceptRisks"
