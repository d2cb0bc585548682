"""Benchmark `cvsync run`'s reconcile loop against the sandbox cluster, in one run.

What it measures, with an in-process sandbox (HTTPS on 127.0.0.1, scenario idle-4.15, in
this benchmark's own event loop) and `cvsync run --local-path` as a separate process (so
its RSS and CPU are its own) following a git-sync layout made here in a temporary
directory: a work clone, one `git worktree add --detach` per revision, and a `current`
symlink swapped atomically (a temporary symlink renamed over it with os.replace):

1. commit -> applied: for each of N commits (alternating spec.channel between stable-4.15
   and fast-4.15), commit in the work clone and create its worktree (untimed), then time
   from the swap of the link to the moment the live object shows the new channel. The
   change is detected by an in-process watch on the sandbox's store (`Store.watch`, the
   feed its watch API streams from) whose queue stamps each event as the store hands it
   over, synchronously inside the write: no polling interval, and nothing else running in
   the shared event loop delays the stamp. The old worktree is removed after each
   sample (git-sync removes it right after the swap; here it stays out of the timing).
   Baseline, the "floor": one server-side apply round trip (PATCH
   application/apply-patch+yaml, fieldManager=cvsync, one field changing) from this
   process to the same sandbox over HTTPS with a kept-alive connection, N requests,
   measured before `cvsync run` starts, with the simulated operator's store watch detached
   meanwhile (it shares this process's event loop, so its status rewrite after each
   change would otherwise land inside the client's round trip). Goal: p50 <= 250 ms and
   <= 3x the floor's p50 plus cvsync's work-tree debounce (GitSettings.debounce, 15 ms; a
   link swap itself is not debounced, so this goal is generous).
2. live drift -> corrected: M imperative JSON merge patches of spec.channel with
   fieldManager=oc through the sandbox API, timed from the store write of the patch to the
   store write that puts git's channel back (both stamped by the same store watch). It
   includes the simulated operator's reaction to the drift, which runs in the sandbox's
   loop before the watch event reaches cvsync (5-10 ms here). Goal: p50 <= 250 ms.
3. the `cvsync run` process: VmRSS from /proc/<pid>/status after the runs above and 5 s
   idle (goal <= 100 MB, 1 MB = 10^6 bytes); CPU from /proc/<pid>/stat utime+stime over a
   10 s idle window, as % of one core (goal < 1%); startup, from spawning the process to
   its first JSON cycle log line on stderr, median of K fresh processes (goal <= 2 s),
   against the baseline of spawning `python -c "import kubernetes_asyncio"` (the dominant
   import) until it exits, interleaved with them.

Between samples the benchmark waits until neither cvsync's log nor the live object has
changed for 150 ms (the simulated operator rewrites status after every channel change,
and cvsync answers that with a cycle of its own), so samples do not overlap.
Each cycle-triggered sample also records cvsync's own cycle duration from its log line,
which splits the latency into "swap -> cycle start" (watchdog, thread hop) and
the cycle itself (read the work tree, validate, apply; the live object comes from the watch).

Run from the repository root:

    .venv/bin/python bench/reconcile.py [--commits N] [--edits M] [--startups K] [--json]

`--json` prints the figures (and the raw samples, in ms) as one JSON document.
A default run takes about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import signal
import ssl
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.store import ChangeEvent, Store, Watcher
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "bench"
SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
CHANNELS = ("stable-4.15", "fast-4.15")  # idle-4.15 starts on the first
CV_URL_PATH = "/apis/config.openshift.io/v1/clusterversions/version"
AGENT_USER = "cvsync"
SCENARIO = "idle-4.15"

GOAL_LATENCY_MS = 250.0
GOAL_FLOOR_FACTOR = 3.0
DEBOUNCE_MS = GitSettings().debounce * 1000
GOAL_RSS_MB = 100.0
GOAL_IDLE_CPU_PERCENT = 1.0
GOAL_STARTUP_S = 2.0

QUIET_S = 0.15  # no log line and no store event for this long: cvsync is idle
SAMPLE_TIMEOUT_S = 10.0
RSS_IDLE_S = 5.0
CPU_WINDOW_S = 10.0
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cvsync bench",
    "GIT_AUTHOR_EMAIL": "bench@example.test",
    "GIT_COMMITTER_NAME": "cvsync bench",
    "GIT_COMMITTER_EMAIL": "bench@example.test",
}


# --- statistics -------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p95(samples: Sequence[float]) -> float:
    return percentile(samples, 0.95)


# --- the git-sync layout ----------------------------------------------------------------


async def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"bench: git {' '.join(args)} failed: {err.decode().strip()}")
    return out.decode().strip()


@dataclass
class GitSync:
    """What git-sync leaves on disk: a worktree per revision and a `current` symlink."""

    work: Path  # the work clone commits are made in
    root: Path  # holds rev-<sha>/ and the link
    env: dict[str, str]
    swaps: int = 0

    @property
    def link(self) -> Path:
        return self.root / "current"

    async def init(self) -> None:
        self.root.mkdir()
        await git(
            self.work.parent, self.env, "init", "--quiet", "--initial-branch=main", str(self.work)
        )

    async def commit(self, text: str, message: str) -> str:
        path = self.work / SPEC_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        await git(self.work, self.env, "add", "--all")
        await git(self.work, self.env, "commit", "--quiet", "-m", message)
        sha = await git(self.work, self.env, "rev-parse", "HEAD")
        await git(
            self.work, self.env, "worktree", "add", "--quiet", "--detach", str(self.tree(sha))
        )
        return sha

    def tree(self, sha: str) -> Path:
        return self.root / f"rev-{sha}"

    def swap(self, sha: str) -> None:
        """A new link renamed over the old one, as git-sync does."""
        self.swaps += 1
        temporary = self.root / f".current-{self.swaps}.tmp"
        os.symlink(self.tree(sha).name, temporary)
        os.replace(temporary, self.link)

    async def remove(self, sha: str) -> None:
        await git(self.work, self.env, "worktree", "remove", "--force", str(self.tree(sha)))


def spec_text(cluster_id: str, channel: str) -> str:
    return (
        "apiVersion: config.openshift.io/v1\n"
        "kind: ClusterVersion\n"
        "metadata:\n"
        "  name: version\n"
        "spec:\n"
        f"  clusterID: {cluster_id}\n"
        f"  channel: {channel}\n"
    )


# --- the live object, watched in process ------------------------------------------------


class StampedQueue(asyncio.Queue[ChangeEvent | None]):
    """A watch queue that notes when the store handed over each event: the store calls
    put_nowait synchronously inside the write, so the stamp is the moment the live object
    changed, whatever else the shared event loop runs before the benchmark wakes up."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: deque[float] = deque()

    def put_nowait(self, item: ChangeEvent | None) -> None:
        self.stamps.append(time.perf_counter())
        super().put_nowait(item)

    async def take(self) -> tuple[float, ChangeEvent | None]:
        item = await self.get()
        return self.stamps.popleft(), item

    def take_nowait(self) -> tuple[float, ChangeEvent | None]:
        item = self.get_nowait()
        return self.stamps.popleft(), item


