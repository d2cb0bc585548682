"""Upgrade gates: each gate on hand-built objects, then on the real corpus ClusterVersions."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import corpus_path
from ruamel.yaml import YAML

from agent.model.gates import GateDecision, GateSettings, Verdict
from agent.model.plan import ALLOW_ROLLBACK_ANNOTATION
from agent.upgrade.gates import evaluate_gates
from agent.upgrade.status_read import available_updates, conditional_updates

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LATER, EARLIER = NOW + timedelta(days=1), NOW - timedelta(seconds=1)
DEFAULT = GateSettings()


def img(version: str) -> str:
    digest = hashlib.sha256(version.encode()).hexdigest()
    return f"quay.io/openshift-release-dev/ocp-release@sha256:{digest}"


def release(version: str) -> dict[str, Any]:
    return {"version": version, "image": img(version)}


def cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def cv(
    current: str = "4.12.16",
    *,
    available: tuple[str, ...] = ("4.12.17", "4.13.1"),
    conditional: tuple[dict[str, Any], ...] = (),
    conditions: tuple[dict[str, Any], ...] = (),
    history: tuple[tuple[str, str], ...] = (),
    spec: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal live ClusterVersion, idle at `current`, with recommendations retrieved."""
    base = {"RetrievedUpdates": cond("RetrievedUpdates", "True")}
    base |= {c["type"]: c for c in conditions}
    entries = history or ((current, "Completed"),)
    return {
        "metadata": {"name": "version", "generation": 2},
        "spec": spec or {"clusterID": "x", "channel": "stable-4.13"},
        "status": {
            "observedGeneration": 2,
            "desired": release(entries[0][0]),
            "history": [{**release(v), "state": state} for v, state in entries],
            "availableUpdates": [release(v) for v in available],
            "conditionalUpdates": list(conditional),
            "conditions": list(base.values()),
        },
    }


def conditional_entry(version: str, recommended: str, *risks: str) -> dict[str, Any]:
    return {
        "release": release(version),
        "risks": [
            {"name": r, "message": f"{r} may break things.", "url": f"https://issues/{r}"}
            for r in risks
        ],
        "conditions": [cond("Recommended", recommended, risks[0] if risks else "AsExpected")],
    }


def gate(
    desired: dict[str, Any] | None,
    live: dict[str, Any],
    settings: GateSettings = DEFAULT,
    *,
    window_open: bool | None = None,
    annotations: dict[str, str] | None = None,
) -> GateDecision:
    return evaluate_gates(
        desired, live, settings, now=NOW, window_open=window_open, annotations=annotations or {}
    )


def verdict(decision: GateDecision, name: str) -> tuple[Verdict, str]:
    row = decision.row(name)
    assert row is not None, f"no {name} row in {decision.rows}"
    return row.verdict, row.reason


# --- nothing new ----------------------------------------------------------------------------


def test_no_desired_update_is_nothing_to_do() -> None:
    assert gate(None, cv()).action == "none"
    assert gate({"version": "", "image": ""}, cv()).action == "none"


def test_the_live_desired_update_again_is_nothing_new_even_outside_a_window() -> None:
    live = cv(spec={"desiredUpdate": {**release("4.12.17"), "force": False}})
    decision = gate({"version": "4.12.17"}, live, window_open=False)
    assert decision.action == "none"
    assert decision.rows[0].reason == "AlreadyRequested"


def test_the_current_target_is_nothing_new() -> None:
    assert gate({"version": "4.12.16"}, cv()).action == "none"


# --- recommendation -------------------------------------------------------------------------


def test_a_recommended_version_is_resolved_to_its_listed_digest() -> None:
    decision = gate({"version": "4.12.17"}, cv())
    assert decision.action == "apply"
    assert decision.resolved == release("4.12.17")
    assert verdict(decision, "recommended") == (Verdict.PASS, "Recommended")
    assert verdict(decision, "digest") == (Verdict.PASS, "ResolvedToDigest")
    assert decision.blocking == ()


def test_an_image_target_takes_the_listed_version() -> None:
    decision = gate({"image": img("4.12.17")}, cv())
    assert decision.resolved == release("4.12.17")


