"""How fast a commit and a drift reach the cluster: `cvsync run` against a naive 20 ms poller
and against one server-side apply, on the same sandbox in the same run.

What runs: one in-process sandbox (HTTPS on 127.0.0.1, scenario idle-4.15, in this
benchmark's event loop) and, one after the other, two agents as separate processes, each
following its own git-sync layout (a work clone, one `git worktree add --detach` per
revision, a `current` symlink swapped atomically with os.replace, as git-sync does):

- the naive poller (naive_poller below, about 40 lines, run as `latency.py --naive-poller`):
  reads the spec through the link every 20 ms and applies it with a forced server-side
  apply when its text changed; watches the live object and applies again when a field the
  spec declares differs;
- `cvsync run --local-path <link>`, as deployed next to git-sync.

Each agent is measured in three setups (--setups): the API server alone, the simulated
operator's store watch detached, as the issue's own figures were taken on a kube-apiserver
with no operator; with the operator, which answers every spec change with a status write of
its own (observedGeneration, available updates) from inside the sandbox's event loop; and
with that operator in its own process (bench/operator_process.py, a client of the HTTP API),
as on an OpenShift cluster.
In each, the agent starts on a freshly seeded ClusterVersion (the scenario's object as the
installer left it, written back into the store), then for each of --rounds rounds (15):
1. git-sync link swap -> applied: commit the other channel (stable-4.15 <-> fast-4.15) and
   check it out in its worktree (untimed), then time from the rename of the link to the
   store write that carries the new channel;
2. live drift -> corrected: an imperative JSON merge patch of spec.channel to
   candidate-4.15 with fieldManager=oc (what `oc patch` does), timed from its store write
   to the store write that puts git's channel back.
Store writes are stamped by an in-process watch on the sandbox's store, synchronously inside
the write (bench/reconcile.py's LiveWatch). Before each sample the benchmark waits until the
agent has logged nothing and the live object has not changed for 150 ms.

The floor, first: one server-side apply of the spec (PATCH application/apply-patch+yaml,
force, one field changing) from this process over a kept-alive HTTPS connection, --rounds
requests, with the simulated operator's store watch detached meanwhile (it shares this
event loop; bench/reconcile.py's operator_paused says why).

Reported per setup: p50 and p95 of each, the ratios cvsync p50 / poller p50 and cvsync p50 /
floor p50, the goals of issue 16 (link swap -> applied p50 <= the poller's p50 and <= 5x the
floor; drift -> corrected p50 <= 3x the floor), and the ClusterVersion writes each agent sent
per drift (from the sandbox's request counter; a refused write counts).

Run from the repository root:

    .venv/bin/python bench/latency.py [--rounds N] [--agents cvsync,poller]
        [--setups apiserver,operator,operator-process] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import ssl
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from reconcile import (
    AGENT_USER,
    CHANNELS,
    CLUSTER,
    CV_URL_PATH,
    QUIET_S,
    SAMPLE_TIMEOUT_S,
    SCENARIO,
    SPEC_PATH,
    AgentProcess,
    GitSync,
    LiveWatch,
    apply_body,
    isolated_env,
    operator_paused,
    p50,
    p95,
    spec_text,
)
from ruamel.yaml import YAML

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions

BENCH = Path(__file__).resolve()
DRIFT_CHANNEL = "candidate-4.15"
POLL_INTERVAL = 0.020
APPLY_PATCH = "application/apply-patch+yaml"
AGENTS = ("cvsync", "poller")
# The issue's own figures came from a kube-apiserver with no operator; on an OpenShift cluster
# the cluster-version operator answers every spec change with a status write of its own.
SETUPS = ("apiserver", "operator", "operator-process")
SETUP_TITLES = {
    "apiserver": "API server alone",
    "operator": "with the operator",
    "operator-process": "with the operator in its own process",
}
OPERATOR_PROCESS = BENCH.parent / "operator_process.py"
GOAL_SWAP_FLOOR_FACTOR = 5.0
GOAL_DRIFT_FLOOR_FACTOR = 3.0


# --- the naive poller: the agent cvsync is measured against ----------------------------


async def naive_poller(kubeconfig: Path, spec_file: Path) -> None:
    """Poll the spec every 20 ms and apply it (forced) when its text changed; watch the live
    object and apply again when a declared field differs. One JSON line per apply."""
    config = YAML(typ="safe").load(kubeconfig.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    authority = base64.b64decode(cluster["certificate-authority-data"]).decode()
    url = cluster["server"] + CV_URL_PATH
    git: dict[str, Any] = {"text": None, "spec": {}}
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {user['token']}"},
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cadata=authority)),
        read_bufsize=1 << 22,  # a watch event is one line, a ClusterVersion can be large
    ) as http:

        async def apply(why: str) -> None:
            query = {"fieldManager": "naive-poller", "force": "true"}
            headers = {"Content-Type": APPLY_PATCH}
            async with http.patch(url, params=query, data=git["text"], headers=headers) as sent:
                await sent.read()
            say({"result": "Applied", "why": why, "status": sent.status})

        async def poll_file() -> None:
            while True:
                with contextlib.suppress(OSError):  # git-sync may be mid-swap
                    text = spec_file.read_text()
                    if text != git["text"]:
                        git.update(text=text, spec=YAML(typ="safe").load(text)["spec"])
                        await apply("file")
                await asyncio.sleep(POLL_INTERVAL)

        async def watch_live() -> None:
            query = {"watch": "true", "fieldSelector": "metadata.name=version"}
            forever = aiohttp.ClientTimeout()
            async with http.get(url.rsplit("/", 1)[0], params=query, timeout=forever) as stream:
                say({"result": "Watching"})
                async for line in stream.content:
                    live = json.loads(line)["object"].get("spec") or {}
                    if git["text"] and any(live.get(k) != v for k, v in git["spec"].items()):
                        await apply("drift")

        await asyncio.gather(poll_file(), watch_live())


def say(record: dict[str, Any]) -> None:
    print(json.dumps(record), file=sys.stderr, flush=True)


# --- the measurements -------------------------------------------------------------------


@dataclass
class Bench:
    sandbox: Sandbox
    session: aiohttp.ClientSession
    admin_headers: dict[str, str]
    agent_headers: dict[str, str]
    live: LiveWatch
    seed: dict[str, Any]  # the ClusterVersion as the scenario installed it
    kubeconfig: Path
    tmp: Path
    env: dict[str, str]

    @property
    def cluster_id(self) -> str:
        return str(self.seed["spec"]["clusterID"])

    def reseed(self) -> None:
        """Put the ClusterVersion back as the installer left it: spec, owners and status."""
        seed = {**self.seed, "metadata": dict(self.seed["metadata"])}
        seed["metadata"].pop("resourceVersion", None)
        self.sandbox.store.put(self.sandbox.api.key(CLUSTER_VERSIONS, "", "version"), seed)

    async def apply(self, channel: str) -> None:
        async with self.session.patch(
            CV_URL_PATH + "?fieldManager=ssa-floor&force=true",
            data=apply_body(self.cluster_id, channel),
            headers={**self.agent_headers, "Content-Type": APPLY_PATCH},
        ) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise SystemExit(f"bench: apply answered {answer.status}: {body[:300]!r}")

    def agent_writes(self) -> int:
        """ClusterVersion writes the agents' user has sent so far (refused ones included)."""
        return self.sandbox.faults.total("patch", "clusterversions", AGENT_USER)

    async def drift(self) -> None:
        async with self.session.patch(
            CV_URL_PATH + "?fieldManager=oc",
            data=json.dumps({"spec": {"channel": DRIFT_CHANNEL}}).encode(),
            headers={**self.admin_headers, "Content-Type": "application/merge-patch+json"},
        ) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise SystemExit(f"bench: merge patch answered {answer.status}: {body[:300]!r}")