class LiveWatch:
    """The sandbox store's change feed for ClusterVersion/version, stamped at each write."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._watcher: Watcher = store.watch(
            CLUSTER_VERSIONS.id, "", "version", since=store.resource_version
        )
        self._queue = StampedQueue()
        self._watcher.queue = self._queue
        self.last_event_at = time.perf_counter()
        self.events = 0

    def drain(self) -> None:
        while not self._queue.empty():
            self.last_event_at, _ = self._queue.take_nowait()
            self.events += 1

    async def until_channel(self, channel: str) -> float:
        """When the store first held an object whose spec.channel is `channel`."""
        deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
        while True:
            remaining = deadline - time.perf_counter()
            try:
                stamp, event = await asyncio.wait_for(self._queue.take(), max(remaining, 0.0))
            except TimeoutError:
                raise SystemExit(
                    f"bench: the live channel did not become {channel} in {SAMPLE_TIMEOUT_S} s"
                ) from None
            self.events += 1
            self.last_event_at = stamp
            if event is None:
                raise SystemExit("bench: the sandbox ended the store watch")
            if (event.object.get("spec") or {}).get("channel") == channel:
                return stamp

    def others(self) -> list[Watcher]:
        """The store's other watchers: the simulated operator's, and cvsync's watches."""
        return [w for w in self._store.watchers if w is not self._watcher]

    def close(self) -> None:
        self._store.stop_watching(self._watcher)


