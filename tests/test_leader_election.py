"""Leader election against the sandbox API server: the Lease adapter (409 on a stale write),
the elector giving up in time, and `cvsync run --leader-elect` replicas as real processes,
each as a sandbox user of its own so the sandbox's time-ordered write log says who wrote when.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gitrepo import GitSyncLayout
from test_run_end_to_end import CLUSTER, Agent, cvsync_run

from agent.adapters.elector import LeaderElector, LeaderOnlyCluster, NotLeaderError
from agent.adapters.kube import KubeCluster
from agent.adapters.lease import LeaseStore, LostRaceError
from agent.engine.leadership import LeaseRecord, Timings
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.handlers import WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, LEASES
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions

SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
NAMESPACE, LEASE = "default", "cvsync"
WAIT = 20.0  # the most any expected event may take on a loaded machine
SLACK = 2.5  # a standby polls every retry period (+20% jitter) and then runs one cycle
FAST = Timings(lease_duration=3.0, renew_deadline=2.0, retry_period=0.5)


def spec_text(cluster_id: str, channel: str) -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
    )


def election_flags(timings: Timings) -> tuple[str, ...]:
    return (
        "--leader-elect", "--lease-duration", f"{timings.lease_duration:g}",
        "--renew-deadline", f"{timings.renew_deadline:g}",
        "--retry-period", f"{timings.retry_period:g}",
    )  # fmt: skip


async def until(predicate: Callable[[], bool], timeout: float = WAIT) -> float:
    """Poll until `predicate` holds; returns the time.monotonic() when it did."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic()


