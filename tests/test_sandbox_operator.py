"""The sandbox's cluster-version operator simulator, its update graph and its scenarios: updates
walked tick by tick with explicit times, the operator's preconditions in its own wording, and
the graph loader on the real cincinnati-graph-data files."""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, timedelta

import pytest
from conftest import corpus_path
from operator_support import (
    GRAPH,
    LATER,
    T0,
    cluster,
    image,
    must,
    reconciled,
    request,
    stamp,
    walk,
)
from ruamel.yaml import YAML

from agent.model.versions import parse_version
from agent.sandbox.operator.knobs import ScenarioKnobs
from agent.sandbox.operator.risks import ClusterFacts, recommended_condition, risk_status
from agent.sandbox.operator.scenarios import load_scenario, scenario_names
from agent.sandbox.operator.simulator import OperatorSimulator
from agent.sandbox.operator.update_service import UpdateService
from agent.upgrade.graph import BlockedEdge, Risk, UpdateGraph, blocked_edge_from_doc

COUNTS = re.compile(r"^Working towards (\S+): (\d+) of (\d+) done \((\d+)% complete\)$")


# --- updates walked through time ---------------------------------------------------------------


def test_a_z_stream_update_walks_from_accepted_through_progress_to_completed() -> None:
    simulator, obj = cluster("idle-4.15")
    assert simulator.reconcile(obj, T0) is None
    failing_since = must(obj, "Failing")["lastTransitionTime"]

    request(obj, version="4.15.13")
    untouched = copy.deepcopy(obj)
    assert simulator.next_change(obj, T0) == T0
    assert obj == untouched
    reconciled(simulator, obj, T0)
    status = obj["status"]
    assert status["observedGeneration"] == 2
    assert status["desired"]["version"] == "4.15.13"
    assert status["desired"]["image"] == image("4.15.13")
    assert status["history"][0] == {
        "completionTime": None,
        "image": image("4.15.13"),
        "startedTime": "2025-01-10T09:00:00Z",
        "state": "Partial",
        "verified": True,
        "version": "4.15.13",
    }
    assert status["history"][1]["state"] == "Completed"
    accepted = must(obj, "ReleaseAccepted")
    assert (accepted["status"], accepted["reason"]) == ("True", "PayloadLoaded")
    assert accepted["message"] == (
        f'Payload loaded version="4.15.13" image="{image("4.15.13")}" architecture="amd64"'
    )
    progressing = must(obj, "Progressing")
    assert (progressing["status"], progressing["message"]) == ("True", "Working towards 4.15.13")
    assert progressing["lastTransitionTime"] == "2025-01-10T09:00:00Z"
    assert must(obj, "Available")["message"] == "Done applying 4.15.12"

    steps = walk(simulator, obj, T0)
    messages = [next(c for c in s["conditions"] if c["type"] == "Progressing") for _, s in steps]
    counted = [COUNTS.match(m["message"]) for m in messages[1:-1]]
    assert all(counted), [m["message"] for m in messages]
    done = [int(m[2]) for m in counted if m]
    assert done == sorted(done)
    assert len(set(done)) == len(done)
    assert {m[1] for m in counted if m} == {"4.15.13"}
    assert all(m["lastTransitionTime"] == "2025-01-10T09:00:00Z" for m in messages[:-1])
    for _, status in steps[:-1]:
        assert status["history"][0]["state"] == "Partial"
        assert next(c for c in status["conditions"] if c["type"] == "Available")["message"] == (
            "Done applying 4.15.12"
        )

    finished_at, final = steps[-1]
    assert finished_at == T0 + timedelta(minutes=60)
    assert final["history"][0]["state"] == "Completed"
    assert final["history"][0]["completionTime"] == "2025-01-10T10:00:00Z"
    assert messages[-1] == {
        "lastTransitionTime": "2025-01-10T10:00:00Z",
        "message": "Cluster version is 4.15.13",
        "status": "False",
        "type": "Progressing",
    }
    assert must(obj, "Available")["message"] == "Done applying 4.15.13"
    assert must(obj, "Failing")["lastTransitionTime"] == failing_since
    assert [u["version"] for u in final["availableUpdates"]] == ["4.15.15"]
    assert simulator.next_change(obj, LATER) is None
    assert simulator.reconcile(obj, LATER) is None


