"""KubeCluster against the sandbox API server over HTTPS, through a kubeconfig it writes: get,
server-side apply and its failures as cvsync errors, and a watch that survives every fault."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from agent.adapters.kube import KubeCluster
from agent.errors import ApplyConflictError, ForbiddenError, InvalidObjectError, KubeError
from agent.sandbox.apiserver.access import Rule
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions

CLUSTER_ID = "5e65da93-4167-4f1e-9571-f99963cda23e"
CVS = "clusterversions"
WAIT = 5.0  # seconds any single expectation may take before the test fails


def cluster_version(channel: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": CLUSTER_ID, "channel": channel, **spec},
    }


async def connect(sandbox: Sandbox, path: Path, **options: Any) -> KubeCluster:
    options.setdefault("watch_timeout_seconds", 2)
    options.setdefault("backoff_cap", 0.05)
    return await KubeCluster.connect(kubeconfig=sandbox.kubeconfig(path), **options)


async def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never became true"
        await asyncio.sleep(0.01)


async def watching(sandbox: Sandbox) -> None:
    """Wait until a watch stream is open on the server (the list alone is not enough)."""
    await wait_until(lambda: bool(sandbox.store.watchers))


class Follower:
    """Consumes cluster.watch() on a task of its own, as the runtime does."""

    def __init__(self, cluster: KubeCluster) -> None:
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump(cluster))

    async def _pump(self, cluster: KubeCluster) -> None:
        async with aclosing(cluster.watch()) as changes:
            async for change in changes:
                await self.queue.put(change)

    async def next(self) -> dict[str, Any] | None:
        return await asyncio.wait_for(self.queue.get(), WAIT)

    async def channel(self) -> str:
        change = await self.next()
        assert change is not None
        return str(change["spec"]["channel"])

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxOptions(tls=True, bookmark_interval=0.2)) as running:
        assert running.url.startswith("https://")
        yield running


@pytest.fixture
async def cluster(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[KubeCluster]:
    connected = await connect(sandbox, tmp_path / "kubeconfig")
    yield connected
    await connected.close()


@pytest.fixture
async def following(sandbox: Sandbox, cluster: KubeCluster) -> AsyncIterator[Follower]:
    """A watch on an existing object, past its first answer."""
    await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    follower = Follower(cluster)
    assert await follower.channel() == "stable-4.15"
    await watching(sandbox)
    yield follower
    await follower.stop()


async def change_channel(cluster: KubeCluster, channel: str) -> None:
    await cluster.apply(cluster_version(channel), force=False, dry_run=False)


# --- connecting, get and apply ---------------------------------------------------------------


async def test_get_answers_none_before_the_object_exists(cluster: KubeCluster) -> None:
    assert await cluster.get() is None


async def test_the_kubeconfig_env_variable_is_read_when_no_path_is_given(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(sandbox.kubeconfig(tmp_path / "from-env")))
    cluster = await KubeCluster.connect()
    try:
        assert await cluster.get() is None
    finally:
        await cluster.close()


async def test_a_missing_kubeconfig_is_a_kube_error_that_no_retry_fixes(tmp_path: Path) -> None:
    with pytest.raises(KubeError) as refused:
        await KubeCluster.connect(kubeconfig=tmp_path / "absent")
    assert refused.value.retryable is False


async def test_apply_creates_the_object_then_updates_it(cluster: KubeCluster) -> None:
    created = await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    assert created["spec"]["channel"] == "stable-4.15"
    [entry] = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("cvsync", "Apply")

    updated = await cluster.apply(cluster_version("fast-4.15"), force=False, dry_run=False)
    assert updated["spec"]["channel"] == "fast-4.15"
    assert updated["metadata"]["generation"] == 2
    assert await cluster.get() == updated


async def test_a_dry_run_apply_answers_the_result_and_stores_nothing(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    planned = await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=True)
    assert planned["spec"]["channel"] == "stable-4.15"
    assert await cluster.get() is None

    live = await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    writes = sandbox.faults.writes(CVS)
    planned = await cluster.apply(cluster_version("fast-4.15"), force=False, dry_run=True)
    assert planned["spec"]["channel"] == "fast-4.15"
    assert sandbox.faults.writes(CVS) == writes + 1  # the server saw the request...
    after = await cluster.get()
    assert after is not None
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]
    assert after["spec"]["channel"] == "stable-4.15"  # ...and kept nothing


async def test_a_field_owned_by_another_manager_conflicts_until_force_takes_it(
    sandbox: Sandbox, cluster: KubeCluster, tmp_path: Path
) -> None:
    oc = await connect(sandbox, tmp_path / "oc", field_manager="oc")
    try:
        await oc.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    finally:
        await oc.close()

    with pytest.raises(ApplyConflictError) as refused:
        await cluster.apply(cluster_version("fast-4.15"), force=False, dry_run=False)
    assert refused.value.conflicts == ((".spec.channel", "oc"),)
    assert refused.value.appliers == frozenset({"oc"})
    assert (refused.value.status, refused.value.retryable) == (409, False)
    assert 'conflict with "oc"' in refused.value.message

    taken = await cluster.apply(cluster_version("fast-4.15"), force=True, dry_run=False)
    assert taken["spec"]["channel"] == "fast-4.15"
    owners = {e["manager"] for e in taken["metadata"]["managedFields"]}
    assert owners == {"cvsync", "oc"}


async def test_a_conflict_with_an_imperative_write_names_no_applier(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    patched = sandbox.api.patch(
        Target(CLUSTER_VERSIONS, "", "version"),
        MERGE_PATCH,
        {"spec": {"channel": "fast-4.15"}},
        WriteOptions(manager="oc"),
    )
    assert patched.object["spec"]["channel"] == "fast-4.15"
    with pytest.raises(ApplyConflictError) as refused:
        await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    assert refused.value.conflicts == ((".spec.channel", "oc"),)
    assert refused.value.appliers == frozenset()


async def test_an_invalid_body_is_refused_with_the_crd_message(cluster: KubeCluster) -> None:
    body = cluster_version("stable-4.15", desiredUpdate={"architecture": "Multi"})
    with pytest.raises(InvalidObjectError) as refused:
        await cluster.apply(body, force=False, dry_run=False)
    assert refused.value.retryable is False
    [(field, message)] = refused.value.causes
    assert field == "spec.desiredUpdate"
    assert "Version must be set if Architecture is set" in message
    assert "Version must be set if Architecture is set" in refused.value.message


async def test_a_user_without_patch_permission_is_forbidden(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    path = sandbox.kubeconfig(tmp_path / "viewer", user="viewer")
    sandbox.access.set_rules(
        "viewer", [Rule.of(["get", "list", "watch"], ["config.openshift.io"], [CVS])]
    )
    viewer = await KubeCluster.connect(kubeconfig=path)
    try:
        assert await viewer.get() is None
        with pytest.raises(ForbiddenError) as refused:
            await viewer.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    finally:
        await viewer.close()
    assert refused.value.retryable is False
    assert 'User "viewer" cannot patch resource "clusterversions"' in refused.value.message


async def test_too_many_requests_are_retried_after_the_servers_retry_after(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    sandbox.faults.fail("patch", CVS, times=2, status=429, retry_after=1)
    started = time.monotonic()
    applied = await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    assert applied["spec"]["channel"] == "stable-4.15"
    assert sandbox.faults.total("patch", CVS) == 3
    assert time.monotonic() - started >= 2.0


async def test_throttling_past_the_retry_bound_is_a_retryable_kube_error(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    sandbox.faults.fail("patch", CVS, times=10, status=429, retry_after=0)
    with pytest.raises(KubeError) as throttled:
        await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    assert (throttled.value.status, throttled.value.retryable) == (429, True)
    assert sandbox.faults.total("patch", CVS) == 4


async def test_a_server_error_is_a_retryable_kube_error_and_is_not_retried_inside_apply(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    sandbox.faults.fail("patch", CVS, status=503)
    with pytest.raises(KubeError) as failed:
        await cluster.apply(cluster_version("stable-4.15"), force=False, dry_run=False)
    assert (failed.value.status, failed.value.retryable) == (503, True)
    assert sandbox.faults.total("patch", CVS) == 1


async def test_an_unreachable_server_is_a_retryable_kube_error(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    await sandbox.stop()
    with pytest.raises(KubeError) as unreachable:
        await cluster.get()
    assert (unreachable.value.status, unreachable.value.retryable) == (None, True)
    assert "cannot reach the API server" in unreachable.value.message


# --- watch -----------------------------------------------------------------------------------


async def test_a_watch_yields_the_initial_object_then_each_change(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    follower = Follower(cluster)
    try:
        assert await follower.next() is None  # nothing there yet
        await change_channel(cluster, "stable-4.15")
        assert await follower.channel() == "stable-4.15"
        await change_channel(cluster, "fast-4.15")
        changed = await follower.next()
        assert changed is not None
        assert changed["spec"]["channel"] == "fast-4.15"
        assert (changed["apiVersion"], changed["kind"]) == (
            "config.openshift.io/v1",
            "ClusterVersion",
        )
        sandbox.api.delete(CLUSTER_VERSIONS, "", "version", False)
        assert await follower.next() is None
    finally:
        await follower.stop()
    assert cluster.watch_restarts == 0


async def test_a_watch_relists_after_gone_and_still_delivers_changes(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    sandbox.faults.gone_on_next_watch()
    assert sandbox.store.end_all_watches() == 1
    await wait_until(lambda: sandbox.faults.total("list", CVS) == 2)
    await watching(sandbox)
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"
    assert cluster.watch_restarts >= 2  # the ended stream, then the 410


async def test_a_watch_rewatches_after_the_stream_ends(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    watches = sandbox.faults.total("watch", CVS)
    assert sandbox.store.end_all_watches() == 1
    await wait_until(lambda: sandbox.faults.total("watch", CVS) > watches)
    await watching(sandbox)
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"
    assert sandbox.faults.total("list", CVS) == 1  # resumed from its version, no relist
    assert cluster.watch_restarts >= 1


async def test_a_watch_survives_a_reset_connection(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    # Two: aiohttp itself retries a GET once when a reused keep-alive connection drops.
    sandbox.faults.reset_connections("watch", CVS, times=2)
    assert sandbox.store.end_all_watches() == 1
    await wait_until(lambda: all(rule.remaining == 0 for rule in sandbox.faults.rules))
    await watching(sandbox)
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"
    assert cluster.watch_restarts >= 2  # the ended stream, then the reset


async def test_a_watch_survives_a_server_restart_on_the_same_port(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    port, watches = sandbox.port, sandbox.faults.total("watch", CVS)
    await sandbox.stop()
    await asyncio.sleep(0.2)  # the watch finds nobody there and backs off
    await sandbox.start()
    assert sandbox.port == port
    await wait_until(lambda: sandbox.faults.total("watch", CVS) > watches)
    await watching(sandbox)
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"
    assert cluster.watch_restarts >= 2  # the ended stream, then at least one refused connect


async def test_a_watch_keeps_relisting_through_server_errors(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    sandbox.faults.fail("list", CVS, times=3, status=500)
    sandbox.faults.gone_on_next_watch()
    assert sandbox.store.end_all_watches() == 1
    await wait_until(lambda: sandbox.faults.total("list", CVS) == 5)  # first, 3 failures, success
    await watching(sandbox)
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"


async def test_a_change_made_while_the_watch_is_down_is_delivered_by_the_relist(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    sandbox.faults.fail("list", CVS, times=2, status=503)
    sandbox.faults.gone_on_next_watch()
    assert sandbox.store.end_all_watches() == 1
    await change_channel(cluster, "fast-4.15")
    assert await following.channel() == "fast-4.15"
    with pytest.raises(TimeoutError):  # given once, not again by a later relist or re-watch
        await asyncio.wait_for(following.queue.get(), 0.5)


async def test_a_quiet_watch_left_open_makes_no_writes_and_yields_nothing_new(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    cluster = await connect(sandbox, tmp_path / "quiet", watch_timeout_seconds=1)
    await change_channel(cluster, "stable-4.15")
    writes, watches = sandbox.faults.writes(), sandbox.faults.total("watch", CVS)
    follower = Follower(cluster)
    try:
        assert await follower.channel() == "stable-4.15"
        await asyncio.sleep(2.5)
        assert follower.queue.empty()
    finally:
        await follower.stop()
        await cluster.close()
    assert sandbox.faults.writes() == writes
    assert sandbox.faults.total("watch", CVS) >= watches + 2  # it re-watched after each timeout


async def test_a_watch_event_carries_the_object_a_get_returns(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    """Fact (kubernetes.io, API reference, WatchEvent: "If Type is Added or Modified: the new
    state of the object"): the whole object, resourceVersion and managedFields included, so
    a cycle can work on it as on a GET's answer."""
    await change_channel(cluster, "fast-4.15")
    delivered = await following.next()
    assert delivered is not None
    assert delivered["metadata"]["managedFields"]
    assert delivered == await cluster.get()


async def test_live_answers_from_the_watch_while_it_is_current_and_gets_otherwise(
    sandbox: Sandbox, cluster: KubeCluster
) -> None:
    await change_channel(cluster, "stable-4.15")
    gets = sandbox.faults.total("get", CVS)
    assert (await cluster.live() or {})["spec"]["channel"] == "stable-4.15"
    assert sandbox.faults.total("get", CVS) == gets + 1  # no watch yet: a GET
    follower = Follower(cluster)
    try:
        assert await follower.channel() == "stable-4.15"
        await watching(sandbox)
        applied = await cluster.apply(cluster_version("fast-4.15"), force=False, dry_run=False)
        # Our own apply's answer is the newest object, before its watch event arrives.
        assert await cluster.live() == applied
        assert await follower.channel() == "fast-4.15"
        assert await cluster.live() == applied  # the event for it changes nothing
        assert sandbox.faults.total("get", CVS) == gets + 1
    finally:
        await follower.stop()
    await cluster.live()  # nobody follows the watch any more: a GET again
    assert sandbox.faults.total("get", CVS) == gets + 2


async def test_live_gets_after_the_watch_broke_until_it_has_listed_again(
    sandbox: Sandbox, cluster: KubeCluster, following: Follower
) -> None:
    gets, lists = sandbox.faults.total("get", CVS), sandbox.faults.total("list", CVS)
    await cluster.live()
    assert sandbox.faults.total("get", CVS) == gets  # current: no request
    sandbox.faults.fail("watch", CVS, times=1, status=503)
    sandbox.faults.fail("list", CVS, times=1000, status=503)
    assert sandbox.store.end_all_watches() == 1
    await wait_until(lambda: sandbox.faults.total("list", CVS) > lists)  # relisting, failing
    await cluster.live()
    assert sandbox.faults.total("get", CVS) == gets + 1
    sandbox.faults.clear()
    await wait_until(lambda: cluster.watch_current)  # the list succeeded
    assert (await cluster.live() or {})["spec"]["channel"] == "stable-4.15"
    assert sandbox.faults.total("get", CVS) == gets + 1


async def test_a_watch_raises_when_the_user_may_not_list(sandbox: Sandbox, tmp_path: Path) -> None:
    path = sandbox.kubeconfig(tmp_path / "nobody", user="nobody")
    sandbox.access.set_rules("nobody", [])
    cluster = await KubeCluster.connect(kubeconfig=path)
    try:
        with pytest.raises(ForbiddenError):
            await first_change(cluster)
    finally:
        await cluster.close()


async def first_change(cluster: KubeCluster) -> dict[str, Any] | None:
    async with aclosing(cluster.watch()) as changes:
        return await anext(changes)