@dataclass
class AgentFigures:
    swap_ms: list[float] = field(default_factory=list)
    drift_ms: list[float] = field(default_factory=list)
    drift_writes: list[int] = field(default_factory=list)  # its ClusterVersion writes, each
    results: dict[str, int] = field(default_factory=dict)  # the agent's own log: result (why)


async def measure_floor(bench: Bench, rounds: int) -> list[float]:
    async with operator_paused(bench.sandbox.store, bench.live):
        for index in range(10):  # warm up the connection and the server's code paths
            await bench.apply(CHANNELS[index % 2])
        samples = []
        for index in range(rounds):
            started = time.perf_counter()
            await bench.apply(CHANNELS[(index + 1) % 2])
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def agent_command(name: str, bench: Bench, link: Path, place: Path) -> list[str]:
    if name == "poller":
        spec = link / SPEC_PATH
        return [sys.executable, str(BENCH), "--naive-poller", str(bench.kubeconfig), str(spec)]
    return [
        sys.executable, "-m", "agent", "run", "--cluster", CLUSTER, "--local-path", str(link),
        "--kubeconfig", str(bench.kubeconfig), "--workdir", str(place / "cvsync"),
        "--http-address", "127.0.0.1:0",
    ]  # fmt: skip


async def ready(agent: AgentProcess, live: LiveWatch, watches: int) -> None:
    """The agent has logged its first line and opened its watch of the live object."""
    await agent.wait_cycle(0, lambda _: True)
    deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
    while len(live.others()) <= watches:
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench: the agent never watched the live object:\n{agent.tail()}")
        await asyncio.sleep(0.01)


