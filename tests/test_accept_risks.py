"""The risks a policy accepts, as spec.desiredUpdate.acceptRisks on a cluster whose CRD has the
field (TechPreviewNoUpgrade, ClusterUpdateAcceptRisks): what the desired state holds, when the
live list is in sync, what an apply sends and removes, and what the status summary reads back
from status.conditionalUpdateRisks.

Live objects are written by the sandbox's API server (its server-side apply and managedFields)
or come from its accept-risks-techpreview scenario. Facts: the TechPreviewNoUpgrade CRD of
openshift/api (acceptRisks is a map list keyed by name, 1 to 1000 entries, "may contain entries
that apply to current, previous or future updates"; a conditional update is accepted when each
of its risks does not apply or is accepted) and `oc adm upgrade accept`, which adds names as
its own manager (openshift/oc pull request 2336).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from ruamel.yaml import YAML

from agent.model.desired import DesiredState
from agent.model.gates import GateSettings, Verdict
from agent.model.policy import Policy
from agent.model.status import AgentState
from agent.report.status_document import document
from agent.report.status_live import live_from_status
from agent.report.status_markdown import render_markdown
from agent.report.status_render import render_yaml
from agent.report.summarize import summarize
from agent.sandbox.apiserver.handlers import APPLY_PATCH, MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.operator.releases import release_image
from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.spec.normalize import desired_state
from agent.spec.parse import parse_text
from agent.sync.diff import diff
from agent.sync.plan import plan_apply
from agent.upgrade.decision import accepted_risk_names, check_upgrade, with_accepted_risks
from agent.upgrade.gates import evaluate_gates
from agent.upgrade.policy import parse_policy
from agent.upgrade.status_read import conditional_updates, shows_accept_risks

CLUSTER_ID = "7c2e9b41-5d86-4f0a-9e13-b8a4d6c2f519"
VERSION = Target(CLUSTER_VERSIONS, "", "version")
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
SCENARIO = "accept-risks-techpreview"


def git(update: dict[str, Any] | None = None) -> DesiredState:
    spec: dict[str, Any] = {"clusterID": CLUSTER_ID, "channel": "fast-4.16"}
    if update is not None:
        spec["desiredUpdate"] = update
    body = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": spec,
    }
    [doc] = parse_text(json.dumps(body), "clusters/east/clusterversion.yaml").documents
    return desired_state(doc)


def policy(*risks: tuple[str, str], today: date = date(2026, 1, 1)) -> Policy:
    lines = [
        "apiVersion: cvsync.io/v1alpha1",
        "kind: UpgradePolicy",
        "spec:",
        "  acceptedRisks:",
        *(
            f"    - {{name: {name}, reason: tested, approvedBy: sre, expires: {expires}}}"
            for name, expires in risks
        ),
    ]
    parsed, findings = parse_policy("\n".join(lines).encode(), "policy.yaml", today=today)
    assert parsed is not None, findings
    return parsed


def accepting(*names: str) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def names_in(obj: dict[str, Any]) -> list[str]:
    return [risk["name"] for risk in obj["spec"]["desiredUpdate"].get("acceptRisks", [])]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxOptions(feature_set="TechPreviewNoUpgrade")) as running:
        running.api.create(
            Target(CLUSTER_VERSIONS),
            {
                "apiVersion": "config.openshift.io/v1",
                "kind": "ClusterVersion",
                "metadata": {"name": "version"},
                "spec": {"clusterID": CLUSTER_ID, "channel": "fast-4.16"},
            },
            WriteOptions(manager="cluster-bootstrap"),
        )
        yield running


def apply(sandbox: Sandbox, body: dict[str, Any], *, force: bool = False) -> dict[str, Any]:
    """cvsync's server-side apply (forced where the reconciler takes a field back from an
    imperative writer such as the installer)."""
    sandbox.api.patch(VERSION, APPLY_PATCH, body, WriteOptions(manager="cvsync", force=force))
    return sandbox.api.get(CLUSTER_VERSIONS, "", "version")


def accepted_by(obj: dict[str, Any], manager: str) -> list[str]:
    """The acceptRisks entries `manager` owns, as managedFields (FieldsV1) keys them."""
    (entry,) = (e for e in obj["metadata"]["managedFields"] if e["manager"] == manager)
    update = entry["fieldsV1"]["f:spec"]["f:desiredUpdate"]
    return sorted(key for key in update.get("f:acceptRisks", {}) if key != ".")


def oc_accepts(sandbox: Sandbox, *names: str) -> dict[str, Any]:
    """`oc adm upgrade accept`: the whole list sent back with its names added, as manager oc."""
    live = sandbox.api.get(CLUSTER_VERSIONS, "", "version")
    listed = live["spec"]["desiredUpdate"].get("acceptRisks", []) + accepting(*names)
    patch = {"spec": {"desiredUpdate": {"acceptRisks": listed}}}
    sandbox.api.patch(VERSION, MERGE_PATCH, patch, WriteOptions(manager="oc"))
    return sandbox.api.get(CLUSTER_VERSIONS, "", "version")


def applied(sandbox: Sandbox, desired: DesiredState) -> dict[str, Any]:
    """One cycle's apply of `desired` (no gates: the target is not the point here)."""
    live = sandbox.api.get(CLUSTER_VERSIONS, "", "version")
    plan = plan_apply(desired, live, diff(desired.spec, live), mode="enforce")
    assert plan.body is not None, plan.message
    return apply(sandbox, plan.body)


