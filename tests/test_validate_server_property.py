"""Property: on real ClusterVersions damaged as hostile or unlucky input damages them, cvsync's
verdict agrees with what the API server and kubectl would do with the same file.

Each example takes a spec captured from a real cluster (../shared/corpus), mutates it (null
list items, unquoted values YAML 1.1 and 1.2 read differently, hidden characters, wrong types,
missing fields), and writes it as a YAML file. The oracle is the sandbox API server's
validation (the CRD's schema, list types and CEL rules, written independently of cvsync's
rules) of the object kubectl would send for that file, read as go-yaml v2 reads it. Then:
- whenever the server would reject that object, `cvsync validate` reports an error;
- whenever kubectl and cvsync read the file differently, `cvsync validate` reports an error;
- where cvsync has no rule stricter than the CRD, a file the server accepts has no error;
- a hidden character in a clusterID, channel, upstream, version or image is an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from conftest import CORPUS, CORPUS_CLUSTER_VERSIONS
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from agent.model.findings import Finding, Severity
from agent.report.check import check_files
from agent.sandbox.apiserver.admission import validate
from agent.spec.parse import parse_text

pytestmark = pytest.mark.corpus

Json = Any
Path = tuple[str, ...]


def _corpus_specs() -> list[dict[str, Json]]:
    specs = []
    for path in CORPUS_CLUSTER_VERSIONS:
        loaded = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        obj = loaded["items"][0] if loaded.get("kind") == "List" else loaded
        specs.append(obj["spec"])
    return specs


SPECS = _corpus_specs()
if not SPECS:
    pytest.skip(f"the OpenShift corpus is not present at {CORPUS}", allow_module_level=True)


class Plain(NamedTuple):
    """A scalar written without quotes, and what each reader makes of it."""

    text: str
    kubectl: Json  # go-yaml v2's resolve.go (kubectl and oc, through sigs.k8s.io/yaml)
    cvsync: Json  # the YAML 1.2 core schema


PLAIN = [
    Plain("on", True, "on"),
    Plain("off", False, "off"),
    Plain("yes", True, "yes"),
    Plain("no", False, "no"),
    Plain("y", True, "y"),
    Plain("n", False, "n"),
    Plain("Y", True, "Y"),
    Plain("NO", False, "NO"),
    Plain("On", True, "On"),
    Plain("1_000", 1000, "1_000"),
    Plain("0b11", 3, "0b11"),
    Plain("0X1F", 31, "0X1F"),
    Plain("0777", 511, 777),
    Plain("true", True, True),
    Plain("False", False, False),
    Plain("~", None, None),
    Plain("null", None, None),
    Plain("1e3", 1000.0, 1000.0),
    Plain("4.16", 4.16, 4.16),
    Plain("12", 12, 12),
    Plain("0x1F", 31, 31),
    # go-yaml v2 keeps a timestamp as text when decoding into interface{}.
    Plain("2024-05-01", "2024-05-01", "2024-05-01"),
    Plain("on-call", "on-call", "on-call"),
    Plain("yEs", "yEs", "yEs"),
]
BOOLEANS = [Plain("true", True, True), Plain("false", False, False)]
HIDDEN = ["4.15.13\n", " stable-4.16", "stable-4.16\t", "fast-\u200b4.16", "x\x1b[0m", "\r"]
TEXT = ["stable-4.16", "fast-4.15", "", "4.16.3", "Multi", "vCurrent", "None", "baremetal", "x"]
VALID_OVERRIDE = {
    "kind": "Deployment",
    "group": "apps",
    "namespace": "openshift-monitoring",
    "name": "cluster-monitoring-operator",
    "unmanaged": True,
}
# The fields cvsync judges only as strictly as the CRD does (the others have documented
# stricter rules: clusterID a UUID, upstream a URL, desiredUpdate's version, image and target).
SAME_RULES = ("channel", "capabilities", "overrides")
VISIBLE_FIELDS: tuple[Path, ...] = (
    ("clusterID",),
    ("channel",),
    ("upstream",),
    ("desiredUpdate", "version"),
    ("desiredUpdate", "image"),
)


@dataclass(frozen=True)
class Mutation:
    """Set, delete or insert (into a list) one value of the spec; "*" is a drawn list index."""

    op: str
    path: Path
    value: Json = None
    index: int = 0


def read_as(value: Json, reader: str) -> Json:
    """The plain data one reader gets from a mutated structure holding Plain scalars."""
    if isinstance(value, Plain):
        return value.kubectl if reader == "kubectl" else value.cvsync
    if isinstance(value, dict):
        return {key: read_as(item, reader) for key, item in value.items()}
    if isinstance(value, list):
        return [read_as(item, reader) for item in value]
    return value


# --- Writing the file ----------------------------------------------------------------------


def _scalar(value: Json) -> str:
    # JSON's string escapes are valid in a YAML double-quoted scalar; [] and {} are flow YAML.
    return value.text if isinstance(value, Plain) else json.dumps(value)


def _block(value: Json, indent: int) -> Iterator[str]:
    pad = " " * indent
    items = value.items() if isinstance(value, dict) else ((None, item) for item in value)
    for key, item in items:
        lead = f"{pad}{key}:" if key is not None else f"{pad}-"
        if isinstance(item, dict | list) and item:
            nested = list(_block(item, indent + 2))
            if key is None:  # the first line shares the dash's line
                yield f"{lead} {nested[0].lstrip()}"
                yield from nested[1:]
            else:
                yield lead
                yield from nested
        else:
            yield f"{lead} {_scalar(item)}"


def yaml_file(spec: dict[str, Json]) -> str:
    head = "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
    body = "\n".join(_block(spec, 2)) if spec else "  {}"
    return f"{head}spec:\n{body}\n"


def wrap(spec: dict[str, Json]) -> dict[str, Json]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": spec,
    }


# --- Mutating the spec ---------------------------------------------------------------------


def _container(spec: dict[str, Json], path: Path, kind: type) -> Any:
    """The dict or list at `path` (made, or remade when it has another type)."""
    node: Any = spec
    for depth, step in enumerate(path, 1):
        wanted = kind if depth == len(path) else dict
        if not isinstance(node.get(step), wanted):
            node[step] = wanted()
        node = node[step]
    return node


def apply(spec: dict[str, Json], mutation: Mutation) -> None:
    *parents, last = mutation.path
    if parents[:1] == ["overrides"] and len(parents) == 2:  # a field of one override
        entries = _container(spec, ("overrides",), list)
        if not entries:
            entries.append(dict(VALID_OVERRIDE))
        index = mutation.index % len(entries)
        if not isinstance(entries[index], dict):
            entries[index] = dict(VALID_OVERRIDE)
        parent = entries[index]
    elif mutation.op == "insert":
        items = _container(spec, mutation.path, list)
        items.insert(mutation.index % (len(items) + 1), mutation.value)
        return
    else:
        parent = _container(spec, tuple(parents), dict)
    if mutation.op == "delete":
        parent.pop(last, None)
    else:
        parent[last] = mutation.value


texts = st.one_of(st.sampled_from(PLAIN), st.sampled_from(TEXT), st.sampled_from(HIDDEN), st.none())
booleans = st.one_of(st.sampled_from(BOOLEANS), st.sampled_from(PLAIN), st.sampled_from(TEXT))
wrong_shapes = st.sampled_from([[], ["a"], {}, {"a": "b"}])
values = st.one_of(texts, texts, wrong_shapes)
capability_names = st.one_of(st.sampled_from(["baremetal", "Console", "marketplace"]), texts)
override_entries = st.one_of(
    st.just(dict(VALID_OVERRIDE)),
    st.just(dict(VALID_OVERRIDE, name="other")),
    st.just({key: value for key, value in VALID_OVERRIDE.items() if key != "group"}),
    st.none(),
    st.sampled_from(PLAIN),
)
indexes = st.integers(0, 3)

mutations = st.one_of(
    st.builds(
        Mutation,
        st.just("set"),
        st.sampled_from(
            [
                ("channel",),
                ("clusterID",),
                ("upstream",),
                ("desiredUpdate", "version"),
                ("desiredUpdate", "image"),
                ("desiredUpdate", "architecture"),
                ("capabilities", "baselineCapabilitySet"),
                ("overrides", "*", "name"),
                ("overrides", "*", "kind"),
            ]
        ),
        values,
        indexes,
    ),
    st.builds(
        Mutation,
        st.just("set"),
        st.sampled_from([("desiredUpdate", "force"), ("overrides", "*", "unmanaged")]),
        booleans,
        indexes,
    ),
    st.builds(
        Mutation,
        st.just("insert"),
        st.just(("capabilities", "additionalEnabledCapabilities")),
        capability_names,
        indexes,
    ),
    st.builds(Mutation, st.just("insert"), st.just(("overrides",)), override_entries, indexes),
    st.builds(
        Mutation,
        st.just("delete"),
        st.sampled_from([("clusterID",), ("channel",), ("overrides", "*", "group")]),
        st.none(),
        indexes,
    ),
)


# --- The property --------------------------------------------------------------------------


def cvsync_verdict(text: str) -> list[Finding]:
    """What `cvsync validate` reports for this file."""
    return list(check_files([("clusterversion.yaml", text.encode())]).findings)


def _at(obj: Json, path: Path) -> Json:
    for step in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def check(base: int, changes: list[Mutation]) -> str:
    """Assert the property for one mutated spec; what kind of case it was, for statistics."""
    spec = json.loads(json.dumps(SPECS[base]))
    for mutation in changes:
        apply(spec, mutation)
    text = yaml_file(spec)
    kubectl, cvsync = wrap(read_as(spec, "kubectl")), wrap(read_as(spec, "cvsync"))
    [document] = parse_text(text, "clusterversion.yaml").documents
    assert document.body == cvsync, text  # the file says what this test means it to
    causes = validate(kubectl, None, "Default")
    found = cvsync_verdict(text)
    errors = [(f.rule, f.field) for f in found if f.severity is Severity.ERROR]
    shown = f"\n{text}\nserver: {[c.message for c in causes]}\ncvsync: {errors}"
    if causes:
        assert errors, "the API server rejects what kubectl sends, cvsync reports no error" + shown
    if kubectl != cvsync:
        assert errors, "kubectl and cvsync read this file differently, with no error" + shown
    hidden = [p for p in VISIBLE_FIELDS if _at(cvsync["spec"], p) in HIDDEN]
    for path in hidden:
        field = "".join(f".{step}" for step in ("spec", *path))
        assert ("value-invisible-characters", field) in errors, shown
    same_rules = all(m.path[0] in SAME_RULES for m in changes)
    if not causes and kubectl == cvsync and same_rules and not hidden:
        assert not errors, "the API server accepts this file, cvsync reports an error" + shown
    server = "rejects" if causes else "accepts"
    return f"server {server}, readers {'differ' if kubectl != cvsync else 'agree'}"


def test_every_corpus_spec_is_accepted_by_the_server_and_by_cvsync() -> None:
    # Unchanged, a spec's file is accepted by the server, read alike, and free of errors.
    assert {check(base, []) for base in range(len(SPECS))} == {"server accepts, readers agree"}


@settings(max_examples=600, deadline=None)
@given(base=st.sampled_from(range(len(SPECS))), changes=st.lists(mutations, min_size=1, max_size=3))
# The cases that started this test: each passed `cvsync validate` before.
@example(base=0, changes=[Mutation("insert", ("overrides",), None)])
@example(base=0, changes=[Mutation("insert", ("capabilities", "additionalEnabledCapabilities"))])
@example(base=0, changes=[Mutation("set", ("channel",), PLAIN[0])])
@example(base=0, changes=[Mutation("set", ("desiredUpdate", "version"), "4.15.13\n")])
@example(base=0, changes=[Mutation("set", ("clusterID",), "\r")])
def test_cvsync_agrees_with_the_api_server_on_damaged_real_specs(
    base: int, changes: list[Mutation]
) -> None:
    event(check(base, changes))
