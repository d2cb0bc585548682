"""Each gate against the sandbox's operator simulator: the gates read the ClusterVersion the
simulator wrote for a scenario, and where a gate blocks a target, the simulator (which
plays the cluster-version operator's preconditions) refuses it too when forced past cvsync
with a plain apply; where the gates pass, the simulator accepts it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.model.gates import GateSettings, Verdict
from agent.pipeline.gates import evaluate_gates
from agent.sandbox.handlers import APPLY_PATCH, WriteOptions
from agent.sandbox.resources import CLUSTER_VERSIONS
from agent.sandbox.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions

NOW = datetime(2026, 12, 1, tzinfo=UTC)
VERSION = Target(CLUSTER_VERSIONS, "", "version")
SETTLE = 1.0  # seconds of simulated-operator time (x3000) after it read the spec


def live(sandbox: Sandbox) -> dict[str, Any]:
    found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
    assert found is not None
    return found


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == type_)


async def operator_moves_to(
    sandbox: Sandbox, version: str, update: dict[str, Any] | None = None
) -> bool:
    """Apply a bare target as another client would (forced past cvsync), let the simulator
    act, and say whether it started the update: the preconditions it plays accepted it."""
    sandbox.api.patch(
        VERSION,
        APPLY_PATCH,
        {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"desiredUpdate": update or {"version": version}},
        },
        WriteOptions(manager="someone", force=True),
    )
    loop = asyncio.get_running_loop()
    deadline, settled = loop.time() + 20, None
    while loop.time() < deadline:
        obj = live(sandbox)
        if obj["status"]["desired"].get("version") == version:
            return True
        caught_up = obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
        if caught_up and settled is None:
            settled = loop.time()
        if settled is not None and loop.time() - settled > SETTLE:
            return False  # the operator has read the spec and did not move
        await asyncio.sleep(0.05)
    raise AssertionError(f"the simulator never read the spec: {live(sandbox)['status']}")


def rows(decision: Any) -> dict[str, tuple[Verdict, str]]:
    return {row.gate: (row.verdict, row.reason) for row in decision.rows}


@pytest.mark.parametrize(
    ("scenario", "target", "gate", "reason"),
    [
        ("conditional-risks", "4.16.3", "recommended", "RisksNotAccepted"),
        ("admin-ack-required", "4.16.5", "upgradeable", "NotUpgradeable"),
        ("update-service-unreachable", "4.15.15", "retrievedUpdates", "RecommendationsStale"),
        ("no-channel", "4.15.15", "retrievedUpdates", "RecommendationsStale"),
        ("overrides-set", "4.15.15", "upgradeable", "NotUpgradeable"),
        ("idle-4.15", "4.15.99", "recommended", "NotRecommended"),
    ],
)
async def test_a_blocked_target_is_one_the_simulated_operator_refuses(
    scenario: str, target: str, gate: str, reason: str
) -> None:
    async with Sandbox(SandboxOptions(scenario=scenario, time_scale=3000, tls=False)) as sandbox:
        decision = evaluate_gates(
            {"version": target}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert decision.action == "block"
        assert rows(decision)[gate] == (Verdict.BLOCK, reason)
        assert not await operator_moves_to(sandbox, target)


@pytest.mark.parametrize(
    ("scenario", "target"),
    [
        ("idle-4.15", "4.15.15"),
        ("admin-ack-required", "4.15.15"),  # Upgradeable=False does not hold a z-stream
        ("conditional-risks", "4.16.6"),
    ],
)
async def test_a_target_the_gates_pass_is_one_the_simulated_operator_accepts(
    scenario: str, target: str
) -> None:
    async with Sandbox(SandboxOptions(scenario=scenario, time_scale=3000, tls=False)) as sandbox:
        decision = evaluate_gates(
            {"version": target}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert decision.action == "apply", decision.rows
        assert decision.resolved is not None
        assert "@sha256:" in decision.resolved["image"]
        assert await operator_moves_to(sandbox, target)


async def test_a_failing_update_blocks_a_retarget_and_a_giant_hop_is_refused() -> None:
    async with Sandbox(SandboxOptions(scenario="failing-update", time_scale=3000)) as sandbox:
        failing = live(sandbox)
        assert condition(failing, "Failing")["status"] == "True"
        decision = evaluate_gates(
            {"version": "4.15.15"}, failing, GateSettings(), now=NOW, window_open=None
        )
        verdicts = rows(decision)
        assert verdicts["failing"] == (Verdict.BLOCK, "ClusterFailing")
        assert verdicts["progressing"] == (Verdict.BLOCK, "UpdateInProgress")
        allowed = GateSettings(allow_retarget_while_progressing=True)
        retarget = evaluate_gates(
            {"version": "4.15.15"}, failing, allowed, now=NOW, window_open=None
        )
        assert rows(retarget)["progressing"] == (Verdict.WARN, "RetargetWhileProgressing")
        assert retarget.action == "block"  # still failing
    async with Sandbox(SandboxOptions(scenario="idle-4.15", time_scale=3000)) as sandbox:
        simulator = sandbox.simulator
        assert simulator is not None
        simulator.knobs = replace(simulator.knobs, block_not_recommended=False)
        giant = evaluate_gates(
            {"version": "4.17.4"}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert rows(giant)["giantHop"] == (Verdict.BLOCK, "GiantHop")
        assert giant.suggestion is not None
        assert "one minor version at a time: 4.15.12 → 4.16" in giant.suggestion
        assert not await operator_moves_to(sandbox, "4.17.4")


async def test_a_rollback_asked_for_twice_leaves_a_failing_update_and_the_simulator_follows() -> (
    None
):
    async with Sandbox(SandboxOptions(scenario="failing-update", time_scale=3000)) as sandbox:
        failing = live(sandbox)
        plain = evaluate_gates(
            {"version": "4.15.12"}, failing, GateSettings(), now=NOW, window_open=None
        )
        assert rows(plain)["rollback"] == (Verdict.BLOCK, "RollbackRefused")
        asked = evaluate_gates(
            {"version": "4.15.12"},
            failing,
            GateSettings(),
            now=NOW,
            window_open=None,
            annotations={"cvsync.io/allow-rollback-to": "4.15.12"},
        )
        assert asked.action == "apply", asked.rows
        verdicts = rows(asked)
        assert verdicts["rollback"] == (Verdict.WARN, "RollbackAllowed")
        assert verdicts["failing"] == (Verdict.WARN, "RollbackFromFailing")
        assert verdicts["recommended"] == (Verdict.WARN, "RollbackNotOffered")
        assert asked.resolved is not None
        history_image = next(
            e["image"] for e in failing["status"]["history"] if e["version"] == "4.15.12"
        )
        assert asked.resolved["image"] == history_image  # pinned to what it ran before
        assert await operator_moves_to(sandbox, "4.15.12", dict(asked.resolved))


async def test_force_is_break_glass_the_policy_must_allow_on_a_digest() -> None:
    async with Sandbox(SandboxOptions(scenario="no-channel", time_scale=3000)) as sandbox:
        cluster = live(sandbox)
        image = next(e["image"] for e in cluster["status"]["history"] if e["state"] == "Completed")
        later = datetime(2027, 1, 1, tzinfo=UTC)
        digest = image.split("@")[0] + "@sha256:" + "e" * 64
        wanted = {"version": "4.15.15", "image": digest, "force": True}
        refused = evaluate_gates(wanted, cluster, GateSettings(), now=NOW, window_open=None)
        assert rows(refused)["force"] == (Verdict.BLOCK, "ForceNotAllowed")
        allowed = GateSettings(allow_not_recommended=True, allow_force_until=later)
        tag = {**wanted, "image": image.split("@")[0] + ":4.15.15-x86_64"}
        untagged = evaluate_gates(tag, cluster, allowed, now=NOW, window_open=None)
        assert rows(untagged)["force"] == (Verdict.BLOCK, "ForceNeedsDigest")
        expired = evaluate_gates(wanted, cluster, allowed, now=later, window_open=None)
        assert rows(expired)["force"] == (Verdict.BLOCK, "ForceAllowanceExpired")
