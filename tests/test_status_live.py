"""A live ClusterVersion from a saved file: oc's YAML or JSON, a one-item List, or the status
file cvsync committed, which must read (in summarize and in the gates) as the object it was
written from. Proven on every real corpus object and every sandbox scenario."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from conftest import CORPUS_CLUSTER_VERSIONS, NO_TYPE_META, corpus_bytes, corpus_path
from ruamel.yaml import YAML

from agent.model.gates import GateDecision, GateSettings
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION
from agent.model.status import AgentState
from agent.model.versions import version_key
from agent.report.status_document import document
from agent.report.status_live import is_status_file, live_from_status, load_live_object
from agent.report.status_render import render_json, render_yaml
from agent.report.summarize import summarize
from agent.sandbox.operator.scenarios import load_scenario, scenario_names
from agent.upgrade.gates import evaluate_gates

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
AGENT = AgentState(cluster="c")
CORPUS_NAMES = [path.name for path in CORPUS_CLUSTER_VERSIONS]
SCENARIOS = scenario_names()


def corpus_object(name: str) -> dict[str, Any]:
    return load_live_object(corpus_bytes(name), name)


def status_doc(live: Mapping[str, Any]) -> dict[str, Any]:
    """What status/c.yaml holds for `live`, read back as the CLI would read it."""
    loaded = YAML(typ="safe").load(render_yaml(summarize(live, AGENT)))
    assert isinstance(loaded, dict)
    return loaded


def round_trip(live: Mapping[str, Any]) -> dict[str, Any]:
    doc = status_doc(live)
    assert is_status_file(doc)
    rebuilt = live_from_status(doc)
    # Through the loader, from the file's bytes, it is the same object.
    assert load_live_object(render_yaml(summarize(live, AGENT)).encode(), "status/c.yaml") == (
        rebuilt
    )
    return rebuilt


# --- (a) summarize reads the rebuilt object as the original ------------------------------


def assert_same_document(live: Mapping[str, Any]) -> None:
    before = summarize(live, AGENT)
    after = summarize(round_trip(live), AGENT)
    want, got = document(before), document(after)
    # The one field that cannot survive: the history's total when the file shows only the
    # newest entries (the latest Completed one is kept when it is further down).
    shown = want["history"]["shown"]
    if want["history"]["total"] > shown:
        assert got["history"]["total"] in (shown, shown + 1)
        want["history"]["total"] = got["history"]["total"]
    else:
        assert got["history"]["total"] == want["history"]["total"]
    assert json.dumps(got, indent=1) == json.dumps(want, indent=1)
    assert after.current == before.current
    assert after.stale == before.stale


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_corpus_status_file_summarizes_as_the_object(name: str) -> None:
    assert_same_document(corpus_object(name))


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_status_file_summarizes_as_the_object(name: str) -> None:
    assert_same_document(load_scenario(name).cluster_version)


# --- (b) the gates decide the same on the rebuilt object ----------------------------------


def targets(live: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """desiredUpdates to gate (each once), with the annotations to gate them under: every
    available and conditional release (by version, by image, forced), versions in neither,
    and the current version's previous z-stream (by number, and as history has it, asked
    twice)."""
    unique = {json.dumps(t, sort_keys=True): t for t in _targets(live)}
    return list(unique.values())


def _targets(live: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    status = live.get("status") or {}
    releases = [*(status.get("availableUpdates") or ())]
    releases += [c.get("release") or {} for c in status.get("conditionalUpdates") or ()]
    for release in releases:
        version, image = release.get("version") or "", release.get("image") or ""
        yield {"version": version}, {}
        if image:
            yield {"image": image}, {}
            yield {"version": version, "image": image, "force": True}, {}
    summary = summarize(live, AGENT)
    current = summary.current_version or (summary.desired.version if summary.desired else "")
    key = version_key(current)
    if key is None:
        yield {"version": "4.99.0"}, {}
        return
    major, minor, patch = key[:3]
    yield {"version": f"{major}.{minor}.{patch + 7}"}, {}
    yield {"version": f"{major}.{minor + 2}.0"}, {}
    previous = [f"{major}.{minor}.{patch - 1}"] if patch else []
    previous += [e.version for e in summary.history if e.state == "Completed"][1:2]
    for version in previous:
        yield {"version": version}, {}
        yield {"version": version}, {ALLOW_ROLLBACK_ANNOTATION: version}


def settings_for(live: Mapping[str, Any]) -> list[GateSettings]:
    risks = {
        risk.get("name")
        for update in (live.get("status") or {}).get("conditionalUpdates") or ()
        for risk in update.get("risks") or ()
    }
    names = sorted(str(r) for r in risks)
    return [
        GateSettings(),
        GateSettings(accepted_risks=dict.fromkeys(names)),
        GateSettings(
            accepted_risks={n: NOW - timedelta(days=i % 2) for i, n in enumerate(names)},
            allow_not_recommended=True,
            require_digest=False,
            allow_major=True,
        ),
        GateSettings(
            allow_force_until=NOW + timedelta(days=1),
            allow_minor=False,
            allow_retarget_while_progressing=True,
        ),
    ]


def decided(decision: GateDecision) -> tuple[Any, ...]:
    """The action, each row's (gate, verdict, reason) and the desiredUpdate to apply."""
    rows = [(row.gate, str(row.verdict), row.reason) for row in decision.rows]
    return decision.action, rows, decision.resolved