@contextlib.asynccontextmanager
async def operator_paused(store: Store, live: LiveWatch) -> AsyncIterator[None]:
    """Detach the simulated operator's store watcher, so it does not react to each write.

    The operator runs in the sandbox's event loop, which the benchmark's own client shares:
    left attached, its status rewrite after every channel change (5-10 ms here) would land
    between the server's answer and the client reading it, inside the floor's round trip.
    Reattached afterwards; the operator then reconciles from the live object as it is.
    """
    deadline = time.perf_counter() + 5

    def operators() -> list[Watcher]:  # the operator's watch is the store's only internal one
        return [watcher for watcher in live.others() if watcher.internal]

    while not operators():  # the operator task registers its watch when it first runs
        if time.perf_counter() > deadline:
            raise SystemExit("bench: the simulated operator never started watching")
        await asyncio.sleep(0.01)
    detached = operators()
    for watcher in detached:
        store.stop_watching(watcher)
    try:
        yield
    finally:
        store.watchers.extend(detached)


# --- the cvsync run process -------------------------------------------------------------


@dataclass
class Cycle:
    at: float  # perf_counter() when the line arrived
    record: dict[str, Any]


@dataclass
class AgentProcess:
    """`cvsync run` as a child process, its JSON log lines read from stderr as they come."""

    process: asyncio.subprocess.Process
    spawned_at: float
    cycles: list[Cycle] = field(default_factory=list)
    other_lines: list[str] = field(default_factory=list)
    last_line_at: float = 0.0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, command: Sequence[str], env: dict[str, str]) -> AgentProcess:
        spawned_at = time.perf_counter()
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        agent = cls(process, spawned_at, last_line_at=spawned_at)
        agent._reader = asyncio.create_task(agent._read(), name="cvsync-stderr")
        return agent

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            now = time.perf_counter()
            self.last_line_at = now
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and "result" in record:
                self.cycles.append(Cycle(now, record))
            else:
                self.other_lines.append(line.decode("utf-8", "replace").rstrip())
            self._changed.set()
        self._changed.set()

    async def wait_cycle(self, after: int, wanted: Callable[[dict[str, Any]], bool]) -> Cycle:
        """The first cycle logged at index >= `after` that `wanted` accepts."""
        deadline = time.perf_counter() + SAMPLE_TIMEOUT_S * 3
        index = after
        while True:
            while index < len(self.cycles):
                if wanted(self.cycles[index].record):
                    return self.cycles[index]
                index += 1
            if self._reader is not None and self._reader.done():
                raise SystemExit(f"bench: cvsync run exited early:\n{self.tail()}")
            self._changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise SystemExit(f"bench: no expected cycle from cvsync run:\n{self.tail()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    def tail(self) -> str:
        lines = [json.dumps(c.record) for c in self.cycles[-5:]] + self.other_lines[-10:]
        return "\n".join(lines)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader
        return int(self.process.returncode or 0)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    ticks = int(fields[11]) + int(fields[12])  # utime (14th), stime (15th)
    return ticks / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    raise SystemExit(f"bench: no {key} in /proc/{pid}/status")


# --- the measurements -------------------------------------------------------------------


@dataclass
class Context:
    sandbox: Sandbox
    session: aiohttp.ClientSession
    admin_headers: dict[str, str]
    agent_headers: dict[str, str]
    gitsync: GitSync
    live: LiveWatch
    cluster_id: str
    agent_command: list[str]
    env: dict[str, str]


@dataclass
class Figures:
    commits: int
    edits: int
    startups: int
    floor_ms: list[float]
    commit_ms: list[float]
    commit_cycle_ms: list[float]
    drift_ms: list[float]
    drift_cycle_ms: list[float]
    drift_reasons: dict[str, int]
    rss_mb: float
    peak_rss_mb: float
    idle_cpu_percent: float
    idle_cycles: int
    idle_store_events: int
    startup_s: list[float]
    import_baseline_s: list[float]
    main_startup_s: float
    cpu_count: int | None
    python: str
    kernel: str

    @property
    def commit_limit_ms(self) -> float:
        return min(GOAL_LATENCY_MS, GOAL_FLOOR_FACTOR * p50(self.floor_ms) + DEBOUNCE_MS)

    def goals(self) -> dict[str, bool]:
        return {
            "commit_to_applied": p50(self.commit_ms) <= self.commit_limit_ms,
            "drift_to_corrected": p50(self.drift_ms) <= GOAL_LATENCY_MS,
            "rss": self.rss_mb <= GOAL_RSS_MB,
            "idle_cpu": self.idle_cpu_percent < GOAL_IDLE_CPU_PERCENT,
            "startup": p50(self.startup_s) <= GOAL_STARTUP_S,
        }

    def as_json(self) -> dict[str, Any]:
        def summary(samples: list[float]) -> dict[str, float]:
            return {"p50": p50(samples), "p95": p95(samples)}

        return {
            "commits": self.commits,
            "edits": self.edits,
            "startups": self.startups,
            "floor_ms": summary(self.floor_ms),
            "commit_to_applied_ms": summary(self.commit_ms),
            "commit_cycle_ms": summary(self.commit_cycle_ms),
            "commit_to_floor_ratio": p50(self.commit_ms) / p50(self.floor_ms),
            "commit_limit_ms": self.commit_limit_ms,
            "debounce_ms": DEBOUNCE_MS,
            "drift_to_corrected_ms": summary(self.drift_ms),
            "drift_cycle_ms": summary(self.drift_cycle_ms),
            "drift_reasons": self.drift_reasons,
            "rss_mb": self.rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
            "idle_cpu_percent": self.idle_cpu_percent,
            "idle_cycles": self.idle_cycles,
            "idle_store_events": self.idle_store_events,
            "startup_s": summary(self.startup_s),
            "import_baseline_s": summary(self.import_baseline_s),
            "startup_to_baseline_ratio": p50(self.startup_s) / p50(self.import_baseline_s),
            "main_process_startup_s": self.main_startup_s,
            "goals_met": self.goals(),
            "cpu_count": self.cpu_count,
            "python": self.python,
            "kernel": self.kernel,
            "samples_ms": {
                "floor": self.floor_ms,
                "commit_to_applied": self.commit_ms,
                "drift_to_corrected": self.drift_ms,
            },
            "samples_s": {"startup": self.startup_s, "import_baseline": self.import_baseline_s},
        }


def apply_body(cluster_id: str, channel: str) -> bytes:
    """What cvsync applies for a channel change: the declared fields only."""
    return json.dumps(
        {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"clusterID": cluster_id, "channel": channel},
        }
    ).encode()


