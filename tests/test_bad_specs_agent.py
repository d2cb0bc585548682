"""A spec that validates must be one a real server and kubectl accept with the same meaning:
the agent refuses, before any write, what the API server would reject or read otherwise, and
says what is wrong with a file that holds no ClusterVersion.

End to end on the sandbox with a real git remote, one cycle at a time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gitrepo import Remote
from reconcile_support import SPEC_PATH, live_object, running_agent, spec_text

from agent.engine.reconciler import Result
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.server import Sandbox, SandboxOptions

GOOD = spec_text("CLUSTER_ID", "stable-4.15")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # Before: the agent applied it and the API server answered 422.
        (
            GOOD + "  capabilities:\n"
            "    baselineCapabilitySet: vCurrent\n"
            "    additionalEnabledCapabilities: [null]\n",
            ":9:37: null-list-item",
        ),
        (GOOD + "  overrides: [null]\n", ":7:15: null-list-item"),
        # Before: applied as the string "on"; `oc apply` of the same file sends a boolean.
        (spec_text("CLUSTER_ID", "on"), ":6:12: yaml-ambiguous-value"),
        (
            GOOD + '  desiredUpdate:\n    version: "4.15.13\\n"\n',
            ":8:14: value-invisible-characters",
        ),
        (spec_text('"CLUSTER_ID\\n"', "stable-4.15"), ":5:14: value-invisible-characters"),
        # Before: "does not exist", of a file that is there.
        ("---\n", ":1:1: file-empty: the file holds no ClusterVersion"),
        ("~\n", ":1:1: file-empty: the file holds no ClusterVersion"),
        (
            "apiVersion: v1\nkind: List\nitems: []\n",
            ":1:1: file-empty: the file holds no ClusterVersion",
        ),
    ],
    ids=[
        "capabilities-null-item",
        "overrides-null-item",
        "channel-on",
        "version-newline",
        "cluster-id-newline",
        "separator-only",
        "tilde-only",
        "empty-list",
    ],
)
async def test_a_spec_a_real_server_or_kubectl_would_take_otherwise_never_reaches_the_cluster(
    tmp_path: Path, template: str, expected: str
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        cluster_id = live_object(sandbox)["spec"]["clusterID"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: GOOD.replace("CLUSTER_ID", cluster_id)}, "east")
        async with running_agent(sandbox, remote, tmp_path / "agent") as agent:
            assert (await agent.cycle(refresh_source=True)).result is Result.IN_SYNC
            before = live_object(sandbox)["spec"]
            text = template.replace("CLUSTER_ID", cluster_id)
            outcome = await agent.commit({SPEC_PATH: text}, "a bad spec")
            assert (outcome.result, outcome.reason) == (Result.STALLED, "InvalidSpec")
            assert f"{SPEC_PATH}{expected}" in outcome.message
            assert "does not exist" not in outcome.message
            assert agent.writes() == 0
            assert live_object(sandbox)["spec"] == before