def test_a_conditional_target_blocks_until_each_risk_is_accepted_by_name() -> None:
    live = cv(conditional=(conditional_entry("4.12.18", "False", "RiskA", "RiskB"),))
    decision = gate({"version": "4.12.18"}, live)
    assert decision.action == "block"
    assert verdict(decision, "recommended") == (Verdict.BLOCK, "RisksNotAccepted")
    evidence = decision.blocking[0].evidence
    for name in ("RiskA", "RiskB"):
        assert f"{name}: {name} may break things. (https://issues/{name})" in evidence
    assert decision.suggestion is not None
    assert "RiskA, RiskB" in decision.suggestion

    only_a = GateSettings(accepted_risks={"RiskA": None})
    row = gate({"version": "4.12.18"}, live, only_a).blocking[0]
    assert "RiskB" in row.evidence
    assert "RiskA:" not in row.evidence

    both = GateSettings(accepted_risks={"RiskA": None, "RiskB": LATER})
    accepted = gate({"version": "4.12.18"}, live, both)
    assert accepted.action == "apply"
    assert verdict(accepted, "recommended") == (Verdict.PASS, "RisksAccepted")
    assert accepted.resolved == release("4.12.18")

    expired = GateSettings(accepted_risks={"RiskA": None, "RiskB": EARLIER})
    again = gate({"version": "4.12.18"}, live, expired)
    assert verdict(again, "recommended") == (Verdict.BLOCK, "RisksNotAccepted")
    assert "acceptance expired" in again.blocking[0].evidence


def test_a_conditional_target_the_operator_recommends_passes() -> None:
    live = cv(conditional=(conditional_entry("4.12.18", "True", "RiskA"),))
    assert verdict(gate({"version": "4.12.18"}, live), "recommended")[0] is Verdict.PASS


def test_allow_not_recommended_does_not_accept_named_risks() -> None:
    live = cv(conditional=(conditional_entry("4.12.18", "Unknown", "RiskA"),))
    lax = GateSettings(allow_not_recommended=True)
    assert gate({"version": "4.12.18"}, live, lax).action == "block"


def test_an_unlisted_target_blocks_unless_not_recommended_targets_are_allowed() -> None:
    target = {"image": img("4.12.99"), "version": "4.12.99"}
    decision = gate(target, cv())
    assert verdict(decision, "recommended") == (Verdict.BLOCK, "NotRecommended")
    lax = gate(target, cv(), GateSettings(allow_not_recommended=True))
    assert verdict(lax, "recommended") == (Verdict.WARN, "NotRecommendedAllowed")
    assert lax.action == "apply"
    assert lax.resolved == target


def test_an_unlisted_version_only_target_has_no_digest() -> None:
    lax = GateSettings(allow_not_recommended=True)
    assert verdict(gate({"version": "4.12.99"}, cv(), lax), "digest") == (
        Verdict.BLOCK,
        "DigestNotResolved",
    )
    loose = GateSettings(allow_not_recommended=True, require_digest=False)
    decision = gate({"version": "4.12.99"}, cv(), loose)
    assert decision.action == "apply"
    assert decision.resolved == {"version": "4.12.99"}


def test_a_tag_image_is_refused_when_digests_are_required() -> None:
    target = {"version": "4.12.17", "image": "quay.io/x/release:4.12.17"}
    lax = GateSettings(allow_not_recommended=True)
    assert verdict(gate(target, cv(), lax), "digest") == (Verdict.BLOCK, "ImageNotPinned")
    loose = GateSettings(allow_not_recommended=True, require_digest=False)
    assert verdict(gate(target, cv(), loose), "digest") == (Verdict.WARN, "ImageNotPinned")


# --- cluster state --------------------------------------------------------------------------


def test_stale_recommendations_block_unless_not_recommended_targets_are_allowed() -> None:
    live = cv(conditions=(cond("RetrievedUpdates", "False", "RemoteFailed", "timeout"),))
    decision = gate({"version": "4.12.17"}, live)
    assert verdict(decision, "retrievedUpdates") == (Verdict.BLOCK, "RecommendationsStale")
    assert "RemoteFailed: timeout" in decision.blocking[0].evidence
    lax = gate({"version": "4.12.17"}, live, GateSettings(allow_not_recommended=True))
    assert verdict(lax, "retrievedUpdates") == (Verdict.WARN, "RecommendationsStale")


def test_a_failing_cluster_blocks() -> None:
    live = cv(conditions=(cond("Failing", "True", "ClusterOperatorNotAvailable", "dns"),))
    decision = gate({"version": "4.12.17"}, live)
    assert verdict(decision, "failing") == (Verdict.BLOCK, "ClusterFailing")