# --- the desired state ----------------------------------------------------------------------


def test_the_policy_names_its_unexpired_risks_sorted() -> None:
    accepted = policy(("MetalLBSpeakerRestart", "2026-12-31"), ("AzureNodeBootDelay", "2026-05-31"))
    # An acceptance counts through its expiry day (UTC); the parser dropped none at 2026-01-01.
    assert accepted_risk_names(accepted, datetime(2026, 5, 31, 23, tzinfo=UTC)) == (
        "AzureNodeBootDelay",
        "MetalLBSpeakerRestart",
    )
    assert accepted_risk_names(accepted, NOW) == ("MetalLBSpeakerRestart",)


def test_the_names_join_desired_update_only_where_git_declares_one() -> None:
    wanted = with_accepted_risks(git({"version": "4.15.14"}), ("A", "B"))
    assert wanted.spec["desiredUpdate"]["acceptRisks"] == accepting("A", "B")
    assert wanted.spec["desiredUpdate"]["version"] == "4.15.14"
    assert "desiredUpdate" not in with_accepted_risks(git(), ("A",)).spec
    # The CRD allows no empty list (minItems 1): no names, no field.
    plain = git({"version": "4.15.14"})
    assert with_accepted_risks(plain, ()) is plain


# --- in sync, and what an apply changes -----------------------------------------------------


async def test_names_git_sends_that_the_cluster_has_are_in_sync(sandbox: Sandbox) -> None:
    wanted = with_accepted_risks(git({"version": "4.15.14"}), ("A",))
    live = applied(sandbox, wanted)
    assert names_in(live) == ["A"]
    assert diff(wanted.spec, live).items == ()
    # A name someone else accepted too is theirs: still in sync, nothing to write.
    live = oc_accepts(sandbox, "B")
    assert names_in(live) == ["A", "B"]
    assert diff(wanted.spec, live).items == ()


async def test_a_name_the_policy_adds_is_drift_and_the_apply_adds_it(sandbox: Sandbox) -> None:
    applied(sandbox, with_accepted_risks(git({"version": "4.15.14"}), ("A",)))
    wider = with_accepted_risks(git({"version": "4.15.14"}), ("A", "C"))
    live = sandbox.api.get(CLUSTER_VERSIONS, "", "version")
    [item] = diff(wider.spec, live).items
    assert item.path == ".spec.desiredUpdate"
    live = applied(sandbox, wider)
    assert names_in(live) == ["A", "C"]
    assert diff(wider.spec, live).items == ()


async def test_a_name_the_policy_drops_goes_and_another_managers_stays(sandbox: Sandbox) -> None:
    applied(sandbox, with_accepted_risks(git({"version": "4.15.14"}), ("A", "C")))
    oc_accepts(sandbox, "B")
    narrower = with_accepted_risks(git({"version": "4.15.14"}), ("A",))
    live = sandbox.api.get(CLUSTER_VERSIONS, "", "version")
    # C is still there and cvsync alone owns it: that is drift, although every name git
    # sends is present.
    [item] = diff(narrower.spec, live).items
    assert item.path == ".spec.desiredUpdate"
    live = applied(sandbox, narrower)
    assert names_in(live) == ["A", "B"]
    assert diff(narrower.spec, live).items == ()
    # And when the policy accepts nothing any more, cvsync's names all go.
    live = applied(sandbox, git({"version": "4.15.14"}))
    assert names_in(live) == ["B"]
    assert diff(git({"version": "4.15.14"}).spec, live).items == ()


