"""A reconciler driven one cycle at a time against the sandbox and a real git remote, for tests
that must decide exactly what happens between two cycles (someone's edit, a restart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitrepo import Remote

from agent.adapters.git import GitCloneSource
from agent.adapters.git_writer import StatusWriter
from agent.adapters.kube import KubeCluster
from agent.engine.reconciler import CycleOutcome, Reconciler
from agent.engine.writeback import WriteBack, agent_state
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox
from agent.settings import GitSettings, Settings

CLUSTER = "east"
SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
POLICY_PATH = f"clusters/{CLUSTER}/policy.yaml"


def spec_text(cluster_id: str, channel: str, version: str | None = None) -> str:
    text = (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
    )
    return text + (f"  desiredUpdate:\n    version: {version}\n" if version else "")


def live_object(sandbox: Sandbox) -> dict[str, Any]:
    found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
    assert found is not None
    return found


def edit_as(sandbox: Sandbox, manager: str, patch: dict[str, Any]) -> None:
    """An imperative write, as `oc patch --type=merge` (an Update under `manager`) makes it."""
    target = Target(CLUSTER_VERSIONS, "", "version")
    sandbox.api.patch(target, MERGE_PATCH, patch, WriteOptions(manager=manager))


def desired_update_owners(live: dict[str, Any]) -> dict[str, set[str]]:
    """Which leaves of spec.desiredUpdate each manager owns, read from the raw FieldsV1."""
    owners: dict[str, set[str]] = {}
    for entry in live["metadata"].get("managedFields") or ():
        node = (entry.get("fieldsV1") or {}).get("f:spec", {}).get("f:desiredUpdate", {})
        leaves = {name[2:] for name in node if name.startswith("f:")}
        if leaves:
            owners.setdefault(entry["manager"], set()).update(leaves)
    return owners


@dataclass
class Agent:
    """One cvsync process, as far as the cluster can tell: its own clone and its own client."""

    sandbox: Sandbox
    remote: Remote
    reconciler: Reconciler
    writeback: WriteBack | None

    def live(self) -> dict[str, Any]:
        return live_object(self.sandbox)

    def writes(self) -> int:
        return self.sandbox.faults.writes(resource="clusterversions", user="cvsync")

    async def commit(self, files: dict[str, str], message: str) -> CycleOutcome:
        """Commit and run the cycle that fetches it (as the webhook would trigger it)."""
        self.remote.commit(files, message)
        return await self.cycle(refresh_source=True)

    async def cycle(self, *, refresh_source: bool = False) -> CycleOutcome:
        outcome = await self.reconciler.cycle(refresh_source=refresh_source)
        if self.writeback is not None:
            # What the runtime hands the write-back after every cycle.
            state = agent_state(CLUSTER, outcome, self.reconciler.last_applied)
            await self.writeback.observe(self.reconciler.last_live, state)
        return outcome


@asynccontextmanager
async def running_agent(
    sandbox: Sandbox, remote: Remote, workdir: Path, *, write_back: bool = False
) -> AsyncIterator[Agent]:
    """A fresh agent (new clone, new client, no memory of any earlier one) until exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = sandbox.kubeconfig(workdir / "kubeconfig", user="cvsync")
    settings = Settings(
        cluster=CLUSTER,
        git=GitSettings(repo=remote.url, workdir=workdir, interval=3600),
        kubeconfig=kubeconfig,
    )
    source = GitCloneSource(remote.url, "main", workdir / "repo", (SPEC_PATH, POLICY_PATH))
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    writer = StatusWriter(remote.url, "main", workdir / "status", None) if write_back else None
    writeback = WriteBack(CLUSTER, writer, min_interval=0) if writer is not None else None
    try:
        yield Agent(sandbox, remote, Reconciler(settings, source, cluster), writeback)
    finally:
        await cluster.close()
        await source.close()
        if writer is not None:
            await writer.close()