def test_retargeting_an_update_in_progress_blocks_unless_allowed() -> None:
    live = cv(
        "4.12.16",
        history=(("4.12.17", "Partial"), ("4.12.16", "Completed")),
        conditions=(cond("Progressing", "True", "", "Working towards 4.12.17"),),
        available=("4.12.18",),
    )
    decision = gate({"version": "4.12.18"}, live)
    assert verdict(decision, "progressing") == (Verdict.BLOCK, "UpdateInProgress")
    assert "Working towards 4.12.17" in decision.blocking[0].evidence
    allowed = GateSettings(allow_retarget_while_progressing=True)
    assert gate({"version": "4.12.18"}, live, allowed).action == "apply"


# --- hops -----------------------------------------------------------------------------------

ADMIN_ACK = cond("Upgradeable", "False", "AdminAckRequired", "Kubernetes 1.26 removes APIs")


def test_upgradeable_false_blocks_a_minor_hop_but_not_a_z_stream() -> None:
    live = cv(conditions=(ADMIN_ACK,))
    minor = gate({"version": "4.13.1"}, live)
    assert verdict(minor, "upgradeable") == (Verdict.BLOCK, "NotUpgradeable")
    assert "AdminAckRequired: Kubernetes 1.26 removes APIs" in minor.blocking[0].evidence
    z_stream = gate({"version": "4.12.17"}, live)
    assert z_stream.action == "apply"
    assert verdict(z_stream, "upgradeable") == (Verdict.PASS, "ZStreamUnaffected")


def test_the_policy_can_forbid_minor_and_major_hops() -> None:
    minor = gate({"version": "4.13.1"}, cv(), GateSettings(allow_minor=False))
    assert verdict(minor, "hop") == (Verdict.BLOCK, "MinorUpdatesNotAllowed")
    assert verdict(gate({"version": "4.13.1"}, cv()), "hop") == (Verdict.PASS, "MinorUpdate")


def test_a_giant_hop_blocks_and_suggests_the_one_hop_path() -> None:
    live = cv(available=("4.13.1", "4.13.9", "4.14.2"))
    decision = gate({"version": "4.14.2"}, live)
    assert verdict(decision, "giantHop") == (Verdict.BLOCK, "GiantHop")
    assert decision.suggestion is not None
    assert "4.12.16 → 4.13.9" in decision.suggestion
    unlisted = gate({"version": "4.15.0"}, cv(available=("4.15.0",)))
    assert unlisted.suggestion is not None
    assert "4.13 (none offered yet) → 4.14 (none offered yet)" in unlisted.suggestion


def test_a_major_hop_is_a_giant_hop() -> None:
    decision = gate({"version": "5.0.0"}, cv(available=("5.0.0",)))
    assert verdict(decision, "giantHop")[0] is Verdict.BLOCK
    assert verdict(decision, "hop") == (Verdict.BLOCK, "MajorUpdatesNotAllowed")


def test_overrides_are_explained() -> None:
    overrides = [{"kind": "Deployment", "group": "apps", "namespace": "ns", "name": "d"}]
    live = cv(spec={"clusterID": "x", "overrides": overrides})
    decision = gate({"version": "4.12.17"}, live)
    assert verdict(decision, "overrides") == (Verdict.WARN, "ClusterVersionOverridesSet")
    assert decision.action == "apply"
    assert decision.row("overrides") is not None
    assert gate({"version": "4.12.17"}, cv()).row("overrides") is None


# --- rollback -------------------------------------------------------------------------------

ROLLED = (("4.12.17", "Completed"), ("4.12.16", "Completed"), ("4.12.15", "Completed"))


def test_a_lower_version_is_refused_without_the_annotation() -> None:
    decision = gate({"version": "4.12.16"}, cv(history=ROLLED), GateSettings(require_digest=False))
    assert verdict(decision, "rollback") == (Verdict.BLOCK, "RollbackRefused")
    assert decision.suggestion is not None
    assert ALLOW_ROLLBACK_ANNOTATION in decision.suggestion
    assert decision.row("hop") is None


def test_the_previous_z_stream_with_the_annotation_is_allowed() -> None:
    target = {"version": "4.12.16", "image": img("4.12.16")}
    settings = GateSettings(allow_not_recommended=True)
    annotated = {ALLOW_ROLLBACK_ANNOTATION: "4.12.16"}
    decision = gate(target, cv(history=ROLLED), settings, annotations=annotated)
    assert verdict(decision, "rollback") == (Verdict.WARN, "RollbackAllowed")
    assert decision.action == "apply"
    older = {"version": "4.12.15", "image": img("4.12.15")}
    refused = gate(older, cv(history=ROLLED), settings, annotations={"x": "4.12.15"})
    assert verdict(refused, "rollback") == (Verdict.BLOCK, "RollbackRefused")
    wrong = gate(
        older, cv(history=ROLLED), settings, annotations={ALLOW_ROLLBACK_ANNOTATION: "4.12.15"}
    )
    assert verdict(wrong, "rollback")[0] is Verdict.BLOCK
    assert "only the previous z-stream (4.12.16)" in (wrong.suggestion or "")


