"""What a running agent asks the API server for, counted by the sandbox's own request counter
(the one its admin endpoint's GET /requests reports): one apply per change and no read while
the watch is current, nothing at all for an idle resync, and a GET only while it is not."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from contextlib import aclosing
from pathlib import Path

from agent_support import CLUSTER, SPEC_PATH, Agent, running_agent, spec, until
from gitrepo import Remote

from agent.adapters.git import GitCloneSource
from agent.adapters.kube import KubeCluster
from agent.engine.reconciler import Reconciler, Result, apply_taking_back
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.handlers import APPLY_PATCH, MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

TARGET = Target(CLUSTER_VERSIONS, "", "version")
QUIET = 0.3
# The least status the CRD accepts (its required fields), as the operator's first write.
OPERATOR_STATUS = {
    "availableUpdates": [],
    "desired": {
        "version": "4.15.0",
        "image": "quay.io/openshift-release-dev/ocp-release@sha256:" + "b" * 64,
    },
    "versionHash": "x1",
    "observedGeneration": 1,
}  # no cycle, no store write and no request for this long: the agent is idle


def counted(sandbox: Sandbox, user: str = "cvsync") -> Counter[tuple[str, str]]:
    """The requests `user` made so far, by (verb, resource)."""
    return Counter(
        {
            (verb, resource): n
            for (verb, resource, who), n in sandbox.faults.requests.items()
            if who == user
        }
    )


def since(sandbox: Sandbox, before: Counter[tuple[str, str]]) -> dict[tuple[str, str], int]:
    after = counted(sandbox)
    after.subtract(before)
    return {key: n for key, n in after.items() if n}


async def idle(agent: Agent) -> None:
    """Wait until nothing moves: cycles, the object (the operator answers each change) and
    the requests."""

    def state() -> tuple[int, str, int]:
        version = str(agent.live()["metadata"]["resourceVersion"])
        return agent.runtime.cycles, version, agent.sandbox.faults.total()

    previous = state()
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        await asyncio.sleep(QUIET)
        current = state()
        if current == previous:
            return
        assert asyncio.get_running_loop().time() < deadline, "the agent never went idle"
        previous = current


def hand_edit(agent: Agent, channel: str) -> None:
    """`oc patch --type merge` of the channel: an imperative write by another manager."""
    agent.sandbox.api.patch(
        TARGET, MERGE_PATCH, {"spec": {"channel": channel}}, WriteOptions(manager="oc")
    )


async def test_a_new_commit_is_applied_with_one_request_and_no_read(tmp_path: Path) -> None:
    async with running_agent(tmp_path, "idle-4.15") as agent:
        await idle(agent)
        before = counted(agent.sandbox)
        # The installer's channel: the first takeover of a field it owns.
        outcome = await agent.commit({SPEC_PATH: spec(agent.cluster_id, "fast-4.15")}, "fast")
        assert (outcome.result, outcome.reason) == (Result.APPLIED, "Applied")
        await idle(agent)  # the operator's status update and the cycles it triggers
        requests = since(agent.sandbox, before)
        assert agent.live()["spec"]["channel"] == "fast-4.15"
    clusterversions = {k: n for k, n in requests.items() if k[1] == "clusterversions"}
    assert clusterversions == {("patch", "clusterversions"): 1}
    assert requests == {("patch", "clusterversions"): 1, ("create", "events"): 1}  # "Applied"


async def test_an_idle_resync_makes_no_request(tmp_path: Path) -> None:
    async with running_agent(tmp_path, "idle-4.15") as agent:
        await idle(agent)
        before, cycles = counted(agent.sandbox), agent.runtime.cycles
        for number in range(1, 6):
            agent.runtime.trigger("resync", refresh_source=False)
            await agent.runtime.wait_for_cycles(cycles + number, timeout=10)
        assert agent.outcomes[-1].result is Result.IN_SYNC
        assert since(agent.sandbox, before) == {}


async def test_a_hand_edit_is_taken_back_with_one_request_and_no_read(tmp_path: Path) -> None:
    """The operator answers each edit with a status write: still one write per edit."""
    async with running_agent(tmp_path, "idle-4.15") as agent:
        await agent.commit({SPEC_PATH: spec(agent.cluster_id, "fast-4.15")}, "fast")
        await idle(agent)
        cluster = agent.runtime.cluster
        assert isinstance(cluster, KubeCluster)
        assert cluster.operator_answers
        for edit in range(5):
            before = counted(agent.sandbox)
            seen = len(agent.outcomes)
            hand_edit(agent, "candidate-4.15")
            outcome = await agent.outcome(lambda o: o.reason == "DriftCorrected", since=seen)
            assert outcome.message.startswith('took back .spec.channel from "oc"')
            await idle(agent)
            assert agent.live()["spec"]["channel"] == "fast-4.15"
            requests = since(agent.sandbox, before)
            expected = {("patch", "clusterversions"): 1}
            # One Event "DriftCorrected", then the same Event counted again.
            expected[("create", "events") if edit == 0 else ("patch", "events")] = 1
            assert requests == expected, f"edit {edit + 1}"


async def test_a_takeover_waits_for_the_operator_s_answer_and_pins_to_it(tmp_path: Path) -> None:
    """An apply pinned to the edit's version would be refused by the operator's status write
    that answers the edit; the takeover is sent once that answer is in, pinned to it."""
    async with running_agent(tmp_path, "idle-4.15") as agent:
        await agent.commit({SPEC_PATH: spec(agent.cluster_id, "fast-4.15")}, "fast")
        await idle(agent)
        store = agent.sandbox.store
        for watcher in [w for w in store.watchers if w.internal]:  # this test answers instead
            store.stop_watching(watcher)
        before = counted(agent.sandbox)
        hand_edit(agent, "candidate-4.15")
        edited = agent.live()
        await asyncio.sleep(0.3)  # the agent has seen the edit; the operator is slow today
        assert agent.live()["spec"]["channel"] == "candidate-4.15"
        answer = {**edited["status"], "observedGeneration": edited["metadata"]["generation"]}
        answered = agent.sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version", "status"),
            MERGE_PATCH,
            {"status": answer},
            WriteOptions(manager="cluster-version-operator"),
        ).object
        await until(lambda: agent.live()["spec"]["channel"] == "fast-4.15", 10)
        corrected = agent.live()
        assert int(corrected["metadata"]["resourceVersion"]) == (
            int(answered["metadata"]["resourceVersion"]) + 1
        )
        await idle(agent)
        assert since(agent.sandbox, before)[("patch", "clusterversions")] == 1


async def test_an_operator_that_stops_answering_holds_one_takeover_then_none(
    tmp_path: Path,
) -> None:
    async with running_agent(tmp_path, "idle-4.15") as agent:
        await agent.commit({SPEC_PATH: spec(agent.cluster_id, "fast-4.15")}, "fast")
        await idle(agent)
        cluster = agent.runtime.cluster
        assert isinstance(cluster, KubeCluster)
        assert cluster.operator_answers
        store = agent.sandbox.store
        for watcher in [w for w in store.watchers if w.internal]:  # the operator stops
            store.stop_watching(watcher)
        for _ in range(2):
            seen = len(agent.outcomes)
            hand_edit(agent, "candidate-4.15")
            await agent.outcome(lambda o: o.reason == "DriftCorrected", since=seen)
            assert agent.live()["spec"]["channel"] == "fast-4.15"
            assert not cluster.operator_answers  # the first edit waited; later ones do not


async def test_while_the_watch_is_down_cycles_read_the_object_and_stop_once_it_is_back(
    tmp_path: Path,
) -> None:
    async with running_agent(tmp_path, "idle-4.15") as agent:
        sandbox = agent.sandbox
        await idle(agent)
        # The simulated operator follows the store too: count the watchers, not just any.
        following = len(sandbox.store.watchers)
        lists = sandbox.faults.total("list", "clusterversions")
        sandbox.faults.fail("watch", "clusterversions", times=1000, status=500)
        sandbox.faults.fail("list", "clusterversions", times=1000, status=500)
        assert sandbox.store.end_all_watches() == 1
        # The resumed watch fails, so the watch lists again, and that fails too.
        await until_true(lambda: sandbox.faults.total("list", "clusterversions") > lists)
        before = counted(sandbox)
        await resync(agent)
        assert since(sandbox, before) == {("get", "clusterversions"): 1}

        # Back: the watch has listed again (nothing made meanwhile is missed): current.
        sandbox.faults.clear()
        await until_true(lambda: len(sandbox.store.watchers) == following)
        before = counted(sandbox)
        await resync(agent)
        assert since(sandbox, before) == {}

        # A hand edit the watch delivers is taken back without a read.
        seen = len(agent.outcomes)
        hand_edit(agent, "candidate-4.15")
        await agent.outcome(lambda o: o.reason == "DriftCorrected", since=seen)
        await idle(agent)
        await resync(agent)
        requests = since(sandbox, before)
    assert requests == {("patch", "clusterversions"): 1, ("create", "events"): 1}


async def resync(agent: Agent) -> None:
    cycles = agent.runtime.cycles
    agent.runtime.trigger("resync", refresh_source=False)
    await agent.runtime.wait_for_cycles(cycles + 1, timeout=10)


async def until_true(check: Callable[[], bool]) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_field_another_applier_took_since_the_watch_s_object_is_not_forced(
    tmp_path: Path,
) -> None:
    """The watch's object says only the installer owns the channel, but another applier took
    it since (its event not read yet): the forced apply, pinned to the object's
    resourceVersion, is refused, and the server's conflict is reported, not overridden."""
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        cluster_id = found["spec"]["clusterID"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec(cluster_id, "fast-4.15")}, "fast")
        settings = Settings(cluster=CLUSTER, git=GitSettings(repo=remote.url))
        source = GitCloneSource(remote.url, "main", tmp_path / "clone", (SPEC_PATH,))
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        try:
            async with aclosing(cluster.watch()) as changes:
                assert (await anext(changes)) is not None  # the watch is current from here
                sandbox.api.patch(
                    TARGET,
                    APPLY_PATCH,
                    {
                        "apiVersion": "config.openshift.io/v1",
                        "kind": "ClusterVersion",
                        "metadata": {"name": "version"},
                        "spec": {"clusterID": cluster_id, "channel": "eus-4.16"},
                    },
                    WriteOptions(manager="other-gitops", force=True),
                )
                before = counted(sandbox)
                outcome = await Reconciler(settings, source, cluster).cycle(refresh_source=True)
        finally:
            await cluster.close()
            await source.close()
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        assert (outcome.result, outcome.reason) == (Result.STALLED, "ApplyConflict")
        assert outcome.message == '.spec.channel is owned by "other-gitops"'
        assert live["spec"]["channel"] == "eus-4.16"
        # The pinned forced apply (refused: the object changed), then the server's answer.
        assert since(sandbox, before) == {("patch", "clusterversions"): 2}


