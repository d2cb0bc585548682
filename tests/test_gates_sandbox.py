"""Each gate against the sandbox's operator simulator: the gates read the ClusterVersion the
simulator wrote for a scenario. Where a gate blocks a target, a plain apply of that target
(forced past cvsync, as `oc adm upgrade` would send it) shows what the real operator does with
it: some it refuses too (a blocking precondition, or a version it cannot resolve), and some
it takes, recording its warning in the history entry's acceptedRisks, as the real operator's
ClusterVersionRecommendedUpdate precondition never blocks. Where the gates pass, the simulator
accepts the target."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.model.gates import GateSettings, Verdict
from agent.sandbox.apiserver.handlers import APPLY_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.operator.releases import release_image
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.upgrade.gates import evaluate_gates

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
    ("scenario", "update", "gate", "reason", "refused_as"),
    [
        # pkg/payload/precondition/clusterversion/upgradeable.go: Upgradeable=False blocks a
        # minor update; overrides block even a patch update (operators up to 4.21).
        (
            "admin-ack-required",
            "4.16.5",
            "upgradeable",
            "NotUpgradeable",
            ("ReleaseAccepted", "PreconditionChecks"),
        ),
        (
            "overrides-set",
            "4.15.15",
            "upgradeable",
            "NotUpgradeable",
            ("ReleaseAccepted", "PreconditionChecks"),
        ),
        # No release 4.15.99: a version nothing offers makes the spec invalid (lib/validation).
        (
            "idle-4.15",
            "4.15.99",
            "recommended",
            "NotRecommended",
            ("Invalid", "InvalidClusterVersion"),
        ),
    ],
)
async def test_a_target_the_gates_block_that_the_simulated_operator_refuses_too(
    scenario: str, update: str, gate: str, reason: str, refused_as: tuple[str, str]
) -> None:
    async with Sandbox(SandboxOptions(scenario=scenario, time_scale=3000, tls=False)) as sandbox:
        decision = evaluate_gates(
            {"version": update}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert decision.action == "block"
        assert rows(decision)[gate] == (Verdict.BLOCK, reason)
        assert not await operator_moves_to(sandbox, update)
        kind, why = refused_as
        assert condition(live(sandbox), kind)["reason"] == why


@pytest.mark.parametrize(
    ("scenario", "target", "gate", "reason", "warning"),
    [
        ("conditional-risks", "4.16.3", "recommended", "RisksNotAccepted", "AzureNodeBootDelay"),
        (
            "update-service-unreachable",
            "4.15.15",
            "retrievedUpdates",
            "RecommendationsStale",
            "UnknownUpdate",
        ),
        ("no-channel", "4.15.15", "retrievedUpdates", "RecommendationsStale", "NoChannel"),
    ],
)
async def test_a_target_the_gates_block_that_the_real_operator_takes_with_a_warning(
    scenario: str, target: str, gate: str, reason: str, warning: str
) -> None:
    # pkg/payload/precondition/clusterversion/recommendedupdate.go: every failure of
    # ClusterVersionRecommendedUpdate is a NonBlockingWarning, so only cvsync's gate holds these.
    async with Sandbox(SandboxOptions(scenario=scenario, time_scale=3000, tls=False)) as sandbox:
        decision = evaluate_gates(
            {"version": target}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert decision.action == "block"
        assert rows(decision)[gate] == (Verdict.BLOCK, reason)
        bare = {"version": target, "image": release_image(target)}
        assert await operator_moves_to(sandbox, target, bare)
        entry = live(sandbox)["status"]["history"][0]
        assert entry["acceptedRisks"].startswith(
            f'Precondition "ClusterVersionRecommendedUpdate" failed because of "{warning}": '
        )
        assert condition(live(sandbox), "ReleaseAccepted")["reason"] == "PayloadLoaded"


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
        giant = evaluate_gates(
            {"version": "4.17.4"}, live(sandbox), GateSettings(), now=NOW, window_open=None
        )
        assert rows(giant)["giantHop"] == (Verdict.BLOCK, "GiantHop")
        assert giant.suggestion is not None
        assert "one minor version at a time: 4.15.12 → 4.16" in giant.suggestion
        # Asked for by image, the operator's ClusterVersionGiantHop precondition blocks it.
        bare = {"version": "4.17.4", "image": release_image("4.17.4")}
        assert not await operator_moves_to(sandbox, "4.17.4", bare)
        accepted = condition(live(sandbox), "ReleaseAccepted")
        assert accepted["reason"] == "PreconditionChecks"
        assert (
            '"ClusterVersionGiantHop" failed because of "MultipleMinorVersionsUpdate"'
            in (accepted["message"])
        )


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