async def server_side_apply(ctx: Context, channel: str, *, force: bool = False) -> None:
    query = "?fieldManager=cvsync" + ("&force=true" if force else "")
    async with ctx.session.patch(
        CV_URL_PATH + query,
        data=apply_body(ctx.cluster_id, channel),
        headers={**ctx.agent_headers, "Content-Type": "application/apply-patch+yaml"},
    ) as response:
        body = await response.read()
        if response.status != 200:
            raise SystemExit(f"bench: apply answered {response.status}: {body[:300]!r}")


async def measure_floor(ctx: Context, count: int) -> list[float]:
    """Server-side apply round trips, one field changing each time; ends on CHANNELS[0]."""
    await server_side_apply(ctx, CHANNELS[1], force=True)  # take channel from the installer
    for index in range(10):  # warm up
        await server_side_apply(ctx, CHANNELS[index % 2])
    samples = []
    for index in range(count):
        channel = CHANNELS[(index + 1) % 2]
        started = time.perf_counter()
        await server_side_apply(ctx, channel)
        samples.append(time.perf_counter() - started)
    await server_side_apply(ctx, CHANNELS[0])
    return samples


async def settle(agent: AgentProcess, live: LiveWatch) -> None:
    """Wait until cvsync has logged nothing and the live object has not changed for QUIET_S."""
    deadline = time.perf_counter() + SAMPLE_TIMEOUT_S
    while True:
        live.drain()
        now = time.perf_counter()
        quiet_for = now - max(agent.last_line_at, live.last_event_at)
        if quiet_for >= QUIET_S:
            return
        if now > deadline:
            raise SystemExit(f"bench: cvsync run never went quiet:\n{agent.tail()}")
        await asyncio.sleep(min(QUIET_S - quiet_for, 0.02))


