"""The sandbox's admission layer against openshift/api's CRD suites, real ClusterVersions and
the API server's own wording for refusals."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, corpus_path
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from agent.sandbox.apiserver.admission import (
    Cause,
    field_validation,
    invalid_status,
    prune,
    validate,
    warning_header,
)
from agent.sandbox.apiserver.crd_rules import is_date_time, is_request_uri
from agent.sandbox.apiserver.crd_schema import (
    FEATURE_SETS,
    FeatureSet,
    Schema,
    cluster_version_schema,
)

KIND_GROUP = "ClusterVersion.config.openshift.io"
# Recorded from kube-apiserver v1.36.2 (realserver step apply-enum-bad-arch): the path-less
# cause prints its missing value as a bare null.
BLOCKED = Cause(
    "FieldValueInvalid",
    "Invalid value: null: some validation rules were not checked because the object was "
    "invalid; correct the existing errors to complete validation",
    "<nil>",
)
MARKETPLACE = (
    "the `marketplace` capability requires the `OperatorLifecycleManager` capability, which is "
    "neither explicitly or implicitly enabled in this cluster, please enable the "
    "`OperatorLifecycleManager` capability"
)
CRD_FILE = "0000_00_cluster-version-operator_01_clusterversions-{}.crd.yaml"


class _TextTimestamps(SafeConstructor):
    """sigs.k8s.io/yaml leaves timestamps as the text written; so do we."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def load_yaml(text: str) -> Any:
    yaml = YAML(typ="safe")
    yaml.Constructor = _TextTimestamps
    return yaml.load(text)


def minimal(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": "foo", **spec},
    }


def with_status(body: dict[str, Any], **status: Any) -> dict[str, Any]:
    """body with the smallest valid status plus the given fields."""
    required: dict[str, Any] = {"availableUpdates": None, "desired": {"image": "i", "version": "v"}}
    required |= {"observedGeneration": 1, "versionHash": "h"}
    return {**body, "status": required | status}


def message_of(causes: list[Cause]) -> str:
    return str(invalid_status(KIND_GROUP, "version", causes)["message"])


# --- openshift/api's suites, run the way its envtest harness runs them ----------------------


@dataclass(frozen=True)
class SuiteCase:
    file: str
    phase: str
    case: dict[str, Any]
    feature_set: FeatureSet


def _suite_cases() -> list[Any]:
    folder = CORPUS / "crd" / "tests"
    if not folder.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    params = []
    for path in sorted(folder.glob("*.yaml")):
        suite = load_yaml(path.read_text(encoding="utf-8"))
        feature_set: FeatureSet = "TechPreviewNoUpgrade" if suite.get("featureGates") else "Default"
        for phase in ("onCreate", "onUpdate"):
            for case in suite["tests"].get(phase, []):
                item = SuiteCase(path.stem, phase, case, feature_set)
                params.append(pytest.param(item, id=f"{path.stem}/{phase}/{case['name']}"))
    return params


def _without_meta(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "metadata"}