def worded(decision: GateDecision) -> tuple[list[str], str | None]:
    """The wording: each row's evidence and the suggestion. Equal on every object here too,
    though not promised (the risk messages of one name's variants, the order of overrides)."""
    return [row.evidence for row in decision.rows], decision.suggestion


def assert_same_gates(live: Mapping[str, Any]) -> set[str]:
    """Every target by version under each settings variant; by image under the default ones,
    also outside a window; forced under the default and the break-glass ones (a corpus object
    lists 141 targets: every combination would take a minute)."""
    rebuilt, wants = round_trip(live), targets(live)
    actions: set[str] = set()
    for number, settings in enumerate(settings_for(live)):
        for want, notes in wants:
            forced, by_image = "force" in want, "image" in want and "version" not in want
            if (forced and number in (1, 2)) or (by_image and number != 0):
                continue
            windows = (None, False) if number == 0 and not forced else (None,)
            for window in windows:
                before = evaluate_gates(
                    want, live, settings, now=NOW, window_open=window, annotations=notes
                )
                after = evaluate_gates(
                    want, rebuilt, settings, now=NOW, window_open=window, annotations=notes
                )
                assert decided(after) == decided(before), (want, settings)
                assert worded(after) == worded(before), (want, settings)
                actions.add(before.action)
    return actions


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_corpus_status_file_gates_as_the_object(name: str) -> None:
    assert "block" in assert_same_gates(corpus_object(name))


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_status_file_gates_as_the_object(name: str) -> None:
    assert "block" in assert_same_gates(load_scenario(name).cluster_version)


def test_gates_see_the_same_verdicts_not_just_passes() -> None:
    """The round trip keeps blocking evidence: a not-recommended target stays blocked by its
    risks by name, and accepting them by name lets it through on both objects."""
    live = load_scenario("conditional-risks").cluster_version
    rebuilt = round_trip(live)
    risky = next(
        u
        for u in live["status"]["conditionalUpdates"]
        if any(c.get("status") == "False" for c in u["conditions"])
    )
    want = {"version": risky["release"]["version"]}
    names = {r["name"]: None for r in risky["risks"]}
    for obj in (live, rebuilt):
        blocked = evaluate_gates(want, obj, GateSettings(), now=NOW, window_open=None)
        assert blocked.action == "block"
        assert blocked.row("recommended") is not None
        assert blocked.row("recommended").reason == "RisksNotAccepted"  # type: ignore[union-attr]
        accepted = GateSettings(accepted_risks=names)
        passed = evaluate_gates(want, obj, accepted, now=NOW, window_open=None)
        assert passed.row("recommended").reason == "RisksAccepted"  # type: ignore[union-attr]


# --- the rebuilt object's shape -------------------------------------------------------------