def applied(sha: str) -> Callable[[dict[str, Any]], bool]:
    """Accepts the log record of the cycle that applied revision `sha`."""

    def wanted(record: dict[str, Any]) -> bool:
        return record.get("result") == "Applied" and sha in str(record.get("revision"))

    return wanted


async def measure_commits(
    ctx: Context, agent: AgentProcess, count: int, first_sha: str
) -> tuple[list[float], list[float]]:
    latencies, cycle_times = [], []
    previous = first_sha
    for index in range(count):
        channel = CHANNELS[(index + 1) % 2]
        sha = await ctx.gitsync.commit(spec_text(ctx.cluster_id, channel), f"{index}: {channel}")
        await settle(agent, ctx.live)
        logged = len(agent.cycles)
        started = time.perf_counter()
        ctx.gitsync.swap(sha)
        arrived = await ctx.live.until_channel(channel)
        latencies.append(arrived - started)
        cycle = await agent.wait_cycle(logged, applied(sha))
        cycle_times.append(float(cycle.record["seconds"]))
        await ctx.gitsync.remove(previous)
        previous = sha
    return latencies, cycle_times


async def measure_drift(
    ctx: Context, agent: AgentProcess, count: int, git_channel: str
) -> tuple[list[float], list[float], dict[str, int]]:
    other = CHANNELS[1] if git_channel == CHANNELS[0] else CHANNELS[0]
    latencies, cycle_times = [], []
    reasons: dict[str, int] = {}
    for _ in range(count):
        await settle(agent, ctx.live)
        logged = len(agent.cycles)
        async with ctx.session.patch(
            CV_URL_PATH + "?fieldManager=oc",
            data=json.dumps({"spec": {"channel": other}}).encode(),
            headers={**ctx.admin_headers, "Content-Type": "application/merge-patch+json"},
        ) as response:
            body = await response.read()
            if response.status != 200:
                raise SystemExit(f"bench: merge patch answered {response.status}: {body[:300]!r}")
        drifted = await ctx.live.until_channel(other)
        arrived = await ctx.live.until_channel(git_channel)
        latencies.append(arrived - drifted)
        cycle = await agent.wait_cycle(logged, lambda r: r.get("result") == "Applied")
        cycle_times.append(float(cycle.record["seconds"]))
        reason = str(cycle.record.get("reason"))
        reasons[reason] = reasons.get(reason, 0) + 1
    return latencies, cycle_times, reasons


async def measure_idle(ctx: Context, agent: AgentProcess) -> dict[str, Any]:
    await settle(agent, ctx.live)
    await asyncio.sleep(RSS_IDLE_S)
    rss_kib = status_kib(agent.pid, "VmRSS")
    peak_kib = status_kib(agent.pid, "VmHWM")
    ctx.live.drain()
    cycles_before, events_before = len(agent.cycles), ctx.live.events
    cpu_before, wall_before = cpu_seconds(agent.pid), time.perf_counter()
    await asyncio.sleep(CPU_WINDOW_S)
    cpu_after, wall_after = cpu_seconds(agent.pid), time.perf_counter()
    ctx.live.drain()
    return {
        "rss_mb": rss_kib * 1024 / 1e6,
        "peak_rss_mb": peak_kib * 1024 / 1e6,
        "idle_cpu_percent": 100 * (cpu_after - cpu_before) / (wall_after - wall_before),
        "idle_cycles": len(agent.cycles) - cycles_before,
        "idle_store_events": ctx.live.events - events_before,
    }


async def time_to_first_cycle(ctx: Context) -> float:
    watches = len(ctx.live.others())
    agent = await AgentProcess.spawn(ctx.agent_command, ctx.env)
    try:
        cycle = await agent.wait_cycle(0, lambda _: True)
        # Stop it once its live watch is open, not while it is being set up.
        deadline = time.perf_counter() + 5
        while len(ctx.live.others()) <= watches and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
    finally:
        await agent.stop()
    return cycle.at - agent.spawned_at


