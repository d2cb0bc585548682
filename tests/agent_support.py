"""A running agent for end-to-end tests: its runtime, reconciler, git clone and status
write-back in this process, against the sandbox API server and its simulated operator,
with git commits on a real bare remote.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gitrepo import Remote, git

from agent.adapters.git import GitCloneSource
from agent.adapters.git_writer import StatusWriter
from agent.adapters.kube import KubeCluster
from agent.engine.reconciler import CycleOutcome, Reconciler
from agent.engine.runtime import Runtime
from agent.engine.writeback import WriteBack
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.crd_schema import FeatureSet
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, EVENTS
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

CLUSTER = "east"
SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
POLICY_PATH = f"clusters/{CLUSTER}/policy.yaml"
POLICY_HEAD = "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n"


def spec(cluster_id: str, channel: str, version: str | None = None) -> str:
    text = (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
    )
    return text + (f"  desiredUpdate:\n    version: {version}\n" if version else "")


@dataclass
class Agent:
    sandbox: Sandbox
    remote: Remote
    runtime: Runtime
    writeback: WriteBack
    cluster_id: str
    channel: str
    # Every cycle's outcome, oldest first: the runtime keeps only its recent ones, and an
    # update at the sandbox's speed runs dozens of cycles while a test looks away.
    outcomes: list[CycleOutcome] = field(default_factory=list)

    def live(self) -> dict[str, Any]:
        found = self.sandbox.store.get(self.sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return found

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [
            event
            for event in self.sandbox.store.list(EVENTS.id, "default")
            if event.get("reason") == reason
        ]

    def status_file(self) -> str:
        """The committed status file; "" until the first status commit lands."""
        git(self.remote.work, "fetch", "-q", "origin", "main")
        shown = subprocess.run(
            ["git", "show", f"origin/main:status/{CLUSTER}.yaml"],
            cwd=self.remote.work,
            capture_output=True,
            text=True,
            check=False,
        )
        return shown.stdout if shown.returncode == 0 else ""

    async def commit(self, files: dict[str, str], message: str) -> CycleOutcome:
        """Commit, then run one cycle that fetches it (as the webhook would), and return it."""
        sha = self.remote.commit(files, message)
        self.runtime.trigger("webhook", refresh_source=True)
        return await self.outcome(lambda o: o.attempted is not None and sha in str(o.attempted))

    async def outcome(
        self, wanted: Callable[[CycleOutcome], bool], since: int | None = None
    ) -> CycleOutcome:
        """The first cycle from now on (or after `since` cycles) that `wanted` accepts
        (cycles may also run for the live watch or the operator's status updates)."""
        seen = len(self.outcomes) if since is None else since
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            found = next((o for o in self.outcomes[seen:] if wanted(o)), None)
            if found is not None:
                return found
            assert asyncio.get_running_loop().time() < deadline, "no such cycle"
            await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Seeded:
    """A sandbox whose ClusterVersion the installer left, and a remote whose spec matches it."""

    sandbox: Sandbox
    remote: Remote
    cluster_id: str
    channel: str


@asynccontextmanager
async def seeded_cluster(
    tmp_path: Path,
    scenario: str,
    *,
    time_scale: float = 3000,
    feature_set: FeatureSet = "Default",
    **knobs: Any,
) -> AsyncIterator[Seeded]:
    options = SandboxOptions(scenario=scenario, time_scale=time_scale, feature_set=feature_set)
    async with Sandbox(options) as sandbox:
        assert sandbox.simulator is not None
        if knobs:
            sandbox.simulator.knobs = replace(sandbox.simulator.knobs, **knobs)
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        cluster_id, channel = live["spec"]["clusterID"], live["spec"]["channel"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec(cluster_id, channel)}, CLUSTER)
        yield Seeded(sandbox, remote, cluster_id, channel)


@asynccontextmanager
async def running_agent(
    tmp_path: Path,
    scenario: str,
    clock: Any = None,
    *,
    time_scale: float = 3000,
    feature_set: FeatureSet = "Default",
    webhook_secret: bytes | None = None,
    **knobs: Any,
) -> AsyncIterator[Agent]:
    async with (
        seeded_cluster(
            tmp_path, scenario, time_scale=time_scale, feature_set=feature_set, **knobs
        ) as seeded,
        agent_on(seeded, tmp_path / "agent", clock, webhook_secret) as agent,
    ):
        yield agent


@asynccontextmanager
async def agent_on(
    seeded: Seeded, workdir: Path, clock: Any = None, webhook_secret: bytes | None = None
) -> AsyncIterator[Agent]:
    """An agent with its own work directory on a seeded cluster: the first one, or another
    started after one stopped (a restart, a new leader)."""
    sandbox, remote = seeded.sandbox, seeded.remote
    kubeconfig = sandbox.kubeconfig(workdir.parent / f"kubeconfig-{workdir.name}", user="cvsync")
    settings = Settings(
        cluster=CLUSTER,
        git=GitSettings(repo=remote.url, workdir=workdir, interval=3600),
        kubeconfig=kubeconfig,
        http_port=0,
        resync_interval=3600,
    )
    paths = (SPEC_PATH, POLICY_PATH)
    source = GitCloneSource(remote.url, "main", workdir / "repo", paths)
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    writer = StatusWriter(remote.url, "main", workdir / "status", None)
    writeback = WriteBack(CLUSTER, writer, min_interval=0)
    reconciler = Reconciler(settings, source, cluster, clock=clock)
    outcomes: list[CycleOutcome] = []
    cycle = reconciler.cycle

    async def recorded(*, refresh_source: bool) -> CycleOutcome:
        outcome = await cycle(refresh_source=refresh_source)
        outcomes.append(outcome)
        return outcome

    reconciler.cycle = recorded  # type: ignore[method-assign]
    runtime = Runtime(
        settings,
        reconciler,
        cluster,
        writeback=writeback,
        events=cluster.events("default"),
        clock=clock,
        webhook_secret=webhook_secret,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await runtime.wait_for_cycles(1, timeout=20)
        yield Agent(
            sandbox, remote, runtime, writeback, seeded.cluster_id, seeded.channel, outcomes
        )
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await cluster.close()
        await source.close()
        await writer.close()


async def until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def history(agent: Agent) -> list[tuple[str, str]]:
    return [(e["version"], e["state"]) for e in agent.live()["status"].get("history", [])]