async def settle(agent: AgentProcess, live: LiveWatch) -> None:
    """Neither a log line nor a live change for QUIET_S: the agent is idle."""
    deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
    while True:
        live.drain()
        quiet_for = time.perf_counter() - max(agent.last_line_at, live.last_event_at)
        if quiet_for >= QUIET_S:
            return
        if time.perf_counter() > deadline:
            raise SystemExit(f"bench: the agent never went quiet:\n{agent.tail()}")
        await asyncio.sleep(min(QUIET_S - quiet_for, 0.02))


async def measure_agent(bench: Bench, name: str, rounds: int, place: Path) -> AgentFigures:
    bench.reseed()
    gitsync = GitSync(place / "work", place / "root", bench.env)
    place.mkdir(parents=True)
    await gitsync.init()
    previous = await gitsync.commit(spec_text(bench.cluster_id, CHANNELS[0]), "as installed")
    gitsync.swap(previous)
    figures = AgentFigures()
    watches = len(bench.live.others())
    command = agent_command(name, bench, gitsync.link, place)
    agent = await AgentProcess.spawn(command, bench.env)
    try:
        await ready(agent, bench.live, watches)
        for index in range(rounds):
            channel = CHANNELS[(index + 1) % 2]
            sha = await gitsync.commit(spec_text(bench.cluster_id, channel), channel)
            await settle(agent, bench.live)
            started = time.perf_counter()
            gitsync.swap(sha)
            applied = await bench.live.until_channel(channel)
            figures.swap_ms.append((applied - started) * 1000)
            await gitsync.remove(previous)  # git-sync removes the old worktree after a swap
            previous = sha
            await settle(agent, bench.live)
            writes_before = bench.agent_writes()
            await bench.drift()
            drifted = await bench.live.until_channel(DRIFT_CHANNEL)
            corrected = await bench.live.until_channel(channel)
            figures.drift_ms.append((corrected - drifted) * 1000)
            await settle(agent, bench.live)
            figures.drift_writes.append(bench.agent_writes() - writes_before)
    finally:
        code = await agent.stop()
    if name == "cvsync" and code != 0:
        raise SystemExit(f"bench: cvsync run exited {code}:\n{agent.tail()}")
    for cycle in agent.cycles:
        reason = cycle.record.get("reason") or cycle.record.get("why")
        key = f"{cycle.record['result']} ({reason})" if reason else str(cycle.record["result"])
        figures.results[key] = figures.results.get(key, 0) + 1
    return figures