# --- force and windows ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("until", "image", "expected"),
    [
        (None, img("4.12.17"), (Verdict.BLOCK, "ForceNotAllowed")),
        (EARLIER, img("4.12.17"), (Verdict.BLOCK, "ForceAllowanceExpired")),
        (LATER, "quay.io/x/release:4.12.17", (Verdict.BLOCK, "ForceNeedsDigest")),
        (LATER, img("4.12.17"), (Verdict.WARN, "ForceAllowed")),
    ],
)
def test_force_is_time_boxed_break_glass_on_a_digest(
    until: datetime | None, image: str, expected: tuple[Verdict, str]
) -> None:
    settings = GateSettings(allow_force_until=until, require_digest=False)
    decision = gate({"version": "4.12.17", "image": image, "force": True}, cv(), settings)
    assert verdict(decision, "force") == expected
    if expected[0] is Verdict.WARN:
        assert decision.resolved == {**release("4.12.17"), "force": True}


def test_a_version_only_forced_target_uses_the_resolved_digest() -> None:
    settings = GateSettings(allow_force_until=LATER)
    decision = gate({"version": "4.12.17", "force": True}, cv(), settings)
    assert decision.action == "apply"
    assert decision.resolved == {**release("4.12.17"), "force": True}


def test_a_new_target_waits_for_a_window() -> None:
    assert gate({"version": "4.12.17"}, cv(), window_open=False).action == "wait"
    inside = gate({"version": "4.12.17"}, cv(), window_open=True)
    assert verdict(inside, "window") == (Verdict.PASS, "InsideMaintenanceWindow")
    assert gate({"version": "4.12.17"}, cv()).row("window") is None
    blocked = gate({"version": "4.12.99"}, cv(), window_open=False)
    assert blocked.action == "block"


# --- the real objects -----------------------------------------------------------------------

IDLE_4_12 = (
    "4.12.16-idle-72-available-69-conditional.yaml",
    "4.12.16-idle-24-available-69-conditional-stale-observedgeneration.yaml",
)
PROGRESSING_4_14 = (
    "4.14.1-progressing-16pct-partial-conditional-recommended.yaml",
    "4.14.1-progressing-85pct-partial-conditional-recommended.yaml",
)


def load(name: str) -> dict[str, Any]:
    path: Path = corpus_path("clusterversions", name)
    body: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return body


@pytest.mark.corpus
@pytest.mark.parametrize("name", IDLE_4_12 + PROGRESSING_4_14)
def test_corpus_recommendations_follow_the_objects_recommended_conditions(name: str) -> None:
    live = load(name)
    status = live["status"]
    available = available_updates(status.get("availableUpdates"))
    conditional = conditional_updates(status.get("conditionalUpdates"), available)
    assert available
    for target in available:
        decision = gate({"version": target.version}, live)
        assert verdict(decision, "recommended") == (Verdict.PASS, "Recommended")
    risky = [c for c in conditional if c.recommended != "True" and not c.available]
    if name in PROGRESSING_4_14:
        assert not risky  # every conditional update there is recommended
    for risky_target in risky:
        version = risky_target.release.version
        decision = gate({"version": version}, live)
        assert verdict(decision, "recommended") == (Verdict.BLOCK, "RisksNotAccepted")
        for risk in risky_target.risks:
            assert f"{risk.name}: {risk.message} ({risk.url})" in decision.blocking[0].evidence
        accepted = GateSettings(
            accepted_risks=dict.fromkeys((r.name for r in risky_target.risks), LATER)
        )
        assert verdict(gate({"version": version}, live, accepted), "recommended") == (
            Verdict.PASS,
            "RisksAccepted",
        )
        expired = GateSettings(
            accepted_risks=dict.fromkeys((r.name for r in risky_target.risks), NOW)
        )
        assert verdict(gate({"version": version}, live, expired), "recommended")[0] is (
            Verdict.BLOCK
        )
    absent = {"version": "4.12.999"}
    assert verdict(gate(absent, live), "recommended") == (Verdict.BLOCK, "NotRecommended")
    lax = GateSettings(allow_not_recommended=True)
    assert verdict(gate(absent, live, lax), "recommended")[0] is Verdict.WARN


