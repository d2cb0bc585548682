"""Our own structural schema of ClusterVersion (config.openshift.io/v1), Default and TechPreview.

Pure data, written by hand from the generated CRD manifests of openshift/api; rules in crd_rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.sandbox.apiserver import crd_rules

FeatureSet = Literal["Default", "TechPreviewNoUpgrade"]
FEATURE_SETS: tuple[FeatureSet, ...] = ("Default", "TechPreviewNoUpgrade")


@dataclass(frozen=True)
class Rule:
    """One x-kubernetes-validations entry: the CEL text, its message, and our equivalent."""

    rule: str
    message: str
    check: Callable[[Any], bool]


@dataclass(frozen=True)
class Schema:
    """One node of a structural schema; None and empty mean the keyword is absent."""

    type: str
    properties: Mapping[str, Schema] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    items: Schema | None = None
    enum: tuple[str, ...] = ()
    nullable: bool = False
    format: str = ""
    pattern: str = ""
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    minimum: int | None = None
    list_type: str = ""
    list_map_keys: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()


def _str(**keywords: Any) -> Schema:
    return Schema("string", **keywords)


def _obj(properties: dict[str, Schema], *required: str, rules: tuple[Rule, ...] = ()) -> Schema:
    return Schema("object", properties=properties, required=required, rules=rules)


def _list(items: Schema, list_type: str, *keys: str, **keywords: Any) -> Schema:
    return Schema("array", items=items, list_type=list_type, list_map_keys=keys, **keywords)


STRING = _str()
BOOLEAN = Schema("boolean")
DATE_TIME = _str(format="date-time")

_CAPABILITIES = (
    "openshift-samples", "baremetal", "marketplace", "Console", "Insights", "Storage",
    "CSISnapshot", "NodeTuning", "MachineAPI", "Build", "DeploymentConfig", "ImageRegistry",
    "OperatorLifecycleManager", "CloudCredential", "Ingress", "CloudControllerManager",
    "OperatorLifecycleManagerV1",
)  # fmt: skip
_TECH_PREVIEW_CAPABILITIES = ("CompatibilityRequirements", "ClusterAPI")
_BASELINES = (
    "None", "v4.11", "v4.12", "v4.13", "v4.14", "v4.15", "v4.16", "v4.17", "v4.18", "vCurrent",
)  # fmt: skip
_ARCHITECTURE = _str(enum=("Multi", ""))
_CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
_CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)

ARCHITECTURE_EXCLUDES_IMAGE = Rule(
    'has(self.architecture) && has(self.image) ? (self.architecture == "" || self.image == "")'
    " : true",
    "cannot set both Architecture and Image",
    crd_rules.architecture_excludes_image,
)
ARCHITECTURE_NEEDS_VERSION = Rule(
    'has(self.architecture) && self.architecture != "" ? self.version != "" : true',
    "Version must be set if Architecture is set",
    crd_rules.architecture_needs_version,
)
MARKETPLACE_NEEDS_OLM = Rule(
    "has(self.spec.capabilities) && has(self.spec.capabilities.additionalEnabledCapabilities)"
    " && self.spec.capabilities.baselineCapabilitySet == 'None' && 'marketplace'"
    " in self.spec.capabilities.additionalEnabledCapabilities ? 'OperatorLifecycleManager'"
    " in self.spec.capabilities.additionalEnabledCapabilities || (has(self.status)"
    " && has(self.status.capabilities) && has(self.status.capabilities.enabledCapabilities)"
    " && 'OperatorLifecycleManager' in self.status.capabilities.enabledCapabilities) : true",
    "the `marketplace` capability requires the `OperatorLifecycleManager` capability, which is"
    " neither explicitly or implicitly enabled in this cluster, please enable the"
    " `OperatorLifecycleManager` capability",
    crd_rules.marketplace_needs_olm,
)
CLUSTER_API_NEEDS_COMPATIBILITY = Rule(
    "has(self.spec.capabilities) && has(self.spec.capabilities.additionalEnabledCapabilities)"
    " && 'ClusterAPI' in self.spec.capabilities.additionalEnabledCapabilities ?"
    " 'CompatibilityRequirements' in self.spec.capabilities.additionalEnabledCapabilities"
    " || (has(self.status) && has(self.status.capabilities)"
    " && has(self.status.capabilities.enabledCapabilities) && 'CompatibilityRequirements'"
    " in self.status.capabilities.enabledCapabilities) : true",
    "the `ClusterAPI` capability requires the `CompatibilityRequirements` capability, which is"
    " neither explicitly or implicitly enabled in this cluster, please enable the"
    " `CompatibilityRequirements` capability",
    crd_rules.cluster_api_needs_compatibility,
)
ONE_APPLIES_CONDITION = Rule(
    "self.exists_one(x, x.type == 'Applies')",
    "must contain a condition of type 'Applies'",
    crd_rules.one_applies_condition,
)
URL_IS_ABSOLUTE = Rule("isURL(self)", "url must be a valid absolute URL", crd_rules.url_is_absolute)

# metav1.Condition as the CRD inlines it for conditional updates and their risks.
_CONDITION = _obj(
    {
        "lastTransitionTime": DATE_TIME,
        "message": _str(max_length=32768),
        "observedGeneration": Schema("integer", format="int64", minimum=0),
        "reason": _str(max_length=1024, min_length=1, pattern=_CONDITION_REASON),
        "status": _str(enum=("True", "False", "Unknown")),
        "type": _str(max_length=316, pattern=_CONDITION_TYPE),
    },
    *("lastTransitionTime", "message", "reason", "status", "type"),
)
# ClusterOperatorStatusCondition, the looser type of status.conditions.
_OPERATOR_CONDITION = _obj(
    {"lastTransitionTime": DATE_TIME, "message": STRING, "reason": STRING, "status": STRING}
    | {"type": STRING},
    *("lastTransitionTime", "status", "type"),
)
_RELEASE = _obj(
    {
        "architecture": _ARCHITECTURE,
        "channels": _list(STRING, "set"),
        "image": STRING,
        "url": STRING,
        "version": STRING,
    },
    *("image", "version"),
)
_MATCHING_RULE = _obj(
    {
        "promql": _obj({"promql": STRING}, "promql"),
        "type": _str(enum=("Always", "PromQL")),
    },
    "type",
)
_HISTORY = _obj(
    {
        "acceptedRisks": STRING,
        "completionTime": _str(format="date-time", nullable=True),
        "image": STRING,
        "startedTime": DATE_TIME,
        "state": STRING,
        "verified": BOOLEAN,
        "version": STRING,
    },
    *("completionTime", "image", "startedTime", "state", "verified"),
)


def _risk(tech_preview: bool) -> Schema:
    conditions = _list(
        _CONDITION, "map", "type", min_items=1, max_items=8, rules=(ONE_APPLIES_CONDITION,)
    )
    return _obj(
        ({"conditions": conditions} if tech_preview else {})
        | {
            "matchingRules": _list(_MATCHING_RULE, "atomic", min_items=1),
            "message": _str(min_length=1),
            "name": _str(min_length=1),
            "url": _str(format="uri", min_length=1),
        },
        *("matchingRules", "message", "name", "url"),
    )


def _conditional_update(tech_preview: bool) -> Schema:
    risk_names = _list(_str(max_length=256), "set", min_items=1, max_items=500)
    return _obj(
        {"conditions": _list(_CONDITION, "map", "type"), "release": _RELEASE}
        | ({"riskNames": risk_names} if tech_preview else {})
        | {"risks": _list(_risk(tech_preview), "map", "name", min_items=1, max_items=200)},
        *("release", "risks"),
    )


def _desired_update(tech_preview: bool) -> Schema:
    accept_risks = _list(
        _obj({"name": _str(max_length=256, min_length=1)}, "name"),
        "map",
        "name",
        min_items=1,
        max_items=1000,
    )
    return _obj(
        ({"acceptRisks": accept_risks} if tech_preview else {})
        | {"architecture": _ARCHITECTURE, "force": BOOLEAN, "image": STRING, "version": STRING},
        rules=(ARCHITECTURE_EXCLUDES_IMAGE, ARCHITECTURE_NEEDS_VERSION),
    )


def _spec(tech_preview: bool, capability: Schema) -> Schema:
    override = _obj(
        {"group": STRING, "kind": STRING, "name": STRING, "namespace": STRING}
        | {"unmanaged": BOOLEAN},
        *("group", "kind", "name", "namespace", "unmanaged"),
    )
    signature_store = _obj(
        {"ca": _obj({"name": STRING}, "name"), "url": _str(rules=(URL_IS_ABSOLUTE,))}, "url"
    )
    capabilities = _obj(
        {
            "additionalEnabledCapabilities": _list(capability, "atomic"),
            "baselineCapabilitySet": _str(enum=_BASELINES),
        }
    )
    return _obj(
        {
            "capabilities": capabilities,
            "channel": STRING,
            "clusterID": STRING,
            "desiredUpdate": _desired_update(tech_preview),
            "overrides": _list(override, "map", "kind", "group", "namespace", "name"),
        }
        | ({"signatureStores": _list(signature_store, "map", "url", max_items=32)}
           if tech_preview else {})
        | {"upstream": STRING},
        "clusterID",
    )  # fmt: skip


def _status(tech_preview: bool, capability: Schema) -> Schema:
    update_risks = _list(_risk(True), "map", "name", min_items=1, max_items=500)
    return _obj(
        {
            "availableUpdates": _list(_RELEASE, "atomic", nullable=True),
            "capabilities": _obj(
                {
                    "enabledCapabilities": _list(capability, "atomic"),
                    "knownCapabilities": _list(capability, "atomic"),
                }
            ),
        }
        | ({"conditionalUpdateRisks": update_risks} if tech_preview else {})
        | {
            "conditionalUpdates": _list(_conditional_update(tech_preview), "atomic", max_items=500),
            "conditions": _list(_OPERATOR_CONDITION, "map", "type"),
            "desired": _RELEASE,
            "history": _list(_HISTORY, "atomic"),
            "observedGeneration": Schema("integer", format="int64"),
            "versionHash": STRING,
        },
        *("availableUpdates", "desired", "observedGeneration", "versionHash"),
    )


def _cluster_version(feature_set: FeatureSet) -> Schema:
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    names = _CAPABILITIES + (_TECH_PREVIEW_CAPABILITIES if tech_preview else ())
    capability = _str(enum=names)
    rules = (MARKETPLACE_NEEDS_OLM,) + ((CLUSTER_API_NEEDS_COMPATIBILITY,) if tech_preview else ())
    return _obj(
        {
            "apiVersion": STRING,
            "kind": STRING,
            "metadata": Schema("object"),
            "spec": _spec(tech_preview, capability),
            "status": _status(tech_preview, capability),
        },
        "spec",
        rules=rules,
    )


_SCHEMAS = {feature_set: _cluster_version(feature_set) for feature_set in FEATURE_SETS}


def cluster_version_schema(feature_set: FeatureSet) -> Schema:
    """The openAPIV3Schema of ClusterVersion v1 as the CRD of that feature set declares it."""
    if feature_set not in _SCHEMAS:
        raise ValueError(f"unknown feature set {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    return _SCHEMAS[feature_set]
