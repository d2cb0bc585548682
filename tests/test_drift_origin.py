"""Whose change is it: a value git changed is applied (`Applied`); only a value someone else
changed away from what git had is drift taken back (`DriftCorrected`), and only that is what a
`report` drift action leaves alone. And what cvsync last applied survives a restart in the
status file (write-back carries its own record on; cvsync writes nothing else to the cluster).

End to end on the sandbox with real git remotes; each agent is a fresh clone and client, so a
second one on the same cluster is what cvsync is after a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from gitrepo import Remote, git
from reconcile_support import (
    POLICY_PATH,
    SPEC_PATH,
    edit_as,
    live_object,
    running_agent,
    spec_text,
)
from ruamel.yaml import YAML

from agent.engine.reconciler import Result
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.server import Sandbox, SandboxOptions

REPORT_CHANNEL = (
    "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n  drift: {channel: report}\n"
)


@dataclass
class Setup:
    sandbox: Sandbox
    remote: Remote
    cluster_id: str
    tmp_path: Path

    def spec(self, channel: str) -> dict[str, str]:
        return {SPEC_PATH: spec_text(self.cluster_id, channel)}

    def channel(self) -> str:
        return str(live_object(self.sandbox)["spec"]["channel"])


@asynccontextmanager
async def cluster_and_repo(tmp_path: Path, channel: str = "stable-4.15") -> AsyncIterator[Setup]:
    """The idle-4.15 cluster (installed on stable-4.15) and a repository declaring `channel`."""
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        cluster_id = live_object(sandbox)["spec"]["clusterID"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec_text(cluster_id, channel)}, "east")
        yield Setup(sandbox, remote, cluster_id, tmp_path)


def status_file(remote: Remote) -> dict[str, object]:
    git(remote.work, "fetch", "-q", "origin", "main")
    shown = git(remote.work, "show", "origin/main:status/east.yaml")
    loaded = YAML(typ="safe").load(shown)
    assert isinstance(loaded, dict)
    return loaded


def head(remote: Remote) -> str:
    git(remote.work, "fetch", "-q", "origin", "main")
    return git(remote.work, "rev-parse", "origin/main")


async def test_a_channel_git_changed_is_applied_not_taken_back_from_the_installer(
    tmp_path: Path,
) -> None:
    async with (
        cluster_and_repo(tmp_path) as setup,
        running_agent(setup.sandbox, setup.remote, tmp_path / "agent") as agent,
    ):
        assert (await agent.cycle(refresh_source=True)).result is Result.IN_SYNC
        applied = await agent.commit(setup.spec("fast-4.15"), "switch to fast")
        assert setup.channel() == "fast-4.15"
        # The installer (cluster-bootstrap) owned the value, so the apply had to force it:
        # still git's change, not drift.
        assert (applied.result, applied.reason) == (Result.APPLIED, "Applied"), applied.message
        assert "took back" not in applied.message
        assert applied.corrected == (".spec.channel",)

        edit_as(setup.sandbox, "oc", {"spec": {"channel": "candidate-4.15"}})
        corrected = await agent.cycle()
        assert (corrected.result, corrected.reason) == (Result.APPLIED, "DriftCorrected")
        assert corrected.message.startswith('took back .spec.channel from "oc"; ')
        assert setup.channel() == "fast-4.15"


async def test_a_new_agent_s_first_apply_over_the_installer_s_value_is_git_s_change(
    tmp_path: Path,
) -> None:
    async with (
        cluster_and_repo(tmp_path, channel="fast-4.15") as setup,
        running_agent(setup.sandbox, setup.remote, tmp_path / "agent") as agent,
    ):
        first = await agent.cycle(refresh_source=True)
        assert (first.result, first.reason) == (Result.APPLIED, "Applied"), first.message
        assert setup.channel() == "fast-4.15"


async def test_a_hand_edit_made_while_cvsync_was_down_is_taken_back_after_the_restart(
    tmp_path: Path,
) -> None:
    async with cluster_and_repo(tmp_path, channel="fast-4.15") as setup:
        sandbox = setup.sandbox
        sandbox.api.clock = lambda: "2026-12-01T10:00:00Z"
        async with running_agent(sandbox, setup.remote, tmp_path / "first") as first:
            assert (await first.cycle(refresh_source=True)).result is Result.APPLIED
        # cvsync is down; an hour later someone edits the channel by hand.
        sandbox.api.clock = lambda: "2026-12-01T11:00:00Z"
        edit_as(sandbox, "oc", {"spec": {"channel": "candidate-4.15"}})
        async with running_agent(sandbox, setup.remote, tmp_path / "second") as second:
            outcome = await second.cycle(refresh_source=True)
            assert (outcome.result, outcome.reason) == (Result.APPLIED, "DriftCorrected")
            assert outcome.message.startswith('took back .spec.channel from "oc"; ')
        assert setup.channel() == "fast-4.15"


async def test_after_a_restart_the_status_file_still_names_the_revision_last_applied(
    tmp_path: Path,
) -> None:
    async with cluster_and_repo(tmp_path) as setup:
        async with running_agent(
            setup.sandbox, setup.remote, tmp_path / "first", write_back=True
        ) as first:
            await first.cycle(refresh_source=True)
            applied = await first.commit(setup.spec("fast-4.15"), "switch to fast")
            assert applied.result is Result.APPLIED
        revision = f"main@sha1:{applied.revision.sha}" if applied.revision else ""
        assert status_file(setup.remote)["cvsync"]["lastApplied"] == revision  # type: ignore[index]
        # Commits after it (status commits, docs) do not change what was applied last.
        setup.remote.commit({"README.md": "notes\n"}, "docs")
        assert head(setup.remote) != applied.revision.sha  # type: ignore[union-attr]

        async with running_agent(
            setup.sandbox, setup.remote, tmp_path / "second", write_back=True
        ) as second:
            writes = second.writes()
            again = await second.cycle(refresh_source=True)
            assert again.result is Result.IN_SYNC, again.message
            assert second.writes() == writes
            # The restarted agent has applied nothing yet; write-back carries its own record on.
            assert second.reconciler.last_applied is None
        agent = status_file(setup.remote)["cvsync"]
        assert agent["lastApplied"] == revision  # type: ignore[index]


async def test_with_drift_report_git_s_own_change_to_the_field_still_applies(
    tmp_path: Path,
) -> None:
    async with cluster_and_repo(tmp_path) as setup:
        setup.remote.commit({POLICY_PATH: REPORT_CHANNEL}, "report channel drift")
        async with running_agent(setup.sandbox, setup.remote, tmp_path / "agent") as agent:
            assert (await agent.cycle(refresh_source=True)).result is Result.IN_SYNC
            edit_as(setup.sandbox, "oc", {"spec": {"channel": "candidate-4.15"}})
            reported = await agent.cycle()
            assert reported.result is Result.DRIFT_REPORTED, reported.message
            assert "reported, not corrected" in reported.message
            assert setup.channel() == "candidate-4.15"

            applied = await agent.commit(setup.spec("fast-4.15"), "switch to fast")
            assert (applied.result, applied.reason) == (Result.APPLIED, "Applied"), applied.message
            assert setup.channel() == "fast-4.15"
            settled = await agent.cycle()
            assert settled.result is Result.IN_SYNC, settled.message

            # Someone else's edit after that is reported again, not corrected.
            edit_as(setup.sandbox, "oc", {"spec": {"channel": "candidate-4.15"}})
            again = await agent.cycle()
            assert again.result is Result.DRIFT_REPORTED, again.message
            assert setup.channel() == "candidate-4.15"