async def test_a_status_write_between_the_watch_s_object_and_the_apply_costs_one_retry(
    tmp_path: Path,
) -> None:
    """The operator answers an edit with a status write: a forced apply pinned to the
    object's version before it is refused, and the same apply, pinned to the newer version
    the watch has delivered since, takes the field. No refused unforced apply, no read."""
    async with Sandbox(SandboxOptions()) as sandbox:  # the status write below is the only one
        seed = {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"clusterID": "6f1c3e2a-9b4d-4c7e-8a21-5d0e7b9f3c64", "channel": "stable-4.15"},
        }
        sandbox.api.create(
            Target(CLUSTER_VERSIONS, "", ""), seed, WriteOptions(manager="cluster-bootstrap")
        )
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        try:
            async with aclosing(cluster.watch()) as changes:
                planned_on = await anext(changes)
                assert planned_on is not None
                sandbox.api.patch(
                    Target(CLUSTER_VERSIONS, "", "version", "status"),
                    MERGE_PATCH,
                    {"status": OPERATOR_STATUS},
                    WriteOptions(manager="cluster-version-operator"),
                )
                assert (await anext(changes) or {})["status"] == OPERATOR_STATUS
                before = counted(sandbox)
                wanted = {**planned_on["spec"], "channel": "fast-4.15"}
                sent = {
                    "apiVersion": "config.openshift.io/v1",
                    "kind": "ClusterVersion",
                    "metadata": {"name": "version"},
                    "spec": {k: wanted[k] for k in ("clusterID", "channel")},
                }
                applied, taken = await apply_taking_back(
                    cluster, sent, force=False, dry_run=False, live=planned_on
                )
        finally:
            await cluster.close()
        assert applied["spec"]["channel"] == "fast-4.15"
        assert taken == ((".spec.channel", "cluster-bootstrap"),)
        assert since(sandbox, before) == {("patch", "clusterversions"): 2}