async def test_a_held_target_sends_back_only_the_names_cvsync_owns(sandbox: Sandbox) -> None:
    applied(sandbox, with_accepted_risks(git({"version": "4.15.14"}), ("A",)))
    oc_accepts(sandbox, "B")
    # git stops declaring desiredUpdate and changes the channel: the cluster's target stays
    # as it is, though oc owns a part of it (its name B).
    live = sandbox.api.get(CLUSTER_VERSIONS, "", "version")
    before = live["spec"]["desiredUpdate"]
    dropped = git()
    dropped = DesiredState(dropped.document, {**dropped.spec, "channel": "stable-4.16"}, {})
    drift = diff(dropped.spec, live)
    assert [(item.path, str(item.kind)) for item in drift.items] == [
        (".spec.channel", "changed"),
        (".spec.desiredUpdate", "extra"),
    ]
    plan = plan_apply(dropped, live, drift, mode="enforce")
    assert plan.body is not None
    sent = plan.body["spec"]["desiredUpdate"]
    assert sent == {k: v for k, v in before.items() if k != "acceptRisks"} | {
        "acceptRisks": accepting("A")
    }
    after = apply(sandbox, plan.body, force=True)  # the channel is cluster-bootstrap's
    assert after["spec"]["desiredUpdate"] == before
    assert accepted_by(after, "cvsync") == ['k:{"name":"A"}']
    assert accepted_by(after, "oc") == ['k:{"name":"B"}']


async def test_a_target_the_gates_resolve_keeps_its_accepted_risks() -> None:
    async with Sandbox(SandboxOptions(scenario=SCENARIO, feature_set="TechPreviewNoUpgrade")) as sb:
        live = sb.api.get(CLUSTER_VERSIONS, "", "version")
        rules = policy(("EtcdDefragStall", "2026-12-31"))
        wanted = with_accepted_risks(git({"version": "4.15.14"}), accepted_risk_names(rules, NOW))
        upgrade = check_upgrade(wanted, live, rules, NOW)
        assert upgrade.decision.action == "apply", upgrade.summary()
        plan = plan_apply(wanted, live, diff(wanted.spec, live), mode="enforce", upgrade=upgrade)
        assert plan.body is not None
        assert plan.body["spec"]["desiredUpdate"] == {
            "acceptRisks": accepting("EtcdDefragStall"),
            "architecture": "",
            "force": False,
            "image": release_image("4.15.14"),
            "version": "4.15.14",
        }


async def test_an_acceptance_expired_when_the_policy_was_read_is_named_by_the_gate() -> None:
    async with Sandbox(SandboxOptions(scenario=SCENARIO, feature_set="TechPreviewNoUpgrade")) as sb:
        live = sb.api.get(CLUSTER_VERSIONS, "", "version")
        rules = policy(("EtcdDefragStall", "2026-05-31"), today=NOW.date())
        assert accepted_risk_names(rules, NOW) == ()
        upgrade = check_upgrade(git({"version": "4.15.14"}), live, rules, NOW)
        assert upgrade.decision.action == "block"
        [row] = upgrade.decision.blocking
        assert (row.verdict, row.reason) == (Verdict.BLOCK, "RisksNotAccepted")
        assert "EtcdDefragStall: " in row.evidence
        assert "[acceptance expired 2026-05-31]" in row.evidence
        assert [(risk.name, risk.accepted) for risk in upgrade.risks] == [
            ("EtcdDefragStall", False)
        ]


# --- reading the operator's answer ----------------------------------------------------------


def scenario_object() -> dict[str, Any]:
    return copy.deepcopy(load_scenario(SCENARIO).cluster_version)


def settings(*names: str) -> GateSettings:
    return GateSettings(accepted_risks=dict.fromkeys(names))


def recommended_row(live: dict[str, Any], version: str, *names: str) -> tuple[Verdict, str, str]:
    decision = evaluate_gates(
        {"version": version}, live, settings(*names), now=NOW, window_open=None
    )
    row = decision.row("recommended")
    assert row is not None
    return row.verdict, row.reason, row.evidence


