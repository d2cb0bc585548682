"""Benchmark the upgrade gates: what a gate check costs a cycle, and how soon a target that
waited for a maintenance window is applied once the window opens.

What it measures, in one process:

* check: `check_upgrade(document, live, policy, now)` (window state from a weekly cron and
  a blackout, every gate, the target's risks) on the largest real ClusterVersion in the
  corpus (69 conditional updates), for a conditional target; baseline: `json.loads` of
  the same object's JSON text, in the same run (best of R, interleaved, gc off);
* window edge: the agent (runtime, reconciler, git clone, kube client) against the
  sandbox, a target waiting for a window, an injected clock moved onto the window's
  opening; from the move to the sandbox holding the new desiredUpdate, over N rounds;
  baseline: one server-side apply round trip with the same client (the floor of any
  apply), measured in the same run.

Goals: check <= 5 ms; window edge p50 <= 2x the apply floor + 20 ms (no poll in between).

Run from the repository root:

    .venv/bin/python bench/gates.py [--repeat R] [--rounds N] [--corpus DIR] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.adapters.git import GitCloneSource
from agent.adapters.kube import KubeCluster
from agent.clock import SteppedClock
from agent.engine.reconciler import Reconciler, Result
from agent.engine.runtime import Runtime
from agent.model.policy import Blackout, MaintenanceWindow, Policy
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings
from agent.spec.normalize import desired_state
from agent.spec.parse import parse_text
from agent.upgrade.decision import check_upgrade

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("CVSYNC_CORPUS", REPO.parent / "shared" / "corpus"))
CHECK_GOAL_MS = 5.0
POLICY = Policy(
    maintenance_windows=(MaintenanceWindow("0 2 * * SAT", timedelta(hours=4), "Europe/Berlin"),),
    blackouts=(Blackout(datetime(2026, 12, 21).date(), datetime(2027, 1, 3).date()),),
)
SPEC = "clusters/east/clusterversion.yaml"
POLICY_FILE = "clusters/east/policy.yaml"


def best(repeat: int, *timed: Callable[[], object]) -> list[float]:
    bests = [float("inf")] * len(timed)
    for _ in range(repeat):
        for i, work in enumerate(timed):
            gc.disable()
            started = time.perf_counter()
            work()
            bests[i] = min(bests[i], time.perf_counter() - started)
            gc.enable()
    return bests


def measure_check(corpus: Path, repeat: int) -> dict[str, Any]:
    path = (
        corpus
        / "clusterversions"
        / "4.12.16-idle-24-available-69-conditional-stale-observedgeneration.yaml"
    )
    if not path.is_file():
        sys.exit(f"{path} not found: give --corpus DIR (the shared corpus)")
    [live_doc] = parse_text(path.read_text(), path.name).documents
    live = json.loads(json.dumps(live_doc.body))
    text = json.dumps(live)
    target = next(
        c["release"]["version"] for c in live["status"]["conditionalUpdates"] if c.get("risks")
    )
    spec = {**live["spec"], "desiredUpdate": {"version": target}}
    body = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"}, "spec": spec}  # fmt: skip
    [document] = parse_text(json.dumps(body), SPEC).documents
    now = datetime(2026, 12, 4, 20, tzinfo=UTC)
    check_s, baseline_s = best(
        repeat,
        lambda: check_upgrade(desired_state(document), live, POLICY, now),
        lambda: json.loads(text),
    )
    return {
        "object": path.name,
        "bytes": len(text),
        "target": target,
        "check_ms": round(check_s * 1000, 3),
        "json_loads_ms": round(baseline_s * 1000, 3),
        "ratio": round(check_s / baseline_s, 2),
        "goal_ms": CHECK_GOAL_MS,
    }


def git(cwd: Path, *args: str) -> None:
    import subprocess  # noqa: PLC0415 - only the benchmark's fixture needs it

    who = {"NAME": "bench", "EMAIL": "bench@localhost"}
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull}
    env.update({f"GIT_{role}_{k}": v for role in ("AUTHOR", "COMMITTER") for k, v in who.items()})
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


async def measure_window_edge(rounds: int) -> dict[str, Any]:
    latencies, floors = [], []
    for _ in range(rounds):
        edge_s, floor_s = await _one_window_edge()
        latencies.append(edge_s)
        floors.append(floor_s)
    edge_p50, floor_p50 = statistics.median(latencies), statistics.median(floors)
    return {
        "rounds": rounds,
        "edge_to_applied_ms_p50": round(edge_p50 * 1000, 2),
        "edge_to_applied_ms_max": round(max(latencies) * 1000, 2),
        "apply_floor_ms_p50": round(floor_p50 * 1000, 2),
        "ratio": round(edge_p50 / floor_p50, 2),
        "goal_ms": round((2 * floor_p50 + 0.020) * 1000, 2),
    }


async def _one_window_edge() -> tuple[float, float]:
    friday = datetime(2026, 12, 4, 20, tzinfo=UTC)
    opens = datetime(2026, 12, 5, 1, tzinfo=UTC)
    clock = SteppedClock(friday)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with Sandbox(SandboxOptions(scenario="idle-4.15", tls=False)) as sandbox:
            sandbox.access.set_rules("cvsync", FULL_ACCESS)
            kubeconfig = sandbox.kubeconfig(root / "kubeconfig", user="cvsync")
            key = sandbox.api.key(CLUSTER_VERSIONS, "", "version")
            live = sandbox.store.get(key)
            assert live is not None
            target = live["status"]["availableUpdates"][0]["version"]
            bare, work = root / "remote.git", root / "work"
            git(root, "init", "-q", "--bare", "--initial-branch=main", str(bare))
            git(root, "clone", "-q", str(bare), str(work))
            (work / "clusters" / "east").mkdir(parents=True)
            (work / SPEC).write_text(
                "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\n"
                f"metadata: {{name: version}}\nspec:\n  clusterID: {live['spec']['clusterID']}\n"
                f"  channel: {live['spec']['channel']}\n  desiredUpdate: {{version: {target}}}\n"
            )
            (work / POLICY_FILE).write_text(
                "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n"
                '  maintenanceWindows: [{cron: "0 2 * * SAT", duration: 4h, '
                "timeZone: Europe/Berlin}]\n"
            )
            git(work, "add", ".")
            git(work, "commit", "-q", "-m", "update")
            git(work, "push", "-q", "origin", "HEAD:main")
            settings = Settings(
                cluster="east",
                git=GitSettings(repo=bare.as_uri(), workdir=root / "agent", interval=3600),
                kubeconfig=kubeconfig, http_port=0, resync_interval=3600,
            )  # fmt: skip
            source = GitCloneSource(
                bare.as_uri(), "main", root / "agent" / "repo", (SPEC, POLICY_FILE)
            )
            cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
            runtime = Runtime(
                settings, Reconciler(settings, source, cluster, clock=clock), cluster, clock=clock
            )
            stop = asyncio.Event()
            task = asyncio.create_task(runtime.run(stop))
            try:
                await runtime.wait_for_cycles(1, timeout=20)
                assert runtime.last_outcome is not None
                assert runtime.last_outcome.result is Result.WAITING
                moved = time.perf_counter()
                await clock.move_to(opens)
                while "desiredUpdate" not in (sandbox.store.get(key) or {}).get("spec", {}):
                    await asyncio.sleep(0.0005)
                edge = time.perf_counter() - moved
                started = time.perf_counter()
                await cluster.apply(
                    {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
                     "metadata": {"name": "version"}, "spec": {"channel": live["spec"]["channel"]}},
                    force=False, dry_run=False,
                )  # fmt: skip
                floor = time.perf_counter() - started
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)
                await cluster.close()
                await source.close()
    return edge, floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    result = {
        "check": measure_check(options.corpus, options.repeat),
        "window_edge": asyncio.run(measure_window_edge(options.rounds)),
    }
    if options.json:
        print(json.dumps(result, indent=2))
        return
    check, edge = result["check"], result["window_edge"]
    print(
        f"gate check on {check['object']} ({check['bytes']} bytes, target {check['target']}): "
        f"{check['check_ms']} ms, {check['ratio']}x json.loads ({check['json_loads_ms']} ms); "
        f"goal <= {check['goal_ms']} ms"
    )
    print(
        f"window opens -> applied: p50 {edge['edge_to_applied_ms_p50']} ms, max "
        f"{edge['edge_to_applied_ms_max']} ms over {edge['rounds']} rounds; one apply "
        f"{edge['apply_floor_ms_p50']} ms ({edge['ratio']}x); goal <= {edge['goal_ms']} ms"
    )


if __name__ == "__main__":
    main()
