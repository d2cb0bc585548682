"""Upgrade gates end to end on the sandbox: the agent (its runtime, reconciler, git clone and
status write-back, in this process) against the sandbox API server and its simulated
operator, with git commits on a real bare remote.

A target with a risk nobody accepted stays pending and is reported (cycle outcome, Event,
metric, status file) while the rest of the spec still applies; a commit accepting the risk
by name lets it apply as version + digest, and the simulated update completes. On a cluster
whose CRD declares spec.desiredUpdate.acceptRisks (TechPreviewNoUpgrade) the accepted names
go there too and the operator takes the update as accepted; on a Default cluster the field
is never sent. A target committed during a blackout waits, and is applied the moment the
blackout ends: time is an injected clock, moved by the test, never slept.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from agent_support import POLICY_HEAD, POLICY_PATH, SPEC_PATH, history, running_agent, spec, until
from ruamel.yaml import YAML

from agent.clock import SteppedClock
from agent.engine.reconciler import Result
from agent.sandbox.apiserver.crd_schema import FEATURE_SETS, FeatureSet
from agent.sandbox.operator.releases import release_image


async def test_an_unaccepted_risk_holds_the_target_until_a_commit_accepts_it(
    tmp_path: Path,
) -> None:
    # 4.16.3 carries AzureNodeBootDelay, which applies to this Azure cluster: Recommended=False.
    # Only cvsync's gate holds it; the operator itself would take it with a warning.
    async with running_agent(tmp_path, "conditional-risks") as agent:
        held = await agent.commit(
            {SPEC_PATH: spec(agent.cluster_id, "stable-4.16", "4.16.3")}, "update to 4.16.3"
        )
        assert held.upgrade is not None
        assert held.upgrade.decision.action == "block"
        # The channel change in the same commit still applied; the target stays pending.
        assert held.result is Result.APPLIED
        assert agent.live()["spec"]["channel"] == "stable-4.16"
        assert "desiredUpdate" not in agent.live()["spec"]
        blocking = [row.reason for row in held.upgrade.decision.blocking]
        assert blocking == ["RisksNotAccepted"]
        assert "AzureNodeBootDelay" in held.upgrade.summary()
        # Reported everywhere: an Event, the metric, the status file.
        await until(lambda: bool(agent.events("UpgradeBlocked")))
        assert "AzureNodeBootDelay" in agent.events("UpgradeBlocked")[0]["message"]
        metric = agent.runtime.metrics.upgrade_held.labels(state="blocked")._value.get()
        assert metric == 1
        await until(lambda: "RisksNotAccepted" in agent.status_file())
        assert "state: blocked" in agent.status_file()

        # Nothing moves on later cycles either.
        again = await agent.commit({"README.md": "unrelated\n"}, "docs")
        assert again.result is Result.STALLED
        assert again.reason == "UpgradeBlocked"
        assert "desiredUpdate" not in agent.live()["spec"]

        accepting = POLICY_HEAD + (
            "  acceptedRisks:\n"
            "    - {name: AzureNodeBootDelay, reason: nodes boot in time on this pool, "
            "approvedBy: platform-team, expires: 2099-12-31}\n"
        )
        applied = await agent.commit({POLICY_PATH: accepting}, "accept AzureNodeBootDelay")
        assert applied.result is Result.APPLIED, applied.message
        update = agent.live()["spec"]["desiredUpdate"]
        assert update["version"] == "4.16.3"
        assert "@sha256:" in update["image"]  # resolved from conditionalUpdates
        assert not update.get("force")  # accepted by name, not forced
        await until(lambda: ("4.16.3", "Completed") in history(agent), 60)
        # The operator's warning, as the real one records it: pkg/payload/precondition/
        # clusterversion/recommendedupdate.go (NonBlockingWarning) and pkg/cvo/sync_worker.go.
        entry = next(e for e in agent.live()["status"]["history"] if e["version"] == "4.16.3")
        assert entry["acceptedRisks"] == (
            'Precondition "ClusterVersionRecommendedUpdate" failed because of '
            '"AzureNodeBootDelay": Update from 4.15.13 to 4.16.3 is not recommended:\n\n'
            "Azure clusters may see new nodes take more than 20 minutes to become Ready after "
            "the update, delaying machine scale-up. https://issues.sandbox.invalid/browse/SANDBOX-102"
        )
        assert entry["verified"] is True
        await until(
            lambda: "4.16.3" in agent.status_file() and "state: blocked" not in agent.status_file(),
            30,
        )
        assert agent.runtime.metrics.upgrade_held.labels(state="blocked")._value.get() == 0
        # The pinned digest is not drift: the next cycle is in sync and writes nothing.
        writes = agent.sandbox.faults.writes(resource="clusterversions", user="cvsync")
        quiet = await agent.commit({"README.md": "still unrelated\n"}, "docs")
        assert quiet.result is Result.IN_SYNC, quiet.message
        assert agent.sandbox.faults.writes(resource="clusterversions", user="cvsync") == writes


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
async def test_an_accepted_risk_goes_to_accept_risks_only_where_the_crd_declares_it(
    tmp_path: Path, feature_set: FeatureSet
) -> None:
    # 4.15.14 carries EtcdDefragStall (an Always rule). The scenario's operator refuses a
    # conditional update whose applying risks acceptRisks does not name, as the
    # TechPreviewNoUpgrade CRD documents; on Default it only warns, as the operator source does.
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    async with running_agent(
        tmp_path, "accept-risks-techpreview", feature_set=feature_set
    ) as agent:
        held = await agent.commit(
            {SPEC_PATH: spec(agent.cluster_id, agent.channel, "4.15.14")}, "update to 4.15.14"
        )
        assert held.upgrade is not None
        assert [row.reason for row in held.upgrade.decision.blocking] == ["RisksNotAccepted"]
        accepting = POLICY_HEAD + (
            "  acceptedRisks:\n"
            "    - {name: EtcdDefragStall, reason: small etcd, approvedBy: platform-team, "
            "expires: 2099-12-31}\n"
        )
        applied = await agent.commit({POLICY_PATH: accepting}, "accept EtcdDefragStall")
        assert applied.result is Result.APPLIED, applied.message
        update = agent.live()["spec"]["desiredUpdate"]
        assert (update["version"], update["image"]) == ("4.15.14", release_image("4.15.14"))
        assert not update["force"]
        if tech_preview:
            assert update["acceptRisks"] == [{"name": "EtcdDefragStall"}]
            # Written by cvsync, as part of its desiredUpdate.
            [cvsync] = [
                entry["fieldsV1"]["f:spec"]["f:desiredUpdate"]
                for entry in agent.live()["metadata"]["managedFields"]
                if entry["manager"] == "cvsync"
            ]
            assert list(cvsync["f:acceptRisks"]) == ['k:{"name":"EtcdDefragStall"}']
        else:
            assert "acceptRisks" not in update
        await until(lambda: ("4.15.14", "Completed") in history(agent), 60)
        entry = next(e for e in agent.live()["status"]["history"] if e["version"] == "4.15.14")
        if tech_preview:
            assert "acceptedRisks" not in entry  # accepted by name: no warning to record
        else:
            assert entry["acceptedRisks"].startswith(
                'Precondition "ClusterVersionRecommendedUpdate" failed because of '
                '"EtcdDefragStall": Update from 4.15.13 to 4.15.14 is not recommended'
            )
        # No apply was ever refused: a Default server answers 500 to a field it lacks.
        outcomes = agent.outcomes
        assert all(o.result is not Result.FAILED for o in outcomes), [o.message for o in outcomes]
        # The status file says what the cluster was asked to accept.
        await until(lambda: "4.15.14" in agent.status_file(), 30)
        written = json.dumps(YAML(typ="safe").load(agent.status_file())["desired"])
        assert ('"acceptRisks": ["EtcdDefragStall"]' in written) is tech_preview
        quiet = await agent.commit({"README.md": "unrelated\n"}, "docs")
        assert quiet.result is Result.IN_SYNC, quiet.message


async def test_an_apply_refused_for_accept_risks_makes_the_next_cycle_ask_the_schema_again(
    tmp_path: Path,
) -> None:
    scenario = "accept-risks-techpreview"
    async with running_agent(tmp_path, scenario, feature_set="TechPreviewNoUpgrade") as agent:
        accepting = POLICY_HEAD + (
            "  acceptedRisks:\n    - {name: EtcdDefragStall, reason: small etcd, "
            "approvedBy: platform-team, expires: 2099-12-31}\n"
        )
        await agent.commit({POLICY_PATH: accepting}, "accept EtcdDefragStall")
        # The agent has read the TechPreviewNoUpgrade schema; the server now serves the Default
        # CRD without the agent's connection noticing (no restart, no reconnect).
        agent.sandbox.api.feature_set = "Default"
        assert agent.sandbox.simulator is not None
        agent.sandbox.simulator.feature_set = "Default"
        refused = await agent.commit(
            {SPEC_PATH: spec(agent.cluster_id, agent.channel, "4.15.14")}, "update to 4.15.14"
        )
        assert refused.result is Result.FAILED
        assert ".spec.desiredUpdate.acceptRisks: field not declared in schema" in refused.message
        # The 500 made the adapter forget the schema; the retry reads it and sends no field.
        retried = await agent.outcome(lambda o: o.result is not Result.FAILED)
        assert retried.result is Result.APPLIED, retried.message
        update = agent.live()["spec"]["desiredUpdate"]
        assert update["version"] == "4.15.14"
        assert "acceptRisks" not in update


async def test_a_commit_during_a_blackout_waits_and_applies_the_moment_it_ends(
    tmp_path: Path,
) -> None:
    noon = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    clock = SteppedClock(noon)
    async with running_agent(tmp_path, "idle-4.15", clock=clock) as agent:
        target = agent.live()["status"]["availableUpdates"][0]["version"]
        blackout = POLICY_HEAD + "  blackouts:\n    - {start: 2026-12-24, end: 2026-12-24}\n"
        waiting = await agent.commit(
            {
                POLICY_PATH: blackout,
                SPEC_PATH: spec(agent.cluster_id, agent.channel, target),
            },
            f"update to {target}",
        )
        assert waiting.result is Result.WAITING
        assert waiting.reason == "UpgradeWaiting"
        assert waiting.upgrade is not None
        edge = datetime(2026, 12, 25, tzinfo=UTC)
        assert waiting.upgrade.window.next_change == edge
        assert "desiredUpdate" not in agent.live()["spec"]
        await until(lambda: bool(agent.events("UpgradeWaiting")))

        # An hour on, still inside the blackout: a resync changes nothing.
        await clock.move_to(noon + timedelta(hours=1))
        agent.runtime.trigger("resync", refresh_source=False)
        still = await agent.outcome(lambda o: True)
        assert still.result is Result.WAITING
        assert "desiredUpdate" not in agent.live()["spec"]

        # The blackout ends: the agent re-evaluates at the edge, with no trigger of ours.
        before = len(agent.outcomes)  # the cycle the edge starts may end before we look
        await clock.move_to(edge)
        opened = await agent.outcome(lambda o: o.result is not Result.WAITING, since=before)
        assert opened.result is Result.APPLIED, opened.message
        assert agent.live()["spec"]["desiredUpdate"]["version"] == target
        assert clock.now() == edge  # applied in the same (simulated) second the window opened


async def test_a_new_target_waits_for_the_maintenance_window_and_an_open_one_applies_it(
    tmp_path: Path,
) -> None:
    friday = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)  # 21:00 in Berlin
    clock = SteppedClock(friday)
    async with running_agent(tmp_path, "idle-4.15", clock=clock) as agent:
        target = agent.live()["status"]["availableUpdates"][0]["version"]
        window = (
            POLICY_HEAD + '  maintenanceWindows:\n    - {cron: "0 2 * * SAT", duration: 4h, '
            "timeZone: Europe/Berlin}\n"
        )
        waiting = await agent.commit(
            {POLICY_PATH: window, SPEC_PATH: spec(agent.cluster_id, agent.channel, target)},
            f"update to {target}",
        )
        assert waiting.result is Result.WAITING
        assert waiting.upgrade is not None
        opens = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # Saturday 02:00 CET
        assert waiting.upgrade.window.next_change == opens
        assert "the next opens 2026-12-05 02:00 CET" in waiting.message
        before = len(agent.outcomes)  # the cycle the edge starts may end before we look
        await clock.move_to(opens)
        opened = await agent.outcome(lambda o: o.result is not Result.WAITING, since=before)
        assert opened.result is Result.APPLIED, opened.message
        assert agent.live()["spec"]["desiredUpdate"]["version"] == target


async def test_a_forced_target_after_allow_force_ended_is_held_as_expired_naming_the_date(
    tmp_path: Path,
) -> None:
    clock = SteppedClock(datetime(2026, 12, 4, 12, 0, tzinfo=UTC))
    async with running_agent(tmp_path, "idle-4.15", clock=clock) as agent:
        target = agent.live()["status"]["availableUpdates"][0]["version"]
        ended = POLICY_HEAD + "  allowForce: {until: 2026-12-01, reason: signature store outage}\n"
        forced = spec(agent.cluster_id, agent.channel, target) + "    force: true\n"
        held = await agent.commit({POLICY_PATH: ended, SPEC_PATH: forced}, "force the update")
        assert held.result is Result.STALLED
        assert held.reason == "UpgradeBlocked"
        assert held.upgrade is not None
        assert [row.reason for row in held.upgrade.decision.blocking] == ["ForceAllowanceExpired"]
        assert "the policy allowed force until 2026-12-01" in held.message
        assert "set a new allowForce.until" in held.message
        assert "does not allow force" not in held.message
        assert "desiredUpdate" not in agent.live()["spec"]
        # The same words in the Event and the status file a person reads.
        await until(lambda: bool(agent.events("UpgradeBlocked")))
        event = agent.events("UpgradeBlocked")[0]["message"]
        expired = "ForceAllowanceExpired (allowForce has expired: the policy allowed force until"
        assert f"{expired} 2026-12-01)" in event
        await until(lambda: "ForceAllowanceExpired" in agent.status_file())