def test_rebuilt_object_is_a_cluster_version_with_what_the_file_says() -> None:
    live = load_scenario("conditional-risks").cluster_version
    rebuilt = round_trip(live)
    assert rebuilt["apiVersion"] == "config.openshift.io/v1"
    assert rebuilt["kind"] == "ClusterVersion"
    assert rebuilt["metadata"] == {"name": "version", "generation": 1}
    assert rebuilt["spec"]["clusterID"] == live["spec"]["clusterID"]
    conditional = rebuilt["status"]["conditionalUpdates"]
    assert {c["release"]["version"] for c in conditional} == {
        c["release"]["version"] for c in live["status"]["conditionalUpdates"]
    }
    risk = conditional[0]["risks"][0]
    assert set(risk) == {"name", "url", "message", "matchingRules"}
    assert all(set(rule) == {"type"} for rule in risk["matchingRules"])
    first = live["status"]["conditions"][0]
    back = next(c for c in rebuilt["status"]["conditions"] if c["type"] == first["type"])
    assert back["lastTransitionTime"] == first["lastTransitionTime"]


def test_desired_update_is_rebuilt_from_the_requested_fields() -> None:
    live = load_scenario("idle-4.15").cluster_version
    image = live["status"]["desired"]["image"]
    version = live["status"]["desired"]["version"]
    live = copy.deepcopy(live)
    live["spec"]["desiredUpdate"] = {"image": image, "version": "", "force": True}
    assert round_trip(live)["spec"]["desiredUpdate"] == {"image": image, "force": True}
    live["spec"]["desiredUpdate"] = {"version": version, "force": False}
    assert round_trip(live)["spec"]["desiredUpdate"] == {"version": version}
    del live["spec"]["desiredUpdate"]
    assert "desiredUpdate" not in round_trip(live)["spec"]


def test_null_available_updates_and_absent_conditional_updates_survive() -> None:
    live = copy.deepcopy(load_scenario("idle-4.15").cluster_version)
    live["status"]["availableUpdates"] = None
    live["status"].pop("conditionalUpdates", None)
    status = round_trip(live)["status"]
    assert "availableUpdates" in status
    assert status["availableUpdates"] is None
    assert "conditionalUpdates" not in status


def test_history_beyond_the_shown_entries_keeps_the_current_version() -> None:
    live = copy.deepcopy(load_scenario("idle-4.15").cluster_version)
    top = live["status"]["history"][0]
    partials = [{**top, "state": "Partial", "version": f"4.16.{n}"} for n in range(12)]
    live["status"]["history"] = partials + live["status"]["history"]
    rebuilt = round_trip(live)
    assert summarize(rebuilt, AGENT).current == summarize(live, AGENT).current
    assert len(rebuilt["status"]["history"]) == 11


# --- load_live_object ---------------------------------------------------------------------


def yaml_bytes(value: Any) -> bytes:
    out = StringIO()
    YAML(typ="safe").dump(value, out)
    return out.getvalue().encode()


def test_loads_oc_yaml_with_timestamps_as_text() -> None:
    data = corpus_bytes("4.14.1-progressing-failing-etcd-kas-degraded.yaml")
    live = load_live_object(data, "cv.yaml")
    assert live["kind"] == "ClusterVersion"
    since = live["status"]["conditions"][0]["lastTransitionTime"]
    assert isinstance(since, str)
    assert since.endswith("Z")


def test_loads_scenario_yaml_and_json_alike() -> None:
    live = load_scenario("failing-update").cluster_version
    from_yaml = load_live_object(yaml_bytes(live), "cv.yaml")
    from_json = load_live_object(json.dumps(live, indent=2).encode(), "cv.json")
    assert from_yaml == from_json == live


def test_unwraps_a_list_of_one() -> None:
    live = load_scenario("idle-4.15").cluster_version
    wrapped = {"apiVersion": "v1", "kind": "List", "items": [live], "metadata": {}}
    assert load_live_object(yaml_bytes(wrapped), "list.yaml") == live
    assert load_live_object(json.dumps(wrapped).encode(), "list.json") == live