def test_a_risk_the_operator_says_does_not_apply_needs_no_acceptance() -> None:
    live = scenario_object()
    status = live["status"]
    for risk in status["conditionalUpdateRisks"]:
        if risk["name"] == "AzureNodeBootDelay":
            risk["conditions"][0] |= {"status": "False", "reason": "NotMatch"}
    for update in status["conditionalUpdates"]:
        for risk in update["risks"]:
            if risk["name"] == "AzureNodeBootDelay":
                risk["conditions"][0] |= {"status": "False", "reason": "NotMatch"}
    # 4.16.4: AzureNodeBootDelay does not apply; MetalLBSpeakerRestart could not be evaluated.
    verdict, reason, evidence = recommended_row(live, "4.16.4")
    assert (verdict, reason) == (Verdict.BLOCK, "RisksNotAccepted")
    assert "MetalLBSpeakerRestart" in evidence
    assert "AzureNodeBootDelay:" not in evidence
    verdict, reason, evidence = recommended_row(live, "4.16.4", "MetalLBSpeakerRestart")
    assert (verdict, reason) == (Verdict.PASS, "RisksAccepted")
    assert evidence.endswith(
        "accepted: MetalLBSpeakerRestart; not applying (Applies=False): AzureNodeBootDelay"
    )


def test_an_update_that_only_names_its_risks_finds_them_in_conditional_update_risks() -> None:
    # riskNames is the newer form; the per-update risks are documented as deprecated by it.
    status = scenario_object()["status"]
    for update in status["conditionalUpdates"]:
        del update["risks"]
    found = {
        c.release.version: [(r.name, r.applies, r.rules) for r in c.risks]
        for c in conditional_updates(
            status["conditionalUpdates"], (), status["conditionalUpdateRisks"]
        )
    }
    assert found["4.16.4"] == [
        ("AzureNodeBootDelay", "True", ("PromQL",)),
        ("MetalLBSpeakerRestart", "Unknown", ("PromQL",)),
    ]
    assert found["4.15.14"] == [("EtcdDefragStall", "True", ("Always",))]


def test_the_status_file_shows_the_accepted_names_and_which_risks_apply() -> None:
    live = scenario_object()
    live["spec"]["desiredUpdate"] = {
        "version": "4.15.13",
        "image": release_image("4.15.13"),
        "acceptRisks": accepting("EtcdDefragStall"),
    }
    summary = summarize(live, AgentState(cluster="east"))
    written = YAML(typ="safe").load(render_yaml(summary))
    assert written["desired"]["acceptRisks"] == ["EtcdDefragStall"]
    assert {r["name"]: r["applies"] for r in written["updates"]["risks"]} == {
        "AzureNodeBootDelay": "True",
        "EtcdDefragStall": "True",
        "MetalLBSpeakerRestart": "Unknown",
    }
    markdown = render_markdown(summary)
    assert "| Risk | Applies | Updates | Rules | Message |" in markdown
    assert (
        "| Request | spec.desiredUpdate by version and image, accepting EtcdDefragStall |"
        in markdown
    )
    # A Default cluster says nothing about it: null, and no Applies column.
    plain = load_scenario("conditional-risks").cluster_version
    plain_summary = summarize(plain, AgentState(cluster="east"))
    assert {r["applies"] for r in document(plain_summary)["updates"]["risks"]} == {None}
    assert "| Applies |" not in render_markdown(plain_summary)


def test_a_saved_object_shows_the_fields_only_when_its_crd_has_them() -> None:
    # A real API server drops what its schema does not declare: a field present proves it.
    preview = scenario_object()
    assert shows_accept_risks(preview)
    del preview["status"]["conditionalUpdateRisks"]
    assert shows_accept_risks(preview)  # the risks' Applies conditions still say it
    plain = load_scenario("conditional-risks").cluster_version
    assert not shows_accept_risks(plain)
    plain["spec"]["desiredUpdate"] = {"version": "4.16.3", "acceptRisks": accepting("A")}
    assert shows_accept_risks(plain)
    # cvsync's status file keeps the evidence.
    written = YAML(typ="safe").load(render_yaml(summarize(scenario_object(), AgentState("c"))))
    assert shows_accept_risks(live_from_status(written))
    default = load_scenario("conditional-risks").cluster_version
    written = YAML(typ="safe").load(render_yaml(summarize(default, AgentState("c"))))
    assert not shows_accept_risks(live_from_status(written))
