"""desiredUpdate is one unit, end to end on the sandbox: after any write cvsync owns all of it or
none of it, and a newer target someone else set is forward drift, kept whether or not the
operator has started it.

Ownership facts used here are server-side apply's, as a real kube-apiserver keeps them
(recorded from kube-apiserver v1.36.2, realserver steps apply-desired-update and
merge-patch-human): an apply owns every leaf it sends; an Update (`oc patch`) that changes a
value takes that leaf from its owner; an apply that sends a value equal to the live one owns
it too, with no conflict.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gitrepo import Remote
from reconcile_support import (
    SPEC_PATH,
    desired_update_owners,
    edit_as,
    live_object,
    running_agent,
    spec_text,
)

from agent.engine.reconciler import Result
from agent.model.drift import DriftKind
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.server import Sandbox, SandboxOptions

WHOLE = {"architecture", "force", "image", "version"}


def image_of(live: dict[str, Any], version: str) -> str:
    image: str = next(
        u["image"] for u in live["status"]["availableUpdates"] if u["version"] == version
    )
    return image


def condition(live: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in live["status"].get("conditions", ()) if c["type"] == kind), None)


async def test_git_catching_up_with_a_target_oc_set_takes_the_whole_desired_update_over(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        cluster_id = live_object(sandbox)["spec"]["clusterID"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec_text(cluster_id, "stable-4.15")}, "east")
        async with running_agent(sandbox, remote, tmp_path / "agent") as agent:
            assert (await agent.cycle(refresh_source=True)).result is Result.IN_SYNC
            first = await agent.commit(
                {SPEC_PATH: spec_text(cluster_id, "stable-4.15", "4.15.13")}, "to 4.15.13"
            )
            assert first.result is Result.APPLIED, first.message
            assert desired_update_owners(agent.live()) == {"cvsync": WHOLE}

            # `oc adm upgrade --to` style: oc moves version and image on.
            image = image_of(agent.live(), "4.15.15")
            edit_as(
                sandbox, "oc", {"spec": {"desiredUpdate": {"version": "4.15.15", "image": image}}}
            )
            split = desired_update_owners(agent.live())
            assert split == {"cvsync": {"architecture", "force"}, "oc": {"image", "version"}}

            caught_up = await agent.commit(
                {SPEC_PATH: spec_text(cluster_id, "stable-4.15", "4.15.15")}, "to 4.15.15"
            )
            assert caught_up.result is Result.APPLIED, caught_up.message
            assert "takes over .spec.desiredUpdate" in caught_up.message
            update = agent.live()["spec"]["desiredUpdate"]
            assert (update["version"], update["image"]) == ("4.15.15", image)
            # cvsync owns the whole unit now; oc keeps a share of the values it set.
            assert desired_update_owners(agent.live())["cvsync"] == WHOLE
            writes = agent.writes()
            again = await agent.cycle()
            assert again.result is Result.IN_SYNC, again.message
            assert agent.writes() == writes


async def test_a_newer_target_set_by_someone_else_is_kept_before_the_operator_starts_it(
    tmp_path: Path,
) -> None:
    # Upgradeable=False (admin-ack) makes the operator refuse 4.16 at its preconditions:
    # the target stays in spec with no history entry, as one it has not started.
    async with Sandbox(SandboxOptions(scenario="admin-ack-required")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        live = live_object(sandbox)
        cluster_id, channel = live["spec"]["clusterID"], live["spec"]["channel"]
        remote = Remote(tmp_path / "git")
        # git pins the version the cluster runs, as a repository does after an update.
        remote.commit({SPEC_PATH: spec_text(cluster_id, channel, "4.15.12")}, "east")
        async with running_agent(sandbox, remote, tmp_path / "agent") as agent:
            first = await agent.cycle(refresh_source=True)
            assert first.result is Result.APPLIED, first.message
            assert agent.live()["spec"]["desiredUpdate"]["version"] == "4.15.12"

            image = image_of(agent.live(), "4.16.5")
            edit_as(
                sandbox, "oc", {"spec": {"desiredUpdate": {"version": "4.16.5", "image": image}}}
            )
            await until_refused(sandbox)
            assert all(e["version"] != "4.16.5" for e in agent.live()["status"]["history"])

            writes = agent.writes()
            outcome = await agent.cycle()
            assert agent.live()["spec"]["desiredUpdate"]["version"] == "4.16.5", outcome.message
            assert agent.writes() == writes
            (item,) = outcome.drift.items
            assert (item.path, item.kind) == (".spec.desiredUpdate", DriftKind.FORWARD)
            assert '"oc" set the target to 4.16.5' in item.detail
            assert "has not started it" in item.detail
            assert "RollbackRefused" in outcome.message
            assert outcome.result is Result.DRIFT_REPORTED


async def until_refused(sandbox: Sandbox) -> None:
    """Wait for the simulated operator to answer the new target with ReleaseAccepted=False."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        accepted = condition(live_object(sandbox), "ReleaseAccepted")
        if accepted is not None and accepted["status"] == "False":
            assert accepted["reason"] == "PreconditionChecks", accepted
            return
        assert asyncio.get_running_loop().time() < deadline, accepted
        await asyncio.sleep(0.02)