async def run(rounds: int, agents: Sequence[str], setups: Sequence[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cvsync-bench-latency-") as name:
        tmp = Path(name)
        env = isolated_env(tmp)
        async with Sandbox(SandboxOptions(scenario=SCENARIO, work_dir=tmp / "sandbox")) as sandbox:
            sandbox.access.set_rules(AGENT_USER, FULL_ACCESS)
            kubeconfig = sandbox.kubeconfig(tmp / "kubeconfig", user=AGENT_USER)
            agent_token = next(
                t for t, who in sandbox.access.tokens.items() if who.user == AGENT_USER
            )
            assert sandbox.pki is not None
            tls = ssl.create_default_context(cafile=str(sandbox.pki.ca.cert))
            seed = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert seed is not None
            assert seed["spec"]["channel"] == CHANNELS[0]
            async with aiohttp.ClientSession(
                base_url=sandbox.url, connector=aiohttp.TCPConnector(ssl=tls)
            ) as session:
                bench = Bench(
                    sandbox=sandbox,
                    session=session,
                    admin_headers={"Authorization": f"Bearer {sandbox.admin_token}"},
                    agent_headers={"Authorization": f"Bearer {agent_token}"},
                    live=LiveWatch(sandbox.store),
                    seed=seed,
                    kubeconfig=kubeconfig,
                    tmp=tmp,
                    env=env,
                )
                try:
                    floor = await measure_floor(bench, rounds)
                    measured: dict[str, dict[str, AgentFigures]] = {}
                    for setup in setups:
                        measured[setup] = {}
                        for agent in agents:
                            async with setup_of(setup, bench):
                                place = bench.tmp / setup / agent
                                measured[setup][agent] = await measure_agent(
                                    bench, agent, rounds, place
                                )
                finally:
                    bench.live.close()
    return figures_json(rounds, floor, measured)


def setup_of(setup: str, bench: Bench) -> contextlib.AbstractAsyncContextManager[None]:
    """The API server alone (the operator detached), with the operator answering from inside
    the sandbox's loop, or with it answering from its own process over HTTP."""
    if setup == "apiserver":
        return operator_paused(bench.sandbox.store, bench.live)
    if setup == "operator-process":
        return operator_process(bench)
    return contextlib.nullcontext()


@contextlib.asynccontextmanager
async def operator_process(bench: Bench) -> AsyncIterator[None]:
    """The in-process operator detached, and bench/operator_process.py watching instead."""
    assert bench.sandbox.pki is not None
    command = [
        sys.executable, str(OPERATOR_PROCESS), bench.sandbox.url, bench.sandbox.admin_token,
        str(bench.sandbox.pki.ca.cert), "--scenario", SCENARIO,
        "--time-scale", str(bench.sandbox.options.time_scale),
    ]  # fmt: skip
    async with operator_paused(bench.sandbox.store, bench.live):
        process = await asyncio.create_subprocess_exec(
            *command, env=bench.env, stderr=asyncio.subprocess.PIPE
        )
        try:
            assert process.stderr is not None
            first = await asyncio.wait_for(process.stderr.readline(), SAMPLE_TIMEOUT_S)
            if b"watching" not in first:
                raise SystemExit(f"bench: the operator process did not start: {first!r}")
            yield
        finally:
            process.terminate()
            await process.wait()


# --- the output -------------------------------------------------------------------------


def figures_json(
    rounds: int, floor: list[float], measured: dict[str, dict[str, AgentFigures]]
) -> dict[str, Any]:
    return {
        "rounds": rounds,
        "ssa_floor_ms": summary_of(floor),
        "setups": {setup: setup_json(floor, agents) for setup, agents in measured.items()},
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "kernel": f"{platform.system()} {platform.release()}",
    }


def summary_of(samples: list[float]) -> dict[str, Any]:
    return {"p50": p50(samples), "p95": p95(samples), "samples": samples}


def setup_json(floor: list[float], measured: dict[str, AgentFigures]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "agents": {
            name: {
                "swap_to_applied_ms": summary_of(f.swap_ms),
                "drift_to_corrected_ms": summary_of(f.drift_ms),
                "writes_per_drift": sum(f.drift_writes) / max(len(f.drift_writes), 1),
                "logged": f.results,
            }
            for name, f in measured.items()
        }
    }
    if "cvsync" in measured:
        cvsync, floor50 = measured["cvsync"], p50(floor)
        ratios: dict[str, float] = {
            "swap_cvsync_to_floor": p50(cvsync.swap_ms) / floor50,
            "drift_cvsync_to_floor": p50(cvsync.drift_ms) / floor50,
        }
        goals = {
            "swap_within_5x_floor": ratios["swap_cvsync_to_floor"] <= GOAL_SWAP_FLOOR_FACTOR,
            "drift_within_3x_floor": ratios["drift_cvsync_to_floor"] <= GOAL_DRIFT_FLOOR_FACTOR,
        }
        if "poller" in measured:
            poller = measured["poller"]
            ratios["swap_cvsync_to_poller"] = p50(cvsync.swap_ms) / p50(poller.swap_ms)
            ratios["drift_cvsync_to_poller"] = p50(cvsync.drift_ms) / p50(poller.drift_ms)
            goals["swap_no_slower_than_poller"] = ratios["swap_cvsync_to_poller"] <= 1.0
        figures["ratios_p50"] = ratios
        figures["goals_met"] = goals
    return figures


def render_markdown(figures: dict[str, Any]) -> str:
    floor = figures["ssa_floor_ms"]

    def cell(summary: dict[str, Any] | None) -> str:
        return "" if summary is None else f"{summary['p50']:.1f} / {summary['p95']:.1f}"

    lines = [
        f"{figures['rounds']} rounds per agent and setup on one in-process sandbox ({SCENARIO}, "
        "HTTPS on 127.0.0.1), each agent on a freshly seeded ClusterVersion; milliseconds, "
        "p50 / p95",
        "",
        "| setup | figure | cvsync | naive poller | one SSA round trip | cvsync / poller | "
        "cvsync / SSA | goal (p50) | met? |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    notes = []
    for setup, measured in figures["setups"].items():
        agents: dict[str, Any] = measured["agents"]
        ratios: dict[str, float] = measured.get("ratios_p50", {})
        goals: dict[str, bool] = measured.get("goals_met", {})

        def ratio(key: str, ratios: dict[str, float] = ratios) -> str:
            return f"{ratios[key]:.2f}x" if key in ratios else ""

        def met(*keys: str, goals: dict[str, bool] = goals) -> str:
            known = [goals[k] for k in keys if k in goals]
            return "" if not known else "yes" if all(known) else "**NO**"

        for label, key, goal, goal_keys in (
            ("git-sync link swap -> applied", "swap", "<= poller, <= 5x SSA",
             ("swap_no_slower_than_poller", "swap_within_5x_floor")),
            ("live drift -> corrected", "drift", "<= 3x SSA", ("drift_within_3x_floor",)),
        ):  # fmt: skip
            figure = "swap_to_applied_ms" if key == "swap" else "drift_to_corrected_ms"
            row = [
                SETUP_TITLES[setup],
                label,
                cell(agents.get("cvsync", {}).get(figure)),
                cell(agents.get("poller", {}).get(figure)),
                cell(floor),
                ratio(f"{key}_cvsync_to_poller"),
                ratio(f"{key}_cvsync_to_floor"),
                goal,
                met(*goal_keys),
            ]
            lines.append("| " + " | ".join(row) + " |")
        for name, agent in agents.items():
            logged = ", ".join(f"{k} x{n}" for k, n in sorted(agent["logged"].items()))
            notes.append(
                f"{SETUP_TITLES[setup]}, {name}: {agent['writes_per_drift']:.2f} ClusterVersion "
                f"writes per drift corrected; logged {logged}"
            )
    lines += ["", *notes]
    load = ", ".join(f"{value:.2f}" for value in figures["load_average"])
    lines.append(
        f"os.cpu_count()={figures['cpu_count']}, load average {load} at the end, "
        f"Python {figures['python']}, {figures['kernel']}"
    )
    return "\n".join(lines)


def _choices(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        chosen = [name.strip() for name in text.split(",") if name.strip()]
        unknown = sorted(set(chosen) - set(allowed))
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}, not {text!r}")
        return chosen

    return parse


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=_positive, default=15, help="samples of each figure")
    parser.add_argument(
        "--agents",
        type=_choices(AGENTS),
        default=list(AGENTS),
        help="which agents to measure, in order (default: cvsync,poller)",
    )
    parser.add_argument(
        "--setups",
        type=_choices(SETUPS),
        default=list(SETUPS),
        help="the API server alone, with the simulated operator in the sandbox's loop, with it "
        "in its own process (default: all three)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--naive-poller",
        nargs=2,
        metavar=("KUBECONFIG", "SPEC_FILE"),
        help="run the naive poller itself (what the benchmark starts as the other agent)",
    )
    args = parser.parse_args(argv)
    if args.naive_poller:
        kubeconfig, spec_file = args.naive_poller
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(naive_poller(Path(kubeconfig), Path(spec_file)))
        return
    figures = asyncio.run(run(args.rounds, args.agents, args.setups))
    print(json.dumps(figures, indent=2) if args.json else render_markdown(figures))


if __name__ == "__main__":
    main()
