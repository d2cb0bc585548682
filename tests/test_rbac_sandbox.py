"""The Helm chart's RBAC, enforced by the sandbox's authorizer: with exactly the rules the
chart renders, `cvsync run` (as a real process, leader election on) does its whole job; with
`patch` taken away it reports a clear Forbidden condition and keeps running. Also: like a
real API server, the sandbox authorizes a list or watch by the name its field selector asks
for, which is what lets the chart restrict list and watch to resourceNames [version]."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from gitrepo import GitSyncLayout
from helm_support import NAMESPACE, engine, render
from sandbox_support import KUBECTL, kubectl, needs_kubectl, sandbox_thread
from test_run_end_to_end import CLUSTER, Agent, cvsync_run

from agent.sandbox.apiserver.access import Rule
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, EVENTS, LEASES
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions

SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
ACCOUNT = f"system:serviceaccount:{NAMESPACE}:cvsync"
VALUES = {"cluster": CLUSTER, "source": {"repo": "https://git.example.com/fleet.git"}}
WAIT = 20.0


def chart_rules(*, without: str = "") -> list[Rule]:
    """The chart's ClusterRole and Role as sandbox rules (a Role's only in its namespace)."""
    engine()  # skips when no Helm renderer is installed
    rules = []
    for obj in render(VALUES):
        if obj["kind"] not in ("ClusterRole", "Role"):
            continue
        namespaces = (obj["metadata"]["namespace"],) if obj["kind"] == "Role" else ()
        for rule in obj["rules"]:
            verbs = [verb for verb in rule["verbs"] if verb != without]
            rules.append(
                Rule.of(
                    verbs,
                    rule["apiGroups"],
                    rule["resources"],
                    rule.get("resourceNames", ()),
                    namespaces,
                )
            )
    return rules


def spec_text(cluster_id: str, channel: str) -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
    )


def cvsync_as_service_account(
    sandbox: Sandbox, tmp_path: Path, layout: GitSyncLayout
) -> AbstractAsyncContextManager[Agent]:
    kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user=ACCOUNT)
    return cvsync_run(
        "--local-path", str(layout.link), "--kubeconfig", str(kubeconfig),
        "--namespace", NAMESPACE, "--workdir", str(tmp_path / "work"), "--identity", "cvsync-0",
        "--leader-elect", "--lease-duration", "3", "--renew-deadline", "2",
        "--retry-period", "0.5",
    )  # fmt: skip


def live(sandbox: Sandbox) -> dict[str, Any]:
    found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
    assert found is not None
    return found


async def until(check: Any, timeout: float = WAIT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    options = SandboxOptions(scenario="idle-4.15", extra_namespaces=(NAMESPACE,))
    async with Sandbox(options) as running:
        yield running


async def test_with_exactly_the_chart_s_rbac_cvsync_does_its_whole_job(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.access.set_rules(ACCOUNT, chart_rules())
    cluster_id = live(sandbox)["spec"]["clusterID"]
    layout = GitSyncLayout.create(tmp_path / "gitsync", SPEC_PATH)
    layout.swap(layout.commit(spec_text(cluster_id, "fast-4.15")))
    async with cvsync_as_service_account(sandbox, tmp_path, layout) as agent:
        applied = await agent.cycle(lambda r: r["result"] == "Applied")
        assert applied["drift"] == [".spec.channel"]
        assert live(sandbox)["spec"]["channel"] == "fast-4.15"
        # The watch works under resourceNames: a hand edit is seen and put back.
        seen = len(agent.cycles())
        sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version"),
            MERGE_PATCH,
            {"spec": {"channel": "candidate-4.15"}},
            WriteOptions(manager="oc"),
        )
        corrected = await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
        assert "live" in corrected["triggers"]
        assert live(sandbox)["spec"]["channel"] == "fast-4.15"
        # Its Lease and its Events, in its own namespace.
        lease = sandbox.store.get(sandbox.api.key(LEASES, NAMESPACE, "cvsync"))
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "cvsync-0"
        await until(lambda: bool(sandbox.store.list(EVENTS.id, NAMESPACE)))
    refused = [r for r in agent.records if r.get("reason") == "Forbidden"]
    assert refused == []
    unrecorded = [r for r in agent.records if "not recorded" in str(r.get("message", ""))]
    assert unrecorded == []
    assert sandbox.faults.total("patch", "clusterversions", ACCOUNT) >= 2


async def test_without_patch_it_reports_forbidden_and_keeps_running(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.access.set_rules(ACCOUNT, chart_rules(without="patch"))
    cluster_id = live(sandbox)["spec"]["clusterID"]
    layout = GitSyncLayout.create(tmp_path / "gitsync", SPEC_PATH)
    layout.swap(layout.commit(spec_text(cluster_id, "fast-4.15")))
    async with cvsync_as_service_account(sandbox, tmp_path, layout) as agent:
        stalled = await agent.cycle(lambda r: r["reason"] == "Forbidden")
        assert stalled["result"] == "Stalled"
        message = next(
            r["message"] for r in agent.records if r.get("reason") == "Forbidden" and "message" in r
        )
        assert 'cannot patch resource "clusterversions"' in message
        assert "needs get, list, watch and patch on clusterversions" in message
        assert live(sandbox)["spec"]["channel"] == "stable-4.15"
        # Still running and healthy; the Forbidden condition is an Event too.
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{agent.base}/healthz") as response:
                assert response.status == 200
            async with session.get(f"{agent.base}/metrics") as response:
                metrics = await response.text()
        assert 'cvsync_cycles_total{result="Stalled"}' in metrics
        await until(
            lambda: any(
                e.get("reason") == "Forbidden" for e in sandbox.store.list(EVENTS.id, NAMESPACE)
            )
        )
        assert agent.process.returncode is None
        # Once patch is granted, the next change applies: nothing had to restart.
        sandbox.access.set_rules(ACCOUNT, chart_rules())
        seen = len(agent.cycles())
        layout.swap(layout.commit(spec_text(cluster_id, "candidate-4.15")))
        await agent.cycle(lambda r: r["result"] == "Applied", after=seen)
        assert live(sandbox)["spec"]["channel"] == "candidate-4.15"


@needs_kubectl
def test_a_list_or_watch_is_authorized_by_the_name_its_field_selector_asks_for(
    tmp_path: Path,
) -> None:
    named = [Rule.of(["get", "list", "watch"], ["config.openshift.io"], ["clusterversions"],
                     ["version"])]  # fmt: skip
    with sandbox_thread(SandboxOptions(scenario="idle-4.15")) as running:
        running.grant("reader", named)
        kubeconfig = running.kubeconfig(tmp_path / "kubeconfig", user="reader")
        by_name = kubectl(kubeconfig, "get", "clusterversions", "--field-selector",
                          "metadata.name=version", "-o", "name")  # fmt: skip
        everything = kubectl(kubeconfig, "get", "clusterversions", "-o", "name")
        other = kubectl(kubeconfig, "get", "clusterversions", "--field-selector",
                        "metadata.name=other", "-o", "name")  # fmt: skip
    assert by_name.returncode == 0, by_name.stderr
    assert by_name.stdout.strip() == "clusterversion.config.openshift.io/version"
    assert everything.returncode == 1
    assert "forbidden" in everything.stderr
    assert other.returncode == 1
    assert "forbidden" in other.stderr


@needs_kubectl
async def test_kubectl_lists_cvsync_s_drift_event_in_its_namespace(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A real API server refuses an Event about the cluster-scoped ClusterVersion outside
    `default` unless involvedObject.namespace names the Event's namespace (recorded from
    kube-apiserver v1.36.2: realserver steps event-cluster-scoped-no-ns and
    event-involved-ns-matches); `oc get events -n NS` must show cvsync's Events."""
    sandbox.access.set_rules(ACCOUNT, chart_rules())
    cluster_id = live(sandbox)["spec"]["clusterID"]
    layout = GitSyncLayout.create(tmp_path / "gitsync", SPEC_PATH)
    layout.swap(layout.commit(spec_text(cluster_id, "stable-4.15")))
    async with cvsync_as_service_account(sandbox, tmp_path, layout) as agent:
        await agent.cycle(lambda r: r["result"] == "InSync")
        seen = len(agent.cycles())
        sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version"),
            MERGE_PATCH,
            {"spec": {"channel": "candidate-4.15"}},
            WriteOptions(manager="oc"),
        )
        await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
        await until(
            lambda: any(
                e.get("reason") == "DriftCorrected"
                for e in sandbox.store.list(EVENTS.id, NAMESPACE)
            )
        )
    admin = sandbox.kubeconfig(tmp_path / "admin-kubeconfig")
    listed = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(admin), "get", "events", "-n", NAMESPACE,
        "-o", "json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await listed.communicate()
    assert listed.returncode == 0, err.decode()
    events = [e for e in json.loads(out)["items"] if e["reason"] == "DriftCorrected"]
    assert events, "kubectl listed no DriftCorrected Event"
    involved = events[0]["involvedObject"]
    assert (involved["kind"], involved["name"], involved["namespace"]) == (
        "ClusterVersion",
        "version",
        NAMESPACE,
    )
    unrecorded = [r for r in agent.records if "not recorded" in str(r.get("message", ""))]
    assert unrecorded == []
