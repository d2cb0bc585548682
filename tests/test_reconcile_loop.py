"""The reconcile loop end to end, in process: the sandbox cluster, a real git remote, the
real adapters, and the runtime's triggers (webhook, live watch, resync)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from gitrepo import Remote

from agent.adapters.git import GitCloneSource
from agent.adapters.kube import KubeCluster
from agent.engine.bootstrap import run_agent
from agent.engine.reconciler import CycleOutcome, Reconciler, Result
from agent.engine.runtime import Runtime
from agent.sandbox.apiserver.access import FULL_ACCESS, Rule
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

SPEC_PATH = "clusters/east/clusterversion.yaml"
SECRET = b"webhook-secret"


def spec_text(cluster_id: str, channel: str, extra: str = "") -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n{extra}"
    )


@dataclass
class Loop:
    sandbox: Sandbox
    remote: Remote
    runtime: Runtime
    cluster_id: str

    def live(self) -> dict[str, object]:
        found = self.sandbox.store.get(self.sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return found

    def channel(self) -> object:
        spec = self.live()["spec"]
        assert isinstance(spec, dict)
        return spec.get("channel")

    def cvsync_writes(self) -> int:
        return self.sandbox.faults.writes(resource="clusterversions", user="cvsync")

    async def push_and_notify(self, text: str, message: str) -> None:
        self.remote.commit({SPEC_PATH: text}, message)
        body = b'{"ref": "refs/heads/main"}'
        signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        url = f"http://127.0.0.1:{self.runtime.http_port}/hooks/git"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers={"X-Hub-Signature-256": signature}) as response,
        ):
            assert response.status == 202

    async def settle(self, predicate: object, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():  # type: ignore[operator]
            assert asyncio.get_running_loop().time() < deadline, self.runtime.last_outcome
            await asyncio.sleep(0.02)


def reason_is(loop: Loop, reason: str) -> bool:
    """Whether a recent cycle ended with `reason` (later in-sync cycles may follow it)."""
    return any(outcome.reason == reason for outcome in loop.runtime.recent_outcomes)


def recent(loop: Loop, reason: str) -> CycleOutcome:
    return next(o for o in reversed(loop.runtime.recent_outcomes) if o.reason == reason)


def count(loop: Loop, reason: str) -> int:
    return sum(1 for outcome in loop.runtime.recent_outcomes if outcome.reason == reason)


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    options = SandboxOptions(scenario="idle-4.15", time_scale=60)
    async with Sandbox(options) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        cluster_id = live["spec"]["clusterID"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec_text(cluster_id, "stable-4.15")}, "add east")
        secret_file = tmp_path / "webhook-secret"
        secret_file.write_bytes(SECRET)
        settings = Settings(
            cluster="east",
            git=GitSettings(repo=remote.url, ref="main", workdir=tmp_path / "work", interval=3600),
            kubeconfig=kubeconfig,
            http_port=0,
            webhook_secret_file=secret_file,
        )
        stop = asyncio.Event()
        started: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(run_agent(settings, stop, started))
        runtime = await asyncio.wait_for(started, 10)
        await asyncio.wait_for(runtime.started.wait(), 10)
        await runtime.wait_for_cycles(1, timeout=10)
        try:
            yield Loop(sandbox, remote, runtime, cluster_id)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def test_a_spec_already_in_line_makes_no_write(loop: Loop) -> None:
    assert loop.runtime.last_outcome is not None
    assert loop.runtime.last_outcome.result is Result.IN_SYNC
    assert loop.cvsync_writes() == 0


async def test_a_pushed_commit_is_applied_after_the_webhook(loop: Loop) -> None:
    await loop.push_and_notify(spec_text(loop.cluster_id, "fast-4.15"), "switch to fast")
    await loop.settle(lambda: loop.channel() == "fast-4.15" and reason_is(loop, "Applied"))
    managers = {entry["manager"] for entry in loop.live()["metadata"]["managedFields"]}  # type: ignore[index]
    assert "cvsync" in managers
    outcome = recent(loop, "Applied")
    # The installer wrote the channel imperatively, as managedFields say: cvsync takes it
    # with one forced apply, no refused one first. git changed the value, so it is git's
    # change applied, not drift taken back from the installer.
    assert outcome.result is Result.APPLIED
    assert "took back" not in outcome.message
    assert loop.cvsync_writes() == 1


async def test_a_live_edit_by_hand_is_put_back(loop: Loop) -> None:
    await loop.push_and_notify(spec_text(loop.cluster_id, "fast-4.15"), "switch to fast")
    await loop.settle(lambda: loop.channel() == "fast-4.15" and reason_is(loop, "Applied"))
    corrected = count(loop, "DriftCorrected")
    loop.sandbox.api.patch(
        Target(CLUSTER_VERSIONS, "", "version"),
        MERGE_PATCH,
        {"spec": {"channel": "candidate-4.15"}},
        WriteOptions(manager="oc"),
    )
    assert loop.channel() == "candidate-4.15"
    await loop.settle(lambda: count(loop, "DriftCorrected") > corrected)
    assert loop.channel() == "fast-4.15"
    outcome = recent(loop, "DriftCorrected")
    assert (outcome.result, outcome.reason) == (Result.APPLIED, "DriftCorrected")
    assert '.spec.channel from "oc"' in outcome.message


async def test_an_invalid_commit_never_reaches_the_cluster(loop: Loop) -> None:
    broken = spec_text(loop.cluster_id, "fast-4.15", "  chanel: oops\n")
    await loop.push_and_notify(broken, "a typo")
    await loop.settle(lambda: reason_is(loop, "InvalidSpec"))
    outcome = recent(loop, "InvalidSpec")
    assert (outcome.result, outcome.reason) == (Result.STALLED, "InvalidSpec")
    assert f"{SPEC_PATH}:8:3: unknown-field" in outcome.message
    assert loop.channel() == "stable-4.15"
    assert loop.cvsync_writes() == 0


async def test_another_clusters_spec_is_never_applied(loop: Loop) -> None:
    other = spec_text("0f9c8a4e-3b1d-4c2a-9e7f-5a6b7c8d9e01", "fast-4.16")
    await loop.push_and_notify(other, "copied from another cluster")
    await loop.settle(lambda: reason_is(loop, "ClusterIDMismatch"))
    outcome = recent(loop, "ClusterIDMismatch")
    assert (outcome.result, outcome.reason) == (Result.STALLED, "ClusterIDMismatch")
    assert loop.cvsync_writes() == 0


def other_gitops_applies_a_channel(loop: Loop) -> None:
    """Another GitOps tool takes .spec.channel by its own server-side apply."""
    body = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"channel": "eus-4.16"},
    }
    loop.sandbox.api.patch(
        Target(CLUSTER_VERSIONS, "", "version"),
        "application/apply-patch+yaml",
        body,
        WriteOptions(manager="other-gitops", force=True),
    )


async def test_a_conflict_with_another_applier_is_reported_not_forced(loop: Loop) -> None:
    other_gitops_applies_a_channel(loop)
    await loop.settle(lambda: reason_is(loop, "ApplyConflict"))
    outcome = recent(loop, "ApplyConflict")
    assert outcome.message == '.spec.channel is owned by "other-gitops"'
    assert loop.channel() == "eus-4.16"
    # One refused apply; later cycles do not repeat it while nothing relevant changes.
    for _ in range(3):
        loop.runtime.trigger("resync", refresh_source=False)
        await asyncio.sleep(0.1)
    assert loop.cvsync_writes() == 1


async def test_a_thousand_resync_cycles_with_nothing_changed_make_no_write(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec_text(live["spec"]["clusterID"], "stable-4.15")}, "east")
        settings = Settings(cluster="east", git=GitSettings(repo=remote.url), kubeconfig=kubeconfig)
        source = GitCloneSource(remote.url, "main", tmp_path / "clone", (SPEC_PATH,))
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        try:
            reconciler = Reconciler(settings, source, cluster)
            first = await reconciler.cycle(refresh_source=True)
            assert first.result is Result.IN_SYNC
            for _ in range(1000):
                outcome = await reconciler.cycle(refresh_source=False)
                assert outcome.result is Result.IN_SYNC
        finally:
            await cluster.close()
            await source.close()
        assert sandbox.faults.writes(resource="clusterversions", user="cvsync") == 0
        assert sandbox.faults.total("get", "clusterversions", "cvsync") == 1001


async def test_metrics_and_readiness_report_the_cycles(loop: Loop) -> None:
    await loop.push_and_notify(spec_text(loop.cluster_id, "fast-4.15"), "switch to fast")
    await loop.settle(lambda: loop.channel() == "fast-4.15")
    base = f"http://127.0.0.1:{loop.runtime.http_port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/readyz") as ready:
            assert ready.status == 200
        async with session.get(f"{base}/metrics") as response:
            text = await response.text()
    assert "cvsync_applies_total 1.0" in text
    assert 'cvsync_cycles_total{result="Applied"} 1.0' in text
    assert 'cvsync_last_applied_revision_info{revision="main@sha1:' in text
    fetches = [
        line
        for line in text.splitlines()
        if line.startswith("cvsync_git_fetch_duration_seconds_count")
    ]
    assert fetches
    assert float(fetches[0].split()[-1]) >= 2


async def test_events_record_applies_and_deduplicate_a_repeating_conflict(loop: Loop) -> None:
    await loop.push_and_notify(spec_text(loop.cluster_id, "fast-4.15"), "switch to fast")
    await loop.settle(lambda: loop.channel() == "fast-4.15")
    other_gitops_applies_a_channel(loop)
    await loop.settle(lambda: reason_is(loop, "ApplyConflict"))
    for _ in range(3):
        loop.runtime.trigger("resync", refresh_source=False)
        await asyncio.sleep(0.1)
    events = loop.sandbox.store.list("/events", "default")
    by_reason = {event["reason"]: event for event in events}
    assert by_reason["Applied"]["type"] == "Normal"
    assert by_reason["Applied"]["involvedObject"]["kind"] == "ClusterVersion"
    conflict = by_reason["ApplyConflict"]
    assert conflict["type"] == "Warning"
    assert conflict["message"] == '.spec.channel is owned by "other-gitops"'
    assert conflict["count"] >= 2
    assert sum(1 for event in events if event["reason"] == "ApplyConflict") == 1


async def test_without_watch_permission_the_agent_keeps_reconciling_on_other_triggers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules(
            "cvsync",
            [Rule.of(["get", "patch"], ["config.openshift.io"], ["clusterversions"])],
        )
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec_text(live["spec"]["clusterID"], "fast-4.15")}, "east")
        settings = Settings(
            cluster="east",
            git=GitSettings(repo=remote.url, workdir=tmp_path / "work", interval=3600),
            kubeconfig=kubeconfig,
            http_port=0,
        )
        source = GitCloneSource(remote.url, "main", tmp_path / "work" / "repo", (SPEC_PATH,))
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        runtime = Runtime(settings, Reconciler(settings, source, cluster), cluster)
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        try:
            await runtime.wait_for_cycles(1, timeout=10)
            channel = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert channel is not None
            assert channel["spec"]["channel"] == "fast-4.15"
            deadline = asyncio.get_running_loop().time() + 5
            while "the ClusterVersion watch stopped" not in caplog.text:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            cycles = runtime.cycles
            runtime.trigger("resync", refresh_source=False)
            await runtime.wait_for_cycles(cycles + 1, timeout=10)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await cluster.close()
            await source.close()