class Cluster:
    """One stored ClusterVersion behind the main and the status endpoints."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        self.schema = cluster_version_schema(feature_set)
        self.stored: dict[str, Any] = {}

    def create(self, body: dict[str, Any]) -> list[Cause]:
        body = {key: value for key, value in body.items() if key != "status"}
        causes = validate(body, None, self.feature_set)
        if not causes:
            self.stored = prune(body, self.schema)[0]
        return causes

    def update(self, body: dict[str, Any]) -> list[Cause]:
        body = {key: value for key, value in body.items() if key != "status"}
        if "status" in self.stored:
            body["status"] = copy.deepcopy(self.stored["status"])
        return self._store(body, validate(body, self.stored, self.feature_set))

    def update_status(self, status: Any) -> list[Cause]:
        body = {**copy.deepcopy(self.stored), "status": status}
        causes = validate(body, self.stored, self.feature_set, subresource="status")
        return self._store(body, causes)

    def _store(self, body: dict[str, Any], causes: list[Cause]) -> list[Cause]:
        if not causes:
            self.stored = prune(body, self.schema)[0]
        return causes


def _expect(causes: list[Cause], error: str | None) -> bool:
    """True when the step was refused; asserts the refusal is the one expected, if any."""
    if error is None:
        assert causes == [], message_of(causes)
        return False
    assert causes, f"accepted, but the suite expects {error!r}"
    assert error in message_of(causes)
    return True


def _run_on_create(cluster: Cluster, case: dict[str, Any]) -> None:
    refused = _expect(cluster.create(load_yaml(case["initial"])), case.get("expectedError"))
    if not refused:
        expected = load_yaml(case.get("expected") or case["initial"])
        assert _without_meta(cluster.stored) == _without_meta(expected)


def _run_on_update(cluster: Cluster, case: dict[str, Any]) -> None:
    initial, updated = load_yaml(case["initial"]), load_yaml(case["updated"])
    _expect(cluster.create(initial), None)
    if "status" in initial:
        _expect(cluster.update_status(initial["status"]), None)
    if _expect(cluster.update(updated), case.get("expectedError")):
        return
    if "status" in updated and _expect(
        cluster.update_status(updated["status"]), case.get("expectedStatusError")
    ):
        return
    expected = load_yaml(case.get("expected") or case["updated"])
    assert _without_meta(cluster.stored) == _without_meta(expected)


@pytest.mark.corpus
@pytest.mark.parametrize("suite_case", _suite_cases())
def test_every_openshift_api_suite_case_gets_the_verdict_and_object_it_expects(
    suite_case: SuiteCase | None,
) -> None:
    if suite_case is None:
        corpus_path("crd", "tests")
        return
    cluster = Cluster(suite_case.feature_set)
    if suite_case.phase == "onCreate":
        _run_on_create(cluster, suite_case.case)
    else:
        _run_on_update(cluster, suite_case.case)


# --- Real ClusterVersions ------------------------------------------------------------------


def _corpus_objects() -> list[Any]:
    folder = CORPUS / "clusterversions"
    if not folder.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(path, id=path.stem) for path in sorted(folder.glob("*.yaml"))]


def _cluster_version(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(path.read_text(encoding="utf-8"))
    if loaded.get("kind") == "List":
        (loaded,) = loaded["items"]
    return loaded


@pytest.mark.corpus
@pytest.mark.parametrize("path", _corpus_objects())
def test_every_real_cluster_version_is_accepted_whole_and_through_the_status_endpoint(
    path: Path | None,
) -> None:
    if path is None:
        corpus_path("clusterversions")
        return
    obj = _cluster_version(path)
    assert validate(obj, None, "Default") == []
    assert validate(obj, obj, "Default") == []
    assert validate(obj, obj, "Default", subresource="status") == []
    pruned, _ = prune(obj, cluster_version_schema("Default"))
    assert pruned["spec"]["clusterID"] == obj["spec"]["clusterID"]


@pytest.mark.corpus
def test_the_only_fields_real_objects_lose_are_the_ones_the_schema_never_had() -> None:
    lost = {
        path.stem: prune(_cluster_version(path), cluster_version_schema("Default"))[1]
        for path in sorted(corpus_path("clusterversions").glob("*.yaml"))
    }
    assert {name for name, paths in lost.items() if paths} == {
        "4.4.0-nightly-idle-versionnotfound-anonymized-upstream",
        "4.4.16-idle-nochannel-anonymized-upstream",
    }
    assert all(paths == ["status.desired.force"] for paths in lost.values() if paths)


# --- Our schema is the CRD's schema ----------------------------------------------------------

_CRD_KEYS = {
    "type": "type",
    "required": "required",
    "enum": "enum",
    "nullable": "nullable",
    "format": "format",
    "pattern": "pattern",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "minimum": "minimum",
    "x-kubernetes-list-type": "list_type",
    "x-kubernetes-list-map-keys": "list_map_keys",
}


def _crd_shape(node: dict[str, Any]) -> dict[str, Any]:
    known = {*_CRD_KEYS, "description", "properties", "items", "x-kubernetes-validations"}
    assert set(node) <= known, f"a keyword our schema cannot hold: {set(node) - known}"
    shape: dict[str, Any] = {key: node[key] for key in _CRD_KEYS if key in node}
    shape["properties"] = {
        name: _crd_shape(sub) for name, sub in node.get("properties", {}).items()
    }
    shape["items"] = _crd_shape(node["items"]) if "items" in node else None
    rules = node.get("x-kubernetes-validations", [])
    shape["rules"] = [(rule["rule"], rule["message"]) for rule in rules]
    return shape


def _our_shape(schema: Schema) -> dict[str, Any]:
    shape: dict[str, Any] = {}
    for key, attribute in _CRD_KEYS.items():
        value = getattr(schema, attribute)
        if value is not False and value is not None and value not in ("", ()):
            shape[key] = list(value) if isinstance(value, tuple) else value
    shape["properties"] = {name: _our_shape(sub) for name, sub in schema.properties.items()}
    shape["items"] = _our_shape(schema.items) if schema.items is not None else None
    shape["rules"] = [(rule.rule, rule.message) for rule in schema.rules]
    return shape


@pytest.mark.corpus
@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_our_schema_holds_every_keyword_and_rule_of_the_crd(feature_set: FeatureSet) -> None:
    crd = load_yaml(corpus_path("crd", CRD_FILE.format(feature_set)).read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    assert _our_shape(cluster_version_schema(feature_set)) == _crd_shape(
        version["schema"]["openAPIV3Schema"]
    )


def test_an_unknown_feature_set_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown feature set"):
        cluster_version_schema("CustomNoUpgrade")  # type: ignore[arg-type]


# --- Messages in the API server's words -----------------------------------------------------


def test_a_wrong_type_names_both_types_and_skips_the_rules() -> None:
    causes = validate(minimal(clusterID=5), None, "Default")
    assert causes == [
        Cause(
            "FieldValueTypeInvalid",
            'Invalid value: "integer": spec.clusterID in body must be of type string: "integer"',
            "spec.clusterID",
        ),
        BLOCKED,
    ]
    assert message_of(causes) == (
        'ClusterVersion.config.openshift.io "version" is invalid: [spec.clusterID: Invalid '
        'value: "integer": spec.clusterID in body must be of type string: "integer", <nil>: '
        "Invalid value: null: some validation rules were not checked because the object was "
        "invalid; correct the existing errors to complete validation]"
    )


def test_a_value_outside_an_enum_lists_the_supported_values_quoted() -> None:
    causes = validate(
        minimal(desiredUpdate={"architecture": "x", "version": "4.1"}), None, "Default"
    )
    assert causes[0] == Cause(
        "FieldValueNotSupported",
        'Unsupported value: "x": supported values: "Multi", ""',
        "spec.desiredUpdate.architecture",
    )
    assert causes[1:] == [BLOCKED]


def test_a_number_in_an_enum_fails_both_the_type_and_the_enum() -> None:
    body = minimal(capabilities={"baselineCapabilitySet": 5})
    reasons = [cause.reason for cause in validate(body, None, "Default")]
    assert reasons == ["FieldValueTypeInvalid", "FieldValueNotSupported", "FieldValueInvalid"]
    assert validate(body, None, "Default")[1].message.startswith("Unsupported value: 5: supported")


def test_missing_required_fields_say_required_value() -> None:
    no_cluster_id = minimal()
    del no_cluster_id["spec"]["clusterID"]
    assert validate(no_cluster_id, None, "Default") == [
        Cause("FieldValueRequired", "Required value", "spec.clusterID"),
        BLOCKED,
    ]
    no_spec = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion"}
    assert validate(no_spec, None, "Default")[0].error() == "spec: Required value"


def test_one_cause_is_not_bracketed_and_the_status_is_a_full_422() -> None:
    causes = [Cause("FieldValueRequired", "Required value", "spec.clusterID")]
    assert invalid_status(KIND_GROUP, "version", causes) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ClusterVersion.config.openshift.io "version" is invalid: '
        "spec.clusterID: Required value",
        "reason": "Invalid",
        "details": {
            "name": "version",
            "group": "config.openshift.io",
            "kind": "ClusterVersion",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value",
                    "field": "spec.clusterID",
                }
            ],
        },
        "code": 422,
    }


def test_metadata_causes_come_first_and_stop_the_rules_like_schema_errors() -> None:
    body = minimal(capabilities={"additionalEnabledCapabilities": ["marketplace"]})
    name = Cause(
        "FieldValueRequired", "Required value: name or generateName is required", "metadata.name"
    )
    assert validate(body, None, "Default", meta_causes=[name]) == [name, BLOCKED]


def test_an_empty_cause_list_gives_the_bare_invalid_message() -> None:
    status = invalid_status(KIND_GROUP, "version", [])
    assert status["message"] == 'ClusterVersion.config.openshift.io "version" is invalid'
    assert status["details"] == {
        "name": "version",
        "group": "config.openshift.io",
        "kind": "ClusterVersion",
    }


def test_repeated_override_keys_are_duplicates_printed_as_a_go_map() -> None:
    override = {"group": "g", "kind": "k", "name": "n", "namespace": "", "unmanaged": True}
    causes = validate(
        minimal(overrides=[override, {**override, "unmanaged": False}]), None, "Default"
    )
    assert causes == [
        Cause(
            "FieldValueDuplicate",
            'Duplicate value: map[string]interface {}{"group":"g", "kind":"k", "name":"n", '
            '"namespace":""}',
            "spec.overrides[1]",
        )
    ]


def test_duplicates_already_stored_are_not_reported_again_on_update() -> None:
    override = {"group": "g", "kind": "k", "name": "n", "namespace": "", "unmanaged": True}
    old = minimal(overrides=[override, override])
    assert validate(minimal(overrides=[override, override], channel="x"), old, "Default") == []


def test_an_absent_baseline_makes_the_marketplace_rule_fail_to_evaluate() -> None:
    body = minimal(capabilities={"additionalEnabledCapabilities": ["marketplace"]})
    assert validate(body, None, "Default") == [
        Cause(
            "FieldValueInvalid",
            'Invalid value: "object": no such key: baselineCapabilitySet evaluating rule: '
            + MARKETPLACE,
            "<nil>",
        )
    ]
    without_marketplace = minimal(capabilities={"additionalEnabledCapabilities": ["baremetal"]})
    assert validate(without_marketplace, None, "Default") == []


def test_a_missing_version_is_an_evaluation_error_that_still_carries_the_message() -> None:
    (cause,) = validate(minimal(desiredUpdate={"architecture": "Multi"}), None, "Default")
    assert cause.field == "spec.desiredUpdate"
    assert cause.message == (
        'Invalid value: "object": no such key: version evaluating rule: '
        "Version must be set if Architecture is set"
    )


def test_cluster_api_needs_compatibility_requirements_in_spec_or_status() -> None:
    tp: FeatureSet = "TechPreviewNoUpgrade"
    alone = minimal(capabilities={"additionalEnabledCapabilities": ["ClusterAPI"]})
    (cause,) = validate(alone, None, tp)
    assert cause.field == "<nil>"
    assert cause.message.startswith(
        'Invalid value: "object": the `ClusterAPI` capability requires the '
        "`CompatibilityRequirements` capability, which is neither explicitly or implicitly"
    )
    implied = with_status(
        alone, capabilities={"enabledCapabilities": ["CompatibilityRequirements"]}
    )
    assert validate(implied, alone, tp, subresource="status") == []
    assert validate(with_status(alone), alone, tp, subresource="status") == [cause]
    assert validate(alone, None, "Default")[0].reason == "FieldValueNotSupported"


def test_two_applies_conditions_break_both_uniqueness_and_exists_one() -> None:
    applies = {"type": "Applies", "status": "True", "reason": "R", "message": "m"}
    applies["lastTransitionTime"] = "2021-09-13T17:03:05Z"
    risk = {"name": "R", "message": "m", "url": "https://x", "matchingRules": [{"type": "Always"}]}
    risk["conditions"] = [applies, applies]
    body = with_status(minimal(), conditionalUpdateRisks=[risk])
    causes = validate(body, minimal(), "TechPreviewNoUpgrade", subresource="status")
    assert [cause.error() for cause in causes] == [
        "status.conditionalUpdateRisks[0].conditions[1]: Duplicate value: "
        'map[string]interface {}{"type":"Applies"}',
        'status.conditionalUpdateRisks[0].conditions: Invalid value: "array": must contain a '
        "condition of type 'Applies'",
    ]


def test_nulls_the_schema_does_not_allow_vanish_and_allowed_ones_stay() -> None:
    body = with_status(minimal(channel=None), conditions=None)
    pruned, unknown = prune(body, cluster_version_schema("Default"))
    assert "channel" not in pruned["spec"]
    assert "conditions" not in pruned["status"]
    assert pruned["status"]["availableUpdates"] is None
    assert unknown == []
    assert validate(body, None, "Default") == []
    assert (
        validate({**minimal(), "spec": None}, None, "Default")[0].error() == "spec: Required value"
    )


def test_a_null_inside_a_list_is_a_type_error() -> None:
    causes = validate(
        minimal(capabilities={"additionalEnabledCapabilities": [None]}), None, "Default"
    )
    field = "spec.capabilities.additionalEnabledCapabilities[0]"
    assert causes[0] == Cause(
        "FieldValueTypeInvalid",
        f'Invalid value: "null": {field} in body must be of type string: "null"',
        field,
    )
    # A null bad value prints bare, as the blocked-rules cause of apply-enum-bad-arch shows.
    assert causes[1].message.startswith("Unsupported value: null: supported values: ")


def test_limits_use_too_long_too_many_and_at_least_wording() -> None:
    risks = [{"name": f"r{i}"} for i in range(1001)]
    long_name = [{"name": "a" * 257}]
    tp: FeatureSet = "TechPreviewNoUpgrade"
    too_long = validate(minimal(desiredUpdate={"acceptRisks": long_name}), None, tp)
    assert too_long[0] == Cause(
        "FieldValueTooLong",
        "Too long: may not be more than 256 bytes",
        "spec.desiredUpdate.acceptRisks[0].name",
    )
    too_many = validate(minimal(desiredUpdate={"acceptRisks": risks}), None, tp)
    assert too_many[0].message == "Too many: 1001: must have at most 1000 items"
    empty = validate(minimal(desiredUpdate={"acceptRisks": []}), None, tp)
    assert empty == [
        Cause(
            "FieldValueInvalid",
            "Invalid value: 0: spec.desiredUpdate.acceptRisks in body should have at least 1 items",
            "spec.desiredUpdate.acceptRisks",
        )
    ]


def test_the_status_endpoint_words_paths_relative_to_status() -> None:
    body = minimal()
    body["status"] = {"desired": {"image": "i", "version": "v"}, "observedGeneration": "one"}
    causes = validate(body, minimal(), "Default", subresource="status")
    assert [cause.error() for cause in causes] == [
        'status.observedGeneration: Invalid value: "string": observedGeneration in body must be '
        'of type integer: "string"',
        "status.availableUpdates: Required value",
        "status.versionHash: Required value",
        BLOCKED.error(),
    ]


def test_formats_follow_kube_openapi() -> None:
    assert is_date_time("2021-09-13T17:03:05Z")
    assert is_date_time("2021-09-13t17:03:05.5+02:00")
    assert not is_date_time("2021-02-30T17:03:05Z")
    assert not is_date_time("2021-09-13 17:03:05Z")
    assert is_request_uri("https://osus.ocp.com")
    assert is_request_uri("/just/a/path")
    assert not is_request_uri("osus1.ocp.com")
    assert not is_request_uri("https://a b")
    history = {"completionTime": None, "image": "i", "startedTime": "yesterday", "state": "s"}
    body = with_status(minimal(), history=[history | {"verified": True}])
    (cause, blocked) = validate(body, None, "Default")
    assert cause.message == (
        'Invalid value: "yesterday": status.history[0].startedTime in body must be of type '
        'date-time: "yesterday"'
    )
    assert blocked == BLOCKED


def test_signature_stores_exist_only_in_tech_preview() -> None:
    body = minimal(signatureStores=[{"url": "osus1.ocp.com"}])
    assert prune(body, cluster_version_schema("Default"))[1] == ["spec.signatureStores"]
    assert validate(body, None, "Default") == []
    assert validate(body, None, "TechPreviewNoUpgrade") == [
        Cause(
            "FieldValueInvalid",
            'Invalid value: "string": url must be a valid absolute URL',
            "spec.signatureStores[0].url",
        )
    ]


# --- Unknown and duplicate fields ----------------------------------------------------------


def _with_unknown_fields() -> dict[str, Any]:
    body = minimal(foo=1, overrides=[{"group": "g", "kind": "k", "name": "n", "namespace": ""}])
    body["spec"]["overrides"][0] |= {"unmanaged": True, "bar": "x"}
    body["metadata"]["color"] = "blue"
    body["extra"] = True
    return body


def test_prune_drops_unknown_fields_and_lists_them_metadata_first_then_sorted() -> None:
    body = _with_unknown_fields()
    pruned, unknown = prune(body, cluster_version_schema("Default"))
    assert unknown == ["metadata.color", "extra", "spec.foo", "spec.overrides[0].bar"]
    assert pruned["metadata"] == {"name": "version"}
    assert "extra" not in pruned
    assert pruned["spec"]["overrides"][0] == {
        "group": "g",
        "kind": "k",
        "name": "n",
        "namespace": "",
        "unmanaged": True,
    }
    assert body["metadata"]["color"] == "blue", "the input is left as it was"


def test_strict_field_validation_is_a_400_naming_each_field() -> None:
    _, unknown = prune(_with_unknown_fields(), cluster_version_schema("Default"))
    outcome = field_validation("Strict", unknown, ["spec.channel"])
    assert outcome.warnings == ()
    assert outcome.status == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'ClusterVersion in version "v1" cannot be handled as a ClusterVersion: '
        'strict decoding error: duplicate field "spec.channel", unknown field "metadata.color", '
        'unknown field "extra", unknown field "spec.foo", unknown field "spec.overrides[0].bar"',
        "reason": "BadRequest",
        "code": 400,
    }


def test_warn_field_validation_is_one_warning_header_per_field() -> None:
    outcome = field_validation("Warn", ["spec.foo"])
    assert outcome.status is None
    assert outcome.warnings == ('unknown field "spec.foo"',)
    assert outcome.headers == ('299 - "unknown field \\"spec.foo\\""',)
    assert field_validation("", ["spec.foo"]).warnings == outcome.warnings


def test_ignore_field_validation_and_clean_bodies_say_nothing() -> None:
    assert field_validation("Ignore", ["spec.foo"], ["spec.channel"]) == field_validation(
        "Strict", [], []
    )
    assert field_validation("Ignore", ["spec.foo"]).status is None
    assert warning_header('a "b" \\ c') == '299 - "a \\"b\\" \\\\ c"'