@dataclass
class World:
    sandbox: Sandbox
    tmp: Path
    layout: GitSyncLayout
    cluster_id: str

    def kubeconfig(self, user: str) -> Path:
        self.sandbox.access.set_rules(user, FULL_ACCESS)
        return self.sandbox.kubeconfig(self.tmp / f"kubeconfig-{user}", user=user)

    def channel(self) -> object:
        found = self.sandbox.store.get(self.sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return found["spec"].get("channel")

    def lease(self) -> dict[str, Any] | None:
        return self.sandbox.store.get(self.sandbox.api.key(LEASES, NAMESPACE, LEASE))

    def holder(self) -> str | None:
        lease = self.lease()
        return None if lease is None else str(lease["spec"].get("holderIdentity") or "")

    def publish(self, channel: str) -> None:
        self.layout.swap(self.layout.commit(spec_text(self.cluster_id, channel)))

    def writes(self, user: str) -> list[float]:
        """When `user`'s writes arrived, leases left out (standbys try to acquire)."""
        log = self.sandbox.faults.write_log
        return [w.at for w in log if w.user == user and w.resource != "leases"]

    def lease_reads(self, user: str) -> int:
        return self.sandbox.faults.total("get", "leases", user)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        layout = GitSyncLayout.create(tmp_path / "gitsync", SPEC_PATH)
        world = World(sandbox, tmp_path, layout, found["spec"]["clusterID"])
        world.publish("fast-4.15")
        yield world


def replica(world: World, name: str, timings: Timings = FAST) -> AbstractAsyncContextManager[Agent]:
    """`cvsync run --leader-elect` as sandbox user replica-<name>, identity <name>."""
    return cvsync_run(
        "--local-path", str(world.layout.link),
        "--kubeconfig", str(world.kubeconfig(f"replica-{name}")),
        "--workdir", str(world.tmp / f"work-{name}"), "--identity", name,
        *election_flags(timings),
    )  # fmt: skip


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, await answer.text()


def leader_metric(text: str) -> float:
    found = re.search(r"^cvsync_leader (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


async def standing_by(world: World, name: str, agent: Agent) -> None:
    """Wait until the replica has read the lease a few times without taking it."""
    await until(lambda: world.lease_reads(f"replica-{name}") >= 3)
    assert world.holder() != name
    assert agent.process.returncode is None


# The Lease adapter and the elector, in-process against the sandbox.
async def test_a_lease_update_from_a_stale_read_is_refused_as_a_lost_race(world: World) -> None:
    leases = await LeaseStore.connect(NAMESPACE, LEASE, kubeconfig=world.kubeconfig("one"))
    try:
        created = await leases.create(LeaseRecord("one", 15, None, None, 0))
        with pytest.raises(LostRaceError):
            await leases.create(LeaseRecord("two", 15, None, None, 0))
        renewal = LeaseRecord("one", 15, None, "2024-05-01T10:00:00.000000Z", 0)
        renewed = await leases.update(created, renewal)
        assert (
            renewed.body["metadata"]["resourceVersion"]
            != created.body["metadata"]["resourceVersion"]
        )
        with pytest.raises(LostRaceError):  # `created` carries the old resourceVersion
            await leases.update(created, LeaseRecord("two", 15, None, None, 1))
        current = await leases.get()
        assert current is not None
        assert current.record.holder == "one"
    finally:
        await leases.close()


async def test_a_leader_that_cannot_renew_stops_acting_within_the_renew_deadline(
    world: World,
) -> None:
    kubeconfig = world.kubeconfig("one")
    leases = await LeaseStore.connect(NAMESPACE, LEASE, kubeconfig=kubeconfig)
    lost = asyncio.Event()
    elector = LeaderElector(leases, "one", FAST, on_lost=lost.set)
    task = asyncio.create_task(elector.run())
    try:
        await asyncio.wait_for(elector.elected.wait(), WAIT)
        assert elector.leading
        world.sandbox.faults.fail("*", "leases", times=1000, status=503)
        failing = time.monotonic()
        await asyncio.wait_for(lost.wait(), WAIT)
        assert not elector.leading
        assert elector.lost_reason == "no successful renew for 2 s"
        assert time.monotonic() - failing < FAST.lease_duration + SLACK
        assert world.holder() == "one"  # nobody else has it yet: it is simply not renewed
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await leases.close()


async def test_a_leader_that_sees_another_holder_refuses_to_apply_at_once(world: World) -> None:
    kubeconfig = world.kubeconfig("one")
    leases = await LeaseStore.connect(NAMESPACE, LEASE, kubeconfig=kubeconfig)
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    elector = LeaderElector(leases, "one", FAST)
    guarded = LeaderOnlyCluster(cluster, elector)
    task = asyncio.create_task(elector.run())
    try:
        await asyncio.wait_for(elector.elected.wait(), WAIT)
        body: dict[str, Any] = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion"}
        body["metadata"] = {"name": "version"}
        await guarded.apply(body, force=False, dry_run=True)
        take_over(world, "intruder")
        await until(lambda: elector.lost_reason is not None)
        assert 'held by "intruder"' in str(elector.lost_reason)
        before = world.sandbox.faults.total("patch", "clusterversions", "one")
        with pytest.raises(NotLeaderError):
            await guarded.apply(body, force=False, dry_run=True)
        assert world.sandbox.faults.total("patch", "clusterversions", "one") == before
        assert not await elector.release()  # not ours to release
        assert world.holder() == "intruder"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await leases.close()
        await cluster.close()


def take_over(world: World, holder: str) -> None:
    """An administrator's update (as `kubectl replace` sends it) naming another holder."""
    lease = world.lease()
    assert lease is not None
    lease["spec"] |= {"holderIdentity": holder, "leaseDurationSeconds": 60}
    world.sandbox.api.replace(
        Target(LEASES, NAMESPACE, LEASE), lease, WriteOptions(manager="kubectl")
    )


# `cvsync run --leader-elect` replicas as processes.
async def test_a_standby_takes_over_within_a_lease_duration_of_the_leader_being_killed(
    world: World,
) -> None:
    async with replica(world, "a") as a:
        await a.cycle(lambda r: r["result"] == "Applied")
        assert world.channel() == "fast-4.15"
        assert world.holder() == "a"
        async with replica(world, "b") as b:
            await standing_by(world, "b", b)
            # A standby is healthy and ready, and says it is not the leader.
            assert (await get(f"{b.base}/readyz"))[0] == 200
            assert leader_metric((await get(f"{b.base}/metrics"))[1]) == 0
            assert leader_metric((await get(f"{a.base}/metrics"))[1]) == 1
            assert world.writes("replica-b") == []

            a.process.kill()
            killed = time.monotonic()
            await a.process.wait()
            world.publish("candidate-4.15")
            applied = await until(lambda: world.channel() == "candidate-4.15")
            took = applied - killed
            assert took < FAST.lease_duration + SLACK, f"took over and applied in {took:.1f} s"
            assert world.holder() == "b"
            lease = world.lease()
            assert lease is not None
            assert lease["spec"]["leaseTransitions"] == 1
            elected = await b.cycle(lambda r: "elected" in r["triggers"])
            assert elected["result"] == "Applied"
            assert leader_metric((await get(f"{b.base}/metrics"))[1]) == 1

    # Never both: every write of the old leader came before the kill, every write of the
    # new one after it.
    old, new = world.writes("replica-a"), world.writes("replica-b")
    assert old
    assert new
    assert max(old) < killed < min(new)


async def test_a_leader_stopped_cleanly_releases_the_lease_so_a_standby_takes_over_at_once(
    world: World,
) -> None:
    slow = Timings(lease_duration=8.0, renew_deadline=5.0, retry_period=0.5)
    async with replica(world, "a", slow) as a:
        await a.cycle(lambda r: r["result"] == "Applied")  # a leads before the others start
        assert world.holder() == "a"
        async with replica(world, "b", slow) as b, replica(world, "c", slow) as c:
            await standing_by(world, "b", b)
            await standing_by(world, "c", c)
            stopping = time.monotonic()
            await a.stop()
            assert a.process.returncode == 0
            assert any(r.get("message", "").startswith("released lease") for r in a.records)
            taken = await until(lambda: world.holder() in ("b", "c"))
            assert taken - stopping < slow.lease_duration / 2
            leader, standby = (b, c) if world.holder() == "b" else (c, b)
            elected = await leader.cycle(lambda r: "elected" in r["triggers"])
            assert elected["result"] == "InSync"  # the old leader had applied everything

            # A standby stops at once too, and leaves the lease alone.
            holder = world.holder()
            stopping = time.monotonic()
            await standby.stop()
            assert standby.process.returncode == 0
            assert time.monotonic() - stopping < 5
            assert world.holder() == holder
            assert standby.cycles() == []


async def test_a_leader_whose_lease_is_taken_stops_and_exits_with_an_error(
    world: World,
) -> None:
    async with replica(world, "a") as a:
        await a.cycle(lambda r: r["result"] == "Applied")
        take_over(world, "intruder")
        code = await asyncio.wait_for(a.process.wait(), WAIT)
        await a.stop()
        assert code == 2  # cvsync's exit code for errors; the pod restarts as a standby
        lost = [r for r in a.records if r.get("reason") == "LeadershipLost"]
        assert lost, a.stderr.decode(errors="replace")[-2000:]
        assert 'held by "intruder"' in lost[0]["message"]
        assert lost[0]["identity"] == "a"
        assert "leadership of lease default/cvsync lost" in a.stderr.decode()
        assert world.holder() == "intruder"  # left alone: not released, not taken back