@pytest.mark.corpus
def test_corpus_4_12_conditional_targets_name_their_risks() -> None:
    live = load(IDLE_4_12[0])
    decision = gate({"version": "4.12.51"}, live)
    evidence = decision.blocking[0].evidence
    assert "Recommended=False (MultipleReasons)" in evidence
    for name in ("AMD19hFirmware", "HighNodeStatusReportFrequency", "RHELKernelHighLoadIOWait"):
        assert name in evidence
    stale = load(IDLE_4_12[1])  # Recommended=Unknown there: not recommended either
    assert verdict(gate({"version": "4.12.45"}, stale), "recommended")[0] is Verdict.BLOCK
    assert verdict(gate({"version": "4.12.45"}, live), "recommended")[0] is Verdict.PASS


@pytest.mark.corpus
def test_corpus_4_12_admin_ack_blocks_4_13_but_not_a_z_stream() -> None:
    live = load(IDLE_4_12[0])
    minor = gate({"version": "4.13.50"}, live)
    assert minor.action == "block"
    assert [row.reason for row in minor.blocking] == ["NotUpgradeable"]
    assert "AdminAckRequired" in minor.blocking[0].evidence
    z_stream = gate({"version": "4.12.17"}, live)
    assert z_stream.action == "apply"
    listed = next(
        t for t in available_updates(live["status"]["availableUpdates"]) if t.version == "4.12.17"
    )
    assert z_stream.resolved == {"version": "4.12.17", "image": listed.image}
    assert "@sha256:" in listed.image


@pytest.mark.corpus
def test_corpus_4_12_stale_observed_generation_is_reported() -> None:
    decision = gate({"version": "4.12.17"}, load(IDLE_4_12[1]))
    assert verdict(decision, "observedGeneration") == (Verdict.WARN, "StatusNotObserved")
    assert decision.action == "apply"
    assert gate({"version": "4.12.17"}, load(IDLE_4_12[0])).row("observedGeneration") is None


@pytest.mark.corpus
def test_corpus_4_12_giant_hop_to_4_14_suggests_4_13() -> None:
    lax = GateSettings(allow_not_recommended=True, require_digest=False)
    decision = gate({"version": "4.14.1"}, load(IDLE_4_12[0]), lax)
    assert verdict(decision, "giantHop") == (Verdict.BLOCK, "GiantHop")
    assert decision.suggestion is not None
    assert "4.12.16 → 4.13.50" in decision.suggestion


@pytest.mark.corpus
@pytest.mark.parametrize("name", PROGRESSING_4_14)
def test_corpus_4_14_progressing_blocks_a_retarget(name: str) -> None:
    live = load(name)
    assert gate(live["spec"]["desiredUpdate"], live, window_open=False).action == "none"
    decision = gate({"version": "4.14.2"}, live)
    assert [row.reason for row in decision.blocking] == ["UpdateInProgress"]
    allowed = GateSettings(allow_retarget_while_progressing=True)
    retarget = gate({"version": "4.14.2"}, live, allowed)
    assert retarget.action == "apply"
    assert retarget.resolved is not None
    assert retarget.resolved["image"].endswith("407d7cec450928d")


@pytest.mark.corpus
def test_corpus_4_16_failing_blocks() -> None:
    live = load("4.16.27-idle-failing-monitoring-unavailable.yaml")
    decision = gate({"version": "4.16.28"}, live)
    assert [row.reason for row in decision.blocking] == ["ClusterFailing"]
    assert "monitoring is not available" in decision.blocking[0].evidence
    assert verdict(decision, "upgradeable") == (Verdict.PASS, "ZStreamUnaffected")


@pytest.mark.corpus
def test_corpus_4_22_overrides_and_no_channel() -> None:
    live = load("4.22.0-nightly-idle-overrides-unmanaged-nochannel.yaml")
    target = {"version": "4.22.0-0.nightly-2026-03-11-000000", "image": img("4.22.1")}
    decision = gate(target, live)
    assert verdict(decision, "overrides") == (Verdict.WARN, "ClusterVersionOverridesSet")
    assert "ClusterImagePolicy" in (decision.row("overrides") or decision.rows[0]).evidence
    assert verdict(decision, "retrievedUpdates") == (Verdict.BLOCK, "RecommendationsStale")
    assert any("NoChannel" in row.evidence for row in decision.blocking)
    minor = gate({"version": "4.23.0", "image": img("4.23.0")}, live)
    assert verdict(minor, "upgradeable") == (Verdict.BLOCK, "NotUpgradeable")
    assert "ClusterVersionOverridesSet" in (minor.row("upgradeable") or minor.rows[0]).evidence