def test_time_scale_divides_how_long_an_update_takes() -> None:
    simulator, obj = cluster("idle-4.15", time_scale=60.0)
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    steps = walk(simulator, obj, T0)
    assert steps[-1][0] == T0 + timedelta(seconds=60)
    assert steps[1][0] - steps[0][0] == timedelta(seconds=2)


def test_progress_percentages_match_the_operators_truncated_form() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    reconciled(simulator, obj, T0 + timedelta(minutes=31, seconds=5))
    match = COUNTS.match(must(obj, "Progressing")["message"])
    assert match is not None
    done, total, percent = int(match[2]), int(match[3]), int(match[4])
    assert done == total * 15 // 30
    assert percent == done * 100 // total


def test_slow_worker_pools_hold_the_last_part_waiting_on_machine_config() -> None:
    simulator, obj = cluster("slow-worker-pools")
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    steps = walk(simulator, obj, T0)
    progressing = [next(c for c in s["conditions"] if c["type"] == "Progressing") for _, s in steps]
    waiting = [p for p in progressing if p["message"].endswith(", waiting on machine-config")]
    assert waiting
    assert all(p.get("reason") == "ClusterOperatorUpdating" for p in waiting)
    assert re.match(
        r"^Working towards 4\.15\.13: \d+ of \d+ done \(86% complete\), waiting on machine-config$",
        waiting[0]["message"],
    )
    assert steps[-1][0] == T0 + timedelta(minutes=120)
    assert steps[-1][1]["history"][0]["state"] == "Completed"


