"""Benchmark the delay from a status transition in the cluster to the status commit on the
git remote, against the floor of one plain `git push` to the same remote, in one run.

The sandbox simulates two upgrades (each gives an `update started` and an `update
completed` transition); write-back commits transitions at once. The transition's moment
is the store write that flips the update state; the commit's moment is when
`git ls-remote` first shows a tip whose subject names the new state.

Run: .venv/bin/python bench/writeback.py [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.adapters.git import GitCloneSource
from agent.adapters.git_writer import StatusWriter
from agent.adapters.kube import KubeCluster
from agent.engine.reconciler import Reconciler
from agent.engine.runtime import Runtime
from agent.engine.writeback import WriteBack
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

SPEC = "clusters/east/clusterversion.yaml"
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=ENV, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def spec(cluster_id: str, version: str | None) -> str:
    text = (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: stable-4.15\n"
    )
    return text + (f"  desiredUpdate:\n    version: {version}\n" if version else "")


def commit(work: Path, text: str, message: str) -> None:
    (work / SPEC).parent.mkdir(parents=True, exist_ok=True)
    (work / SPEC).write_text(text)
    git(work, "add", SPEC)
    git(work, "commit", "-m", message)
    git(work, "pull", "--rebase", "origin", "main")
    git(work, "push", "origin", "main")


def tip_subject(work: Path) -> str:
    git(work, "fetch", "-q", "origin", "main")
    return git(work, "log", "-1", "--format=%s", "origin/main")


async def measure(root: Path) -> dict[str, Any]:
    bare, work = root / "remote.git", root / "work"
    bare.mkdir()
    git(bare, "init", "--bare", "--initial-branch=main")
    git(root, "clone", str(bare), str(work))
    git(work, "checkout", "-B", "main")
    floor = []
    for index in range(10):
        (work / "floor.txt").write_text(str(index))
        git(work, "add", "floor.txt")
        git(work, "commit", "-m", f"floor {index}")
        started = time.perf_counter()
        git(work, "push", "origin", "main")
        floor.append(time.perf_counter() - started)

    async with Sandbox(SandboxOptions(scenario="idle-4.15", time_scale=600)) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(root / "kubeconfig", user="cvsync")
        key = sandbox.api.key(CLUSTER_VERSIONS, "", "version")
        live = sandbox.store.get(key)
        assert live is not None
        cluster_id = live["spec"]["clusterID"]
        targets = sorted(u["version"] for u in live["status"]["availableUpdates"])[:2]
        commit(work, spec(cluster_id, None), "east")
        settings = Settings(
            cluster="east",
            git=GitSettings(repo=bare.as_uri(), workdir=root / "agent", interval=3600),
            kubeconfig=kubeconfig,
            http_port=0,
            resync_interval=3600,
        )
        source = GitCloneSource(bare.as_uri(), "main", root / "agent" / "repo", (SPEC,))
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        writer = StatusWriter(bare.as_uri(), "main", root / "agent" / "status", None)
        writeback = WriteBack("east", writer, min_interval=3600)
        runtime = Runtime(
            settings, Reconciler(settings, source, cluster), cluster, writeback=writeback
        )
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.run(stop))
        delays: list[float] = []
        try:
            while writeback.commits < 1:
                await asyncio.sleep(0.01)
            for target in targets:
                commit(work, spec(cluster_id, target), f"upgrade to {target}")
                runtime.trigger("webhook", refresh_source=True)
                for state in ("progressing", "idle"):
                    flipped = await _transition(sandbox, key, target, state)
                    while f"{target} {state}" not in tip_subject(work):
                        await asyncio.sleep(0.005)
                    delays.append(time.monotonic() - flipped)
        finally:
            stop.set()
            await task
            await cluster.close()
            await source.close()
            await writer.close()
    return {"delays": delays, "floor": floor}


async def _transition(sandbox: Sandbox, key: Any, target: str, state: str) -> float:
    """The monotonic time of the store write where the update to `target` entered `state`."""
    while True:
        history = (sandbox.store.get(key) or {}).get("status", {}).get("history") or [{}]
        head = history[0]
        reached = head.get("version") == target and (
            head.get("state") == "Partial"
            if state == "progressing"
            else head.get("state") == "Completed"
        )
        if reached:
            return time.monotonic()
        await asyncio.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cvsync-bench-") as scratch:
        result = asyncio.run(measure(Path(scratch)))
    delays, floor = result["delays"], result["floor"]
    rows = {
        "status transition -> commit on the remote": (statistics.median(delays), max(delays)),
        "floor: one plain git push (baseline)": (statistics.median(floor), max(floor)),
    }
    if args.json:
        print(json.dumps({name: {"p50_s": p50, "max_s": top} for name, (p50, top) in rows.items()}))
        return
    base = rows["floor: one plain git push (baseline)"][0]
    print(f"{len(delays)} transitions (2 upgrades: started and completed each)\n")
    print("| measurement | p50 ms | max ms | p50 / floor |")
    print("|---|---:|---:|---:|")
    for name, (p50, top) in rows.items():
        print(f"| {name} | {p50 * 1000:.0f} | {top * 1000:.0f} | {p50 / base:.1f}x |")


if __name__ == "__main__":
    main()