async def time_import_baseline(env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import kubernetes_asyncio", cwd=REPO_ROOT, env=env
    )
    if await process.wait() != 0:
        raise SystemExit("bench: python -c 'import kubernetes_asyncio' failed")
    return time.perf_counter() - started


async def measure_startups(ctx: Context, count: int) -> tuple[list[float], list[float]]:
    await time_import_baseline(ctx.env)  # warm the page cache for both
    startups, baselines = [], []
    for _ in range(count):
        baselines.append(await time_import_baseline(ctx.env))
        await settle_process_free(ctx)
        startups.append(await time_to_first_cycle(ctx))
    return startups, baselines


async def settle_process_free(ctx: Context) -> None:
    """The previous process's last writes (if any) are done with before the next starts."""
    await asyncio.sleep(0.1)
    ctx.live.drain()


# --- the run ----------------------------------------------------------------------------


def isolated_env(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CVSYNC_")}
    env.pop("KUBECONFIG", None)
    env |= GIT_IDENTITY | {
        "HOME": str(home),
        "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return env


async def run(commits: int, edits: int, startups: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="cvsync-bench-reconcile-") as name:
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
            live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert live is not None
            assert live["spec"]["channel"] == CHANNELS[0]
            gitsync = GitSync(tmp / "work", tmp / "root", env)
            command = [
                sys.executable, "-m", "agent", "run", "--cluster", CLUSTER,
                "--local-path", str(gitsync.link), "--kubeconfig", str(kubeconfig),
                "--workdir", str(tmp / "cvsync"), "--http-address", "127.0.0.1:0",
            ]  # fmt: skip
            async with aiohttp.ClientSession(
                base_url=sandbox.url, connector=aiohttp.TCPConnector(ssl=tls)
            ) as session:
                ctx = Context(
                    sandbox=sandbox,
                    session=session,
                    admin_headers={"Authorization": f"Bearer {sandbox.admin_token}"},
                    agent_headers={"Authorization": f"Bearer {agent_token}"},
                    gitsync=gitsync,
                    live=LiveWatch(sandbox.store),
                    cluster_id=live["spec"]["clusterID"],
                    agent_command=command,
                    env=env,
                )
                try:
                    return await measure_all(ctx, commits, edits, startups)
                finally:
                    ctx.live.close()


async def measure_all(ctx: Context, commits: int, edits: int, startups: int) -> Figures:
    await ctx.gitsync.init()
    first = await ctx.gitsync.commit(spec_text(ctx.cluster_id, CHANNELS[0]), "initial")
    ctx.gitsync.swap(first)
    async with operator_paused(ctx.sandbox.store, ctx.live):
        floor = await measure_floor(ctx, commits)

    agent = await AgentProcess.spawn(ctx.agent_command, ctx.env)
    try:
        started = await agent.wait_cycle(0, lambda _: True)
        if started.record.get("result") not in ("InSync", "Applied"):
            raise SystemExit(f"bench: cvsync run's first cycle: {started.record}")
        commit_ms, commit_cycle = await measure_commits(ctx, agent, commits, first)
        git_channel = CHANNELS[commits % 2]
        drift_ms, drift_cycle, reasons = await measure_drift(ctx, agent, edits, git_channel)
        idle = await measure_idle(ctx, agent)
    finally:
        code = await agent.stop()
    if code != 0:
        raise SystemExit(f"bench: cvsync run exited {code}:\n{agent.tail()}")
    startup_s, baseline_s = await measure_startups(ctx, startups)

    def ms(samples: list[float]) -> list[float]:
        return [s * 1000 for s in samples]

    return Figures(
        commits=commits,
        edits=edits,
        startups=startups,
        floor_ms=ms(floor),
        commit_ms=ms(commit_ms),
        commit_cycle_ms=ms(commit_cycle),
        drift_ms=ms(drift_ms),
        drift_cycle_ms=ms(drift_cycle),
        drift_reasons=reasons,
        startup_s=startup_s,
        import_baseline_s=baseline_s,
        main_startup_s=started.at - agent.spawned_at,
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        kernel=f"{platform.system()} {platform.release()}",
        **idle,
    )


# --- the output -------------------------------------------------------------------------


def render_markdown(f: Figures) -> str:
    goals = f.goals()

    def met(key: str) -> str:
        return "yes" if goals[key] else "**NO**"

    floor50, floor95 = p50(f.floor_ms), p95(f.floor_ms)
    base50 = p50(f.import_baseline_s)
    rows = [
        (
            f"commit -> applied ({f.commits} commits, git-sync swap to live change)",
            f"{p50(f.commit_ms):.1f} ms",
            f"{p95(f.commit_ms):.1f} ms",
            f"{p50(f.commit_ms) / floor50:.1f}x floor",
            f"p50 <= 250 ms and <= 3x floor + {DEBOUNCE_MS:.0f} ms (= {f.commit_limit_ms:.1f} ms)",
            met("commit_to_applied"),
        ),
        (
            "  of which: cvsync's cycle (read tree, validate, apply; from its log)",
            f"{p50(f.commit_cycle_ms):.1f} ms",
            f"{p95(f.commit_cycle_ms):.1f} ms",
            "",
            "",
            "",
        ),
        (
            f"floor: one server-side apply round trip ({f.commits} requests, baseline)",
            f"{floor50:.2f} ms",
            f"{floor95:.2f} ms",
            "1.0x",
            "",
            "",
        ),
        (
            f"live drift -> corrected ({f.edits} `oc` merge patches)",
            f"{p50(f.drift_ms):.1f} ms",
            f"{p95(f.drift_ms):.1f} ms",
            f"{p50(f.drift_ms) / floor50:.1f}x floor",
            "p50 <= 250 ms",
            met("drift_to_corrected"),
        ),
        (
            "  of which: cvsync's cycle (a pinned forced apply; from its log)",
            f"{p50(f.drift_cycle_ms):.1f} ms",
            f"{p95(f.drift_cycle_ms):.1f} ms",
            "",
            "",
            "",
        ),
        (
            f"RSS of `cvsync run` after the runs and {RSS_IDLE_S:.0f} s idle (VmRSS)",
            "",
            f"{f.rss_mb:.1f} MB (peak {f.peak_rss_mb:.1f} MB)",
            "",
            f"<= {GOAL_RSS_MB:.0f} MB",
            met("rss"),
        ),
        (
            f"idle CPU of `cvsync run` over {CPU_WINDOW_S:.0f} s (% of one core)",
            "",
            f"{f.idle_cpu_percent:.2f}% ({f.idle_cycles} cycles, "
            f"{f.idle_store_events} live changes)",
            "",
            f"< {GOAL_IDLE_CPU_PERCENT:.0f}%",
            met("idle_cpu"),
        ),
        (
            f"startup to first completed cycle (median of {f.startups})",
            f"{p50(f.startup_s):.2f} s",
            f"max {max(f.startup_s):.2f} s",
            f"{p50(f.startup_s) / base50:.2f}x baseline",
            f"<= {GOAL_STARTUP_S:.0f} s",
            met("startup"),
        ),
        (
            "baseline: `python -c 'import kubernetes_asyncio'` to exit",
            f"{base50:.2f} s",
            f"max {max(f.import_baseline_s):.2f} s",
            "1.00x",
            "",
            "",
        ),
    ]
    lines = [
        "`cvsync run --local-path` (git-sync layout) against the in-process sandbox "
        f"({SCENARIO}, HTTPS on 127.0.0.1)",
        "",
        "| measurement | p50 | p95 or value | ratio | goal | met? |",
        "|---|---:|---:|---:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    reasons = ", ".join(f"{reason} x{n}" for reason, n in sorted(f.drift_reasons.items()))
    lines += [
        "",
        f"Drift cycles: {reasons}. The first cvsync run of this benchmark took "
        f"{f.main_startup_s:.2f} s to its first cycle.",
        f"os.cpu_count()={f.cpu_count}, Python {f.python}, {f.kernel}",
    ]
    return "\n".join(lines)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--commits", type=_positive, default=50, help="commits (and floor requests)"
    )
    parser.add_argument("--edits", type=_positive, default=50, help="drift edits")
    parser.add_argument("--startups", type=_positive, default=3, help="fresh cvsync processes")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args.commits, args.edits, args.startups))
    print(json.dumps(figures.as_json(), indent=2) if args.json else render_markdown(figures))


if __name__ == "__main__":
    main()