def test_a_failing_update_reports_failing_and_its_history_stays_partial() -> None:
    knobs = ScenarioKnobs(failing_update=True)
    simulator, obj = cluster("idle-4.15", knobs=knobs)
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    steps = walk(simulator, obj, T0)

    stalled = next(s for _, s in steps if "waiting up to 40" in str(s["conditions"]))
    progressing = next(c for c in stalled["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "ClusterOperatorDegraded"
    assert progressing["message"].endswith(", waiting up to 40 minutes on kube-apiserver")
    assert next(c for c in stalled["conditions"] if c["type"] == "Failing")["status"] == "False"

    failed_at, final = steps[-1]
    assert failed_at == T0 + timedelta(minutes=64)
    assert must(obj, "Failing") == {
        "lastTransitionTime": stamp(failed_at),
        "message": "Cluster operator kube-apiserver is degraded",
        "reason": "ClusterOperatorDegraded",
        "status": "True",
        "type": "Failing",
    }
    assert must(obj, "Progressing") == {
        "lastTransitionTime": "2025-01-10T09:00:00Z",
        "message": "Unable to apply 4.15.13: wait has exceeded 40 minutes for these operators: "
        "kube-apiserver",
        "reason": "ClusterOperatorDegraded",
        "status": "True",
        "type": "Progressing",
    }
    assert final["history"][0]["state"] == "Partial"
    assert final["history"][0]["completionTime"] is None
    assert must(obj, "Available")["message"] == "Done applying 4.15.12"
    assert simulator.next_change(obj, LATER) is None


def test_the_failing_update_scenario_recovers_by_rolling_back_to_the_previous_z_stream() -> None:
    simulator, obj = cluster("failing-update")
    assert simulator.reconcile(obj, T0) is None
    assert must(obj, "Failing")["status"] == "True"

    unknown = (
        'Precondition "ClusterVersionRecommendedUpdate" failed because of "UnknownUpdate": '
        "RetrievedUpdates=True (), so the update from 4.15.13 to 4.15.12 is probably neither "
        "recommended nor supported."
    )
    reconciled(simulator, request(obj, version="4.15.12"), T0)
    history = obj["status"]["history"]
    assert [(h["version"], h["state"], h["completionTime"]) for h in history[:2]] == [
        ("4.15.12", "Partial", None),
        ("4.15.13", "Partial", "2025-01-10T09:00:00Z"),
    ]
    assert history[0]["acceptedRisks"] == unknown
    assert must(obj, "Failing") == {
        "lastTransitionTime": "2025-01-10T09:00:00Z",
        "status": "False",
        "type": "Failing",
    }
    final = walk(simulator, obj, T0)[-1][1]
    assert final["history"][0]["state"] == "Completed"
    assert must(obj, "Progressing")["message"] == "Cluster version is 4.15.12"


def test_retargeting_during_an_update_closes_the_partial_entry_and_starts_another() -> None:
    simulator, obj = cluster("idle-4.15")
    reconciled(simulator, request(obj, version="4.15.13"), T0)
    midway = T0 + timedelta(minutes=20)
    reconciled(simulator, obj, midway)
    reconciled(simulator, request(obj, version="4.15.15"), midway)

    history = obj["status"]["history"]
    assert [(h["version"], h["state"], h["startedTime"], h["completionTime"]) for h in history] == [
        ("4.15.15", "Partial", "2025-01-10T09:20:00Z", None),
        ("4.15.13", "Partial", "2025-01-10T09:00:00Z", "2025-01-10T09:20:00Z"),
        ("4.15.12", "Completed", "2025-01-07T14:03:11Z", "2025-01-07T15:02:47Z"),
        ("4.15.10", "Completed", "2024-11-04T10:12:31Z", "2024-11-04T10:51:02Z"),
    ]
    progressing = must(obj, "Progressing")
    assert progressing["message"] == "Working towards 4.15.15"
    assert progressing["lastTransitionTime"] == "2025-01-10T09:00:00Z"
    assert walk(simulator, obj, midway)[-1][0] == midway + timedelta(minutes=60)


# --- retrieving updates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason", "message"),
    [
        ("no-channel", "NoChannel", "The update channel has not been configured."),
        (
            "version-not-found",
            "VersionNotFound",
            "Unable to retrieve available updates: currently reconciling cluster version 4.15.16 "
            'not found in the "stable-4.15" channel',
        ),
        (
            "update-service-unreachable",
            "RemoteFailed",
            'Unable to retrieve available updates: Get "https://api.openshift.com/api/'
            "upgrades_info/v1/graph?arch=amd64&channel=stable-4.15&"
            'id=e4a1b7c9-3d2f-4b6a-8c05-7f9e1d3b5a28&version=4.15.12": dial tcp: lookup '
            "api.openshift.com on 172.30.0.10:53: no such host",
        ),
    ],
)
def test_when_updates_cannot_be_retrieved_available_updates_is_null(
    name: str, reason: str, message: str
) -> None:
    simulator, obj = cluster(name)
    assert simulator.reconcile(obj, T0) is None
    retrieved = must(obj, "RetrievedUpdates")
    assert (retrieved["status"], retrieved["reason"], retrieved["message"]) == (
        "False",
        reason,
        message,
    )
    assert obj["status"]["availableUpdates"] is None
    assert "conditionalUpdates" not in obj["status"]


def test_without_a_channel_a_target_is_taken_with_its_unknown_recommendation_noted() -> None:
    # openshift/cluster-version-operator pkg/payload/precondition/clusterversion/
    # recommendedupdate.go: NoChannel is a NonBlockingWarning. Recorded the same way on a real
    # 4.16 nightly with no channel (corpus 4.17.0-ec.0-progressing-image-only-nochannel-compact).
    noted = (
        'Precondition "ClusterVersionRecommendedUpdate" failed because of "NoChannel": '
        "Configured channel is unset, so the recommended status of updating from 4.15.12 to "
        "4.15.13 is unknown."
    )
    simulator, obj = cluster("no-channel")
    reconciled(simulator, request(obj, image=image("4.15.13")), T0)
    assert must(obj, "ReleaseAccepted")["reason"] == "PayloadLoaded"
    assert obj["status"]["history"][0]["acceptedRisks"] == noted
    # Force goes past blocking failures only; a warning is recorded as it is (corpus
    # 4.20.0-nightly-progressing-forced-unverified-managedfields: forced, no channel).
    simulator, obj = cluster("no-channel")
    reconciled(simulator, request(obj, image=image("4.15.13"), force=True), T0)
    assert obj["status"]["history"][0]["acceptedRisks"] == noted


def test_setting_a_channel_offers_its_updates_at_once() -> None:
    simulator, obj = cluster("idle-4.15")
    obj["spec"]["channel"] = "stable-4.16"
    obj["metadata"]["generation"] += 1
    reconciled(simulator, obj, T0)
    available = [u["version"] for u in obj["status"]["availableUpdates"]]
    assert available == ["4.16.5", "4.16.4", "4.16.3", "4.16.2", "4.15.15", "4.15.13"]
    conditional = {c["release"]["version"] for c in obj["status"]["conditionalUpdates"]}
    assert conditional == {"4.16.4", "4.16.3", "4.15.14"}


def test_conditional_risks_follow_the_clusters_facts() -> None:
    _, obj = cluster("conditional-risks")
    by_version = {c["release"]["version"]: c for c in obj["status"]["conditionalUpdates"]}
    assert by_version["4.16.3"]["conditions"][0]["reason"] == "AzureNodeBootDelay"
    multiple = by_version["4.16.4"]["conditions"][0]
    assert (multiple["status"], multiple["reason"]) == ("False", "MultipleReasons")
    assert (
        "\n\nExposure to MetalLBSpeakerRestart is unknown due to an evaluation failure: "
        in (multiple["message"])
    )
    assert "4.16.3" not in [u["version"] for u in obj["status"]["availableUpdates"]]

    elsewhere = OperatorSimulator(GRAPH, knobs=ScenarioKnobs())
    reconciled(elsewhere, obj, T0)
    by_version = {c["release"]["version"]: c for c in obj["status"]["conditionalUpdates"]}
    assert by_version["4.16.3"]["conditions"][0] == {
        "lastTransitionTime": "2025-01-10T09:00:00Z",
        "message": "The update is recommended, because none of the conditional update risks "
        "apply to this cluster.",
        "reason": "AsExpected",
        "status": "True",
        "type": "Recommended",
    }
    assert by_version["4.15.14"]["conditions"][0]["lastTransitionTime"] == "2025-01-07T15:10:04Z"
    assert "4.16.3" in [u["version"] for u in obj["status"]["availableUpdates"]]


def test_a_fresh_status_lists_conditions_in_the_operators_order() -> None:
    _, obj = cluster("idle-4.15")
    obj["status"]["conditions"] = []
    obj["spec"]["overrides"] = [{"group": "g", "kind": "K", "name": "n", "unmanaged": True}]
    reconciled(OperatorSimulator(GRAPH), obj, T0)
    assert [c["type"] for c in obj["status"]["conditions"]] == [
        "RetrievedUpdates",
        "ImplicitlyEnabledCapabilities",
        "ReleaseAccepted",
        "Available",
        "Failing",
        "Progressing",
        "Upgradeable",
    ]


def test_next_change_is_now_while_a_reconcile_is_due_and_none_when_idle() -> None:
    simulator, obj = cluster("idle-4.15")
    assert simulator.next_change(obj, T0) is None
    request(obj, version="4.15.13")
    assert simulator.next_change(obj, T0) == T0
    reconciled(simulator, obj, T0)
    assert simulator.next_change(obj, T0) == T0 + timedelta(minutes=2)
    assert simulator.next_change(obj, T0 + timedelta(seconds=119)) == T0 + timedelta(minutes=2)


# --- scenarios --------------------------------------------------------------------------------

REQUIRED_SCENARIOS = {
    "idle-4.15",
    "conditional-risks",
    "failing-update",
    "no-channel",
    "update-service-unreachable",
    "overrides-set",
    "admin-ack-required",
}


def test_the_required_scenarios_exist() -> None:
    assert set(scenario_names()) >= REQUIRED_SCENARIOS


@pytest.mark.parametrize("name", scenario_names())
def test_every_scenario_loads_as_a_cluster_version_the_simulator_agrees_with(name: str) -> None:
    scenario = load_scenario(name)
    obj = scenario.cluster_version
    assert scenario.description
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]["name"]) == (
        "config.openshift.io/v1",
        "ClusterVersion",
        "version",
    )
    assert uuid.UUID(obj["spec"]["clusterID"]).version == 4
    assert ("channel" in obj["spec"]) == (name != "no-channel")
    status = obj["status"]
    assert {"desired", "history", "conditions", "observedGeneration", "versionHash"} <= set(status)
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    assert status["history"][0]["version"] == status["desired"]["version"]
    assert status["history"][0]["image"] == status["desired"]["image"]
    types = [c["type"] for c in status["conditions"]]
    assert len(types) == len(set(types))
    assert {"Available", "Failing", "Progressing", "RetrievedUpdates", "ReleaseAccepted"} <= set(
        types
    )
    for entry in status["conditions"]:
        datetime.strptime(entry["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ")
    simulator = OperatorSimulator(
        GRAPH, knobs=scenario.knobs, time_scale=30.0, feature_set=scenario.feature_set
    )
    assert simulator.reconcile(obj, LATER) is None
    assert load_scenario(name).cluster_version is not obj


def test_unknown_scenarios_and_knobs_are_refused() -> None:
    with pytest.raises(KeyError, match="known: "):
        load_scenario("../graph")
    with pytest.raises(ValueError, match="failingUpdates"):
        ScenarioKnobs.from_mapping({"failingUpdates": True})
    with pytest.raises(ValueError, match="quoted"):
        ScenarioKnobs.from_mapping(
            {"upgradeableFalse": {"reason": "R", "message": "M", "whileAt": 4.1}}
        )
    with pytest.raises(ValueError, match="blockNotRecommended"):
        ScenarioKnobs.from_mapping({"blockNotRecommended": True})


# --- the update graph -------------------------------------------------------------------------


def test_the_builtin_graph_offers_same_and_next_minor_updates_only() -> None:
    assert [r.version for r, _ in GRAPH.edges("4.15.12", "fast-4.17")] == []
    targets = [r.version for r, _ in GRAPH.edges("4.16.2", "candidate-4.17")]
    assert {"4.17.0-rc.2", "4.16.6"} <= set(targets)
    assert "4.16.1" not in targets
    assert all(parse_version(t) is not None for t in targets)
    assert "4.16.0" not in [r.version for r, _ in GRAPH.edges("4.15.12", "fast-4.16")]
    assert "4.16.0" in [r.version for r, _ in GRAPH.edges("4.15.13", "fast-4.16")]
    pre = dict(GRAPH.edges("4.16.6", "candidate-4.17"))
    assert [r.name for r in next(v for k, v in pre.items() if k.version == "4.17.0-rc.2")] == [
        "PreRelease"
    ]


def test_versions_order_by_semver_precedence() -> None:
    ordered = ["4.16.0-ec.1", "4.16.0-rc.2", "4.16.0-rc.10", "4.16.0", "4.16.1", "4.17.0"]
    parsed = [v for v in map(parse_version, ordered) if v is not None]
    assert [v.text for v in sorted(parsed)] == ordered
    assert parse_version("4.16") is None


def test_a_risk_that_could_not_be_evaluated_makes_the_recommendation_unknown() -> None:
    risk = next(
        b.risk for b in GRAPH.graph.blocked_edges if b.risk and b.risk.name == "AzureNodeBootDelay"
    )
    assert risk is not None
    facts = ClusterFacts(failures={"AzureNodeBootDelay": "client-side throttling"})
    assert recommended_condition([risk], facts) == {
        "message": "Exposure to AzureNodeBootDelay is unknown due to an evaluation failure: "
        f"client-side throttling\n{risk.message} {risk.url}",
        "reason": "EvaluationFailed",
        "status": "Unknown",
        "type": "Recommended",
    }


def corpus_graph() -> UpdateGraph:
    graph = corpus_path("graph")
    return UpdateGraph.load(graph / "channels", graph / "blocked-edges")


@pytest.mark.corpus
def test_the_loader_reads_the_real_channels_with_the_documented_counts() -> None:
    graph = corpus_graph()
    assert {name: len(versions) for name, versions in graph.channels.items()} == {
        "candidate-4.15": 162,
        "fast-4.15": 131,
        "stable-4.14": 178,
        "stable-4.15": 109,
    }
    assert "4.15.1" not in graph.channels["stable-4.15"]
    assert UpdateService(graph).releases["4.14.10"].channels == (
        "candidate-4.15",
        "fast-4.15",
        "stable-4.14",
        "stable-4.15",
    )


@pytest.mark.corpus
def test_the_loader_parses_real_risks_and_the_legacy_unconditional_block() -> None:
    graph = corpus_graph()
    by_to = {b.to: b for b in graph.blocked_edges}
    assert len(graph.blocked_edges) == 8
    legacy = by_to["4.10.0-fc.0"]
    assert (legacy.risk, legacy.from_pattern) == (None, r"4\.9\..*")
    always = by_to["4.12.49"].risk
    assert always is not None
    assert [r.type for r in always.matching_rules] == ["Always"]
    assert by_to["4.14.0"].fixed_in == "4.14.2"
    amd = by_to["4.12.45"]
    assert amd.risk is not None
    assert amd.risk.matching_rules[0].promql.startswith("topk(1,")
    assert amd.applies("4.12.40", "4.12.45")
    assert not amd.applies("4.12.45", "4.12.45")

    with_legacy = UpdateGraph.from_data(
        {"candidate-4.10": ["4.9.59", "4.10.0-fc.0", "4.10.3"]}, graph.blocked_edges
    )
    assert [v for v, _ in with_legacy.edges("4.9.59", "candidate-4.10")] == ["4.10.3"]


@pytest.mark.corpus
def test_risks_from_the_real_graph_render_as_the_real_operator_published_them() -> None:
    graph = UpdateService(corpus_graph())
    found = graph.recommend("4.14.1", "stable-4.15", ClusterFacts(), now="2024-02-07T16:31:06Z")
    ours = next(c for c in found.conditional if c["release"]["version"] == "4.14.2")
    captured = YAML(typ="safe").load(
        corpus_path(
            "clusterversions", "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
        ).read_text(encoding="utf-8")
    )
    real = next(
        c for c in captured["status"]["conditionalUpdates"] if c["release"]["version"] == "4.14.2"
    )
    # graph-data later added a full stop to this message; the rest is as the CVO published it.
    assert [r | {"message": r["message"].rstrip(".")} for r in ours["risks"]] == real["risks"]
    assert ours["conditions"] == real["conditions"]
    assert "4.14.2" in [u["version"] for u in found.available or ()]
    ovn = next(c for c in found.conditional if c["release"]["version"] == "4.15.0")
    assert [r["name"] for r in ovn["risks"]] == ["OVNIPsecConnectivity"]
    exposed = graph.recommend(
        "4.14.1", "stable-4.15", ClusterFacts({"AROBrokenDNSMasq": True}), now="x"
    )
    condition_ = next(c for c in exposed.conditional if c["release"]["version"] == "4.14.2")[
        "conditions"
    ][0]
    assert (condition_["reason"], condition_["message"]) == (
        "AROBrokenDNSMasq",
        "Adding a new worker node will fail for clusters running on ARO. "
        "https://issues.redhat.com/browse/MCO-958",
    )


def test_a_blocked_edge_document_without_a_name_is_an_unconditional_block() -> None:
    legacy = blocked_edge_from_doc({"to": "4.16.1", "from": "4[.]15[.].*"})
    assert legacy == BlockedEdge("4.16.1", "4[.]15[.].*")
    named = blocked_edge_from_doc(
        {
            "to": "4.16.1",
            "from": ".*",
            "name": "N",
            "message": "M",
            "url": "U",
            "matchingRules": [{"type": "Always"}],
        }
    )
    assert isinstance(named.risk, Risk)
    assert risk_status(named.risk) == {
        "matchingRules": [{"type": "Always"}],
        "message": "M",
        "name": "N",
        "url": "U",
    }