def test_unwraps_the_corpus_oc_get_list() -> None:
    name = next((n for n in CORPUS_NAMES if n.endswith("oc-get-list.yaml")), None)
    if name is None:
        pytest.skip("no oc-get List in the corpus")
    raw = YAML(typ="safe").load(corpus_bytes(name))
    assert raw["kind"] == "List"
    assert load_live_object(corpus_bytes(name), name)["kind"] == "ClusterVersion"


def test_a_list_of_two_is_refused() -> None:
    live = load_scenario("idle-4.15").cluster_version
    wrapped = {"apiVersion": "v1", "kind": "List", "items": [live, live]}
    with pytest.raises(ValueError, match=r"^two\.yaml: a List of 2 items.*exactly one"):
        load_live_object(yaml_bytes(wrapped), "two.yaml")
    with pytest.raises(ValueError, match=r"^none\.yaml: a List of 0 items"):
        load_live_object(b"kind: List\nitems: []\n", "none.yaml")


def test_a_wrong_kind_is_refused() -> None:
    data = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: version\n"
    with pytest.raises(ValueError, match=r"^cm\.yaml: holds kind 'ConfigMap', not a Cluster"):
        load_live_object(data, "cm.yaml")
    wrapped = b"kind: List\nitems:\n- kind: Node\n"
    with pytest.raises(ValueError, match=r"^nodes\.yaml: holds kind 'Node'"):
        load_live_object(wrapped, "nodes.yaml")
    with pytest.raises(ValueError, match=r"^x\.yaml: holds no kind, spec nor status"):
        load_live_object(b"a: 1\n", "x.yaml")


def test_not_a_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^l\.yaml: the document is a list, not a mapping"):
        load_live_object(b"- 1\n- 2\n", "l.yaml")
    with pytest.raises(ValueError, match=r"^e\.yaml: the document is empty"):
        load_live_object(b"", "e.yaml")


def test_broken_yaml_names_the_file_line_and_column() -> None:
    data = b"kind: ClusterVersion\nspec:\n  channel: [stable\nstatus: {}\n"
    with pytest.raises(ValueError, match=r"^broken\.yaml:4:\d+: invalid YAML") as caught:
        load_live_object(data, "broken.yaml")
    message = str(caught.value)
    assert message.startswith("broken.yaml:4:")
    assert "oc get clusterversion" in message


def test_broken_json_names_the_file_line_and_column() -> None:
    with pytest.raises(ValueError, match=r"^b\.json:2:11: invalid JSON"):
        load_live_object(b'{"kind": "ClusterVersion",\n "spec": {,}}', "b.json")


def test_duplicate_keys_and_bad_bytes_are_clean_errors() -> None:
    with pytest.raises(ValueError, match=r"^d\.yaml:2:1: invalid YAML"):
        load_live_object(b"kind: ClusterVersion\nkind: ClusterVersion\n", "d.yaml")
    with pytest.raises(ValueError, match=r"^bin: not UTF-8"):
        load_live_object(b"\xff\xfe\x00kind", "bin")
    with pytest.raises(ValueError, match=r"^deep\.json: nested too deeply"):
        load_live_object(b"[" * 100_000, "deep.json")
    with pytest.raises(ValueError, match=r"^deep\.yaml: nested too deeply"):
        load_live_object(b"a: " + b"[" * 100_000, "deep.yaml")


def test_a_kindless_insights_object_is_taken() -> None:
    data = corpus_path("clusterversions", NO_TYPE_META).read_bytes()
    live = load_live_object(data, NO_TYPE_META)
    assert "kind" not in live
    assert summarize(live, AGENT).current_version == "4.7.16"


def test_is_status_file_tells_the_two_apart() -> None:
    live = load_scenario("idle-4.15").cluster_version
    assert not is_status_file(live)
    assert is_status_file(status_doc(live))
    assert not is_status_file({**status_doc(live), "kind": "ClusterVersion"})
    assert not is_status_file([])


def test_a_json_status_file_loads_like_the_yaml_one() -> None:
    summary = summarize(load_scenario("conditional-risks").cluster_version, AGENT)
    from_json = load_live_object(render_json(summary).encode(), "status.json")
    from_yaml = load_live_object(render_yaml(summary).encode(), "status/c.yaml")
    assert from_json == from_yaml
    assert from_json["status"]["conditionalUpdates"]
