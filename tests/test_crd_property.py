"""Property: whatever the real ClusterVersion CRD rejects, cvsync reports as an error.

The oracle is built from the CRD itself at test time: its OpenAPI v3 schema checked with
jsonschema (Draft 7), plus what the API server does beyond JSON schema: the uniqueness of
`x-kubernetes-list-type: map` keys and `set` items, and every `x-kubernetes-validations`
CEL rule evaluated with cel-python. Unknown fields are not rejections (the server prunes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import celpy
import pytest
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType
from celpy.evaluation import CELEvalError
from conftest import corpus_path
from hypothesis import example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from ruamel.yaml import YAML

from agent.model.findings import Finding, Severity
from agent.spec.parse import parse_text
from agent.spec.validate import validate_document

pytestmark = pytest.mark.corpus

CRD = ("crd", "0000_00_cluster-version-operator_01_clusterversions-Default.crd.yaml")

Json = Any

# ---------------------------------------------------------------------------------------
# The oracle: what the API server would reject.
# ---------------------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
}


def _has_type(value: Json, schema: dict[str, Any]) -> bool:
    expected = schema.get("type")
    if expected is None:
        return True
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES[expected])


def _canonical(value: Json) -> str:
    return json.dumps(value, sort_keys=True)


def _cel_failure(program: Any, value: Json) -> str | None:
    """Why a rule fails on `value`, or None when it holds.

    An evaluation error (such as reading an absent field) rejects the object, as it does
    on a real Kubernetes API server.
    """
    try:
        result = program.evaluate({"self": json_to_cel(value)})
    except CELEvalError as exc:
        return f"evaluation error ({exc.args[0] if exc.args else exc})"
    if isinstance(result, CELEvalError):
        return f"evaluation error ({result.args[0] if result.args else result})"
    if isinstance(result, BoolType) and bool(result):
        return None
    return f"evaluated to {result!r}"


class CrdOracle:
    """The API server's verdict on a ClusterVersion, from the CRD's openAPIV3Schema."""

    def __init__(self, schema: dict[str, Any]) -> None:
        Draft7Validator.check_schema(schema)
        self.schema = schema
        self.validator = Draft7Validator(schema)
        environment = celpy.Environment()
        self.programs: dict[str, Any] = {
            rule: environment.program(environment.compile(rule)) for rule in _all_cel_rules(schema)
        }

    def __repr__(self) -> str:
        return f"CrdOracle({len(self.programs)} CEL rules)"

    def rejections(self, obj: Json) -> list[str]:
        """Why the API server rejects `obj`; empty when it accepts it."""
        reasons = [
            f"schema: {'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in self.validator.iter_errors(obj)
        ]
        reasons.extend(self._server_rules(self.schema, obj, "self"))
        return reasons

    def _server_rules(self, schema: dict[str, Any], value: Json, path: str) -> Iterator[str]:
        if not _has_type(value, schema):
            return  # a schema type error already rejects the object
        for validation in schema.get("x-kubernetes-validations", []):
            failure = _cel_failure(self.programs[validation["rule"]], value)
            if failure is not None:
                message = validation.get("message", validation["rule"])
                yield f"CEL rule at {path} {failure}: {message}"
        if isinstance(value, dict):
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, child in value.items():
                if key in properties:
                    yield from self._server_rules(properties[key], child, f"{path}.{key}")
                elif isinstance(extra, dict):
                    yield from self._server_rules(extra, child, f"{path}[{key!r}]")
        elif isinstance(value, list):
            yield from _list_type_rejections(schema, value, path)
            items = schema.get("items")
            if isinstance(items, dict):
                for index, item in enumerate(value):
                    yield from self._server_rules(items, item, f"{path}[{index}]")


def _list_type_rejections(schema: dict[str, Any], value: list[Json], path: str) -> Iterator[str]:
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = schema["x-kubernetes-list-map-keys"]
        seen: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                continue
            key = _canonical([item.get(name) for name in keys])
            if key in seen:
                yield f"{path}[{index}]: duplicate map-list entry for keys {keys} = {key}"
            seen.add(key)
    elif list_type == "set":
        items = [_canonical(item) for item in value]
        if len(set(items)) != len(items):
            yield f"{path}: duplicate items in a set list"


def _all_cel_rules(schema: Json) -> Iterator[str]:
    if isinstance(schema, dict):
        for validation in schema.get("x-kubernetes-validations", []):
            yield validation["rule"]
        for key, child in schema.items():
            if key != "x-kubernetes-validations":
                yield from _all_cel_rules(child)
    elif isinstance(schema, list):
        for child in schema:
            yield from _all_cel_rules(child)


@pytest.fixture(scope="module")
def oracle() -> CrdOracle:
    crd = YAML(typ="safe").load(corpus_path(*CRD).read_text(encoding="utf-8"))
    return CrdOracle(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


def cvsync_findings(obj: Json) -> list[Finding]:
    """What cvsync reports for `obj` written as a JSON file."""
    parsed = parse_text(json.dumps(obj, indent=2), "generated.json")
    found = list(parsed.findings)
    for doc in parsed.documents:
        found.extend(validate_document(doc))
    return found


# ---------------------------------------------------------------------------------------
# Generated ClusterVersions, biased toward the fields the CRD has rules for.
# ---------------------------------------------------------------------------------------

# The CRD's enums, restated so that the generator does not depend on the oracle's input.
BASELINES = (
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
ARCHITECTURES = ("Multi", "", "x86_64", "multi")

wrong_types: st.SearchStrategy[Json] = st.one_of(
    st.integers(-3, 3),
    st.booleans(),
    st.lists(st.sampled_from(["a", "Multi"]), max_size=2),
    st.just({"a": "b"}),
)
junk_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)


def mostly(
    usual: st.SearchStrategy[Json], rare: st.SearchStrategy[Json], rare_in: int = 8
) -> st.SearchStrategy[Json]:
    """`usual` most of the time, `rare` about once in `rare_in` draws."""
    return st.sampled_from(range(rare_in)).flatmap(lambda n: rare if n == rare_in - 1 else usual)


cluster_ids = mostly(
    st.uuids(version=4).map(str),
    st.one_of(st.sampled_from(["foo", "", "0000-not-a-uuid"]), wrong_types),
)
semvers = st.builds(
    "{}.{}.{}{}".format,
    st.integers(4, 4),
    st.integers(0, 19),
    st.integers(0, 30),
    st.sampled_from(["", "", "-ec.2", "-rc.1", "-okd-scos.16"]),
)
versions = st.one_of(
    st.just(""),
    semvers,
    st.sampled_from(["4.16", "v4.16.3", "latest", "4.16.3 ", "04.1.1"]),
    wrong_types,
)
digests = st.text("0123456789abcdef", min_size=64, max_size=64)
images = st.one_of(
    st.just(""),
    digests.map(lambda d: f"quay.io/openshift-release-dev/ocp-release@sha256:{d}"),
    st.sampled_from(
        [
            "quay.io/openshift-release-dev/ocp-release:4.16.3-x86_64",
            "registry.example.com:5000/ocp/release:4.15.0-multi",
            "bar",
        ]
    ),
    st.sampled_from(["not an image", "Quay.io/UPPER/Case", "quay.io/x@sha256:zz", "::"]),
    wrong_types,
)
architectures = st.one_of(st.sampled_from(ARCHITECTURES), wrong_types)
forces = mostly(st.booleans(), st.one_of(st.just("true"), st.integers(0, 1)))

desired_updates = st.fixed_dictionaries(
    {},
    optional={"image": images, "version": versions, "architecture": architectures, "force": forces},
)

capability_names = mostly(
    st.sampled_from(CAPABILITIES),
    st.one_of(
        st.sampled_from(["Marketplace", "olm", "", "OperatorLifecycleManagerV2"]),
        st.integers(0, 2),
    ),
    rare_in=6,
)
baselines = st.one_of(
    st.sampled_from(BASELINES),
    st.just("None"),
    st.sampled_from(["none", "v4.10", "vcurrent", ""]),
    wrong_types,
)


def chance(draw: st.DrawFn, percent: int) -> bool:
    """True `percent` times in a hundred; shrinks toward False."""
    return draw(st.sampled_from(range(100))) >= 100 - percent


@st.composite
def capability_lists(draw: st.DrawFn) -> Json:
    names: list[Json] = draw(st.lists(capability_names, max_size=3))
    if chance(draw, 60):
        names.append("marketplace")
    if chance(draw, 50):
        names.append("OperatorLifecycleManager")
    return draw(st.permutations(names))


@st.composite
def capabilities(draw: st.DrawFn) -> Json:
    caps: dict[str, Json] = {}
    if chance(draw, 50):
        caps["baselineCapabilitySet"] = draw(baselines)
    if chance(draw, 75):
        caps["additionalEnabledCapabilities"] = draw(mostly(capability_lists(), wrong_types))
    return caps


OVERRIDE_FIELDS: dict[str, st.SearchStrategy[Json]] = {
    "kind": st.sampled_from(["Deployment", "ConfigMap"]),
    "group": st.sampled_from(["apps", ""]),
    "namespace": st.sampled_from(["openshift-monitoring", ""]),
    "name": st.sampled_from(["cluster-monitoring-operator", "a"]),
    "unmanaged": st.booleans(),
}


@st.composite
def overrides(draw: st.DrawFn) -> Json:
    entry = {key: draw(values) for key, values in OVERRIDE_FIELDS.items()}
    damage = draw(st.sampled_from(["none", "none", "none", "missing", "wrong-type"]))
    if damage == "missing":
        del entry[draw(st.sampled_from(sorted(entry)))]
    elif damage == "wrong-type":
        entry[draw(st.sampled_from(sorted(entry)))] = draw(wrong_types)
    return entry


override_lists = mostly(
    st.lists(overrides(), max_size=3),
    st.one_of(wrong_types, st.lists(st.sampled_from(["Deployment", 1]), max_size=2)),
)
channels = st.one_of(
    st.sampled_from(["stable-4.16", "fast-4.15", "eus-4.14", "", "stable"]),
    junk_text,
    wrong_types,
)
upstreams = st.one_of(
    st.sampled_from(
        [
            "https://api.openshift.com/api/upgrades_info/v1/graph",
            "http://updates.example.com/graph",
            "not a url",
            "",
        ]
    ),
    wrong_types,
)

SPEC_FIELDS: dict[str, tuple[int, st.SearchStrategy[Json]]] = {
    "clusterID": (95, cluster_ids),
    "desiredUpdate": (50, mostly(desired_updates, wrong_types, rare_in=12)),
    "capabilities": (60, mostly(capabilities(), wrong_types, rare_in=12)),
    "overrides": (35, override_lists),
    "channel": (40, channels),
    "upstream": (30, upstreams),
}


@st.composite
def cluster_versions(draw: st.DrawFn) -> Json:
    """A ClusterVersion whose spec fields are each present with their own probability."""
    spec = {
        key: draw(values) for key, (percent, values) in SPEC_FIELDS.items() if chance(draw, percent)
    }
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": spec,
    }


def _object(spec: dict[str, Json]) -> dict[str, Json]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": "0b6e4c52-1f1c-4a3e-9d1b-7a4f2a9c8e11", **spec},
    }


# ---------------------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------------------

ORACLE_SANITY: list[tuple[dict[str, Json], bool]] = [
    ({}, False),
    ({"desiredUpdate": {"architecture": "Multi", "version": "4.16.3"}}, False),
    ({"desiredUpdate": {"architecture": "Multi"}}, True),
    ({"desiredUpdate": {"architecture": "Multi", "version": ""}}, True),
    ({"desiredUpdate": {"architecture": "Multi", "version": "4.16.3", "image": "x"}}, True),
    ({"desiredUpdate": {"architecture": "multi", "version": "4.16.3"}}, True),
    ({"capabilities": {"baselineCapabilitySet": "None"}}, False),
    (
        {
            "capabilities": {
                "baselineCapabilitySet": "None",
                "additionalEnabledCapabilities": ["marketplace"],
            }
        },
        True,
    ),
    ({"capabilities": {"additionalEnabledCapabilities": ["baremetal"]}}, False),
    ({"capabilities": {"additionalEnabledCapabilities": ["marketplace"]}}, True),
    (
        {
            "capabilities": {
                "baselineCapabilitySet": "None",
                "additionalEnabledCapabilities": ["marketplace", "OperatorLifecycleManager"],
            }
        },
        False,
    ),
    (
        {
            "overrides": [
                {"kind": "K", "group": "", "namespace": "n", "name": "a", "unmanaged": True}
            ]
            * 2
        },
        True,
    ),
    ({"overrides": [{"kind": "K", "group": "", "namespace": "n", "name": "a"}]}, True),
    ({"channel": 4}, True),
    ({"unknownField": "pruned"}, False),
]


@pytest.mark.parametrize(("spec", "rejected"), ORACLE_SANITY)
def test_the_oracle_gives_the_api_servers_verdict_on_known_objects(
    oracle: CrdOracle, spec: dict[str, Json], rejected: bool
) -> None:
    reasons = oracle.rejections(_object(spec))
    assert bool(reasons) is rejected, reasons


def _check(oracle: CrdOracle, obj: Json) -> None:
    reasons = oracle.rejections(obj)
    if not reasons:
        return
    found = cvsync_findings(obj)
    assert any(f.severity is Severity.ERROR for f in found), (
        "the CRD rejects this object but cvsync reports no error:\n"
        f"{json.dumps(obj, indent=2)}\noracle: {reasons}\n"
        f"cvsync: {[(f.rule, f.severity.value, f.message) for f in found]}"
    )


@settings(max_examples=300, deadline=None)
@given(obj=cluster_versions())
@example(
    # The minimal object this property found: marketplace and OperatorLifecycleManager
    # without a baselineCapabilitySet. The CRD's root CEL rule reads baselineCapabilitySet
    # (`true && <no such key> && true` is an error in CEL), so the API server rejects the
    # object; cvsync reports capability-requires only when OperatorLifecycleManager is absent.
    obj=_object(
        {
            "capabilities": {
                "additionalEnabledCapabilities": ["marketplace", "OperatorLifecycleManager"]
            }
        }
    )
)
def test_whenever_the_crd_rejects_an_object_cvsync_reports_an_error(
    oracle: CrdOracle, obj: Json
) -> None:
    _check(oracle, obj)
