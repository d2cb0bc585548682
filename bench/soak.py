"""Soak `cvsync run` against the sandbox: drift every second, a broken commit every few seconds,
and the process's memory, file descriptors and cycle times over the whole run.

What runs: an in-process sandbox (HTTPS on 127.0.0.1, scenario idle-4.15, in this
benchmark's own event loop), a bare git remote in a temporary directory, and `cvsync run
--repo file://...` as a separate process (so its RSS and file descriptors are its own), with
write-back to the same remote (status every 30 s at most, the default) and its webhook on.

For --minutes (default 10), one tick every --drift-every seconds (1):
1. when a commit is due (every --commit-every seconds, 2.5), a commit is pushed and the
   webhook called; commits alternate between a broken one, rotating through the hostile
   kinds in HOSTILE (invalid YAML, a file over 1 MiB, deep nesting, a broken policy, wrong
   types, a half-megabyte value, an alias bomb, bytes that are not UTF-8, a file of empty
   documents, duplicate keys), and a good one that switches spec.channel between
   stable-4.15 and fast-4.15. A commit counts as seen once cvsync logs a cycle that
   attempted it (and, for a good one, once the live channel is git's new one).
2. drift: an imperative JSON merge patch of spec.channel to candidate-4.15 with
   fieldManager=oc (what `oc patch` does), timed from the store write of the patch to the
   store write that puts git's channel back (both stamped by an in-process watch on the
   sandbox's store, synchronously inside the write).
Every --sample-every seconds (5): VmRSS from /proc/<pid>/status and the number of entries
in /proc/<pid>/fd.

Reported: RSS at start (after cvsync's first cycle), after the warm-up (--warmup-minutes,
default a fifth of the run, at most 2) and at the end, with the peak (VmHWM); the slope of
RSS after the warm-up (least squares over the samples, MB per minute; 1 MB = 10^6 bytes) and
the end-to-warm-up ratio; open file descriptors at start and end; drifts injected and
corrected (drift -> corrected p50/p99); commits pushed and seen; cycle duration p50/p99 from
cvsync's own log lines, with the cycles by result. Goals: RSS flat after the warm-up (slope
<= 0.05 MB/min, i.e. under 0.5 MB over ten minutes), fds at the end no more than at the
start + 2 (a git fetch or push in flight holds pipes), every drift corrected, every commit
seen.

Run from the repository root:

    .venv/bin/python bench/soak.py [--minutes M] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import platform
import socket
import ssl
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.store import ChangeEvent, Store, Watcher
from agent.sandbox.server import Sandbox, SandboxOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "soak"
SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
POLICY_PATH = f"clusters/{CLUSTER}/policy.yaml"
CHANNELS = ("stable-4.15", "fast-4.15")  # idle-4.15 starts on the first
DRIFT_CHANNEL = "candidate-4.15"
CV_URL_PATH = "/apis/config.openshift.io/v1/clusterversions/version"
AGENT_USER = "cvsync"
SCENARIO = "idle-4.15"
WEBHOOK_SECRET = b"soak-webhook-secret"

GOAL_SLOPE_MB_PER_MIN = 0.05
GOAL_FD_SLACK = 2
WAIT_S = 30.0  # for one drift's correction or one commit's cycle
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cvsync soak",
    "GIT_AUTHOR_EMAIL": "soak@example.test",
    "GIT_COMMITTER_NAME": "cvsync soak",
    "GIT_COMMITTER_EMAIL": "soak@example.test",
}


# --- the commits ------------------------------------------------------------------------


def spec_text(cluster_id: str, channel: str, extra: str = "") -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n{extra}"
    )


Files = dict[str, bytes | None]  # None: remove the file
Hostile = Callable[[str, str, int], Files]  # (cluster ID, git's channel, commit number)

# (name for --hostile, what it is, the files of the commit)
HOSTILE: tuple[tuple[str, str, Hostile], ...] = (
    (
        "invalid-yaml",
        "invalid YAML",
        lambda cid, ch, n: {SPEC_PATH: f"spec: [unclosed {n}\n  - {{".encode()},
    ),
    (
        "over-1mib",
        "a file over 1 MiB",
        lambda cid, ch, n: {SPEC_PATH: spec_text(cid, ch, f"# {n} " + "x" * 1_500_000).encode()},
    ),
    (
        "deep-nesting",
        "deep nesting",
        lambda cid, ch, n: {
            SPEC_PATH: spec_text(cid, ch, f"  overrides: {'[' * 3000}{n}{']' * 3000}\n").encode()
        },
    ),
    (
        "broken-policy",
        "a broken policy",
        lambda cid, ch, n: {
            POLICY_PATH: (
                "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\n"
                f"spec:\n  maintenanceWindows: {n}\n  blackouts: [{{from: never}}]\n"
            ).encode()
        },
    ),
    (
        "wrong-types",
        "wrong types",
        lambda cid, ch, n: {SPEC_PATH: spec_text(cid, str(n), "  upstream: 7\n").encode()},
    ),
    (
        "half-megabyte",
        "a half-megabyte value",
        lambda cid, ch, n: {
            SPEC_PATH: spec_text(cid, ch, f"  upstream: 'not a url {n} {'u' * 500_000}'\n").encode()
        },
    ),
    (
        "alias-bomb",
        "an alias bomb",
        lambda cid, ch, n: {
            SPEC_PATH: (
                f"a: &a [{n}, {', '.join(['x'] * 60)}]\nb: &b [{', '.join(['*a'] * 60)}]\n"
                f"c: &c [{', '.join(['*b'] * 60)}]\nd: [{', '.join(['*c'] * 60)}]\n"
            ).encode()
        },
    ),
    (
        "not-utf8",
        "bytes that are not UTF-8",
        lambda cid, ch, n: {SPEC_PATH: b"\xff\xfe\x00 %d" % n},
    ),
    (
        "empty-documents",
        "a file of empty documents",
        lambda cid, ch, n: {SPEC_PATH: f"# {n}\n".encode() + b"---\n" * 2000},
    ),
    (
        "duplicate-keys",
        "duplicate keys",
        lambda cid, ch, n: {SPEC_PATH: spec_text(cid, ch, f"  channel: fast-4.{n}\n").encode()},
    ),
)


async def run_git(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """git without blocking the event loop: the sandbox answers cvsync from the same loop."""
    process = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    return int(process.returncode or 0), out.decode().strip(), err.decode().strip()


async def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    code, out, err = await run_git(cwd, env, *args)
    if code != 0:
        raise SystemExit(f"bench: git {' '.join(args)} failed: {err}")
    return out


@dataclass
class Remote:
    """A bare remote and a work clone; cvsync's write-back pushes to the same remote."""

    root: Path
    env: dict[str, str]

    @property
    def bare(self) -> Path:
        return self.root / "remote.git"

    @property
    def work(self) -> Path:
        return self.root / "work"

    async def init(self) -> None:
        self.bare.mkdir(parents=True)
        await git(self.bare, self.env, "init", "--quiet", "--bare", "--initial-branch=main")
        await git(self.root, self.env, "clone", "--quiet", str(self.bare), str(self.work))
        await git(self.work, self.env, "checkout", "--quiet", "-B", "main")

    async def commit(self, files: Files, message: str) -> str:
        for name, data in files.items():
            path = self.work / name
            if data is None:
                if path.exists():
                    await git(self.work, self.env, "rm", "--quiet", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            await git(self.work, self.env, "add", name)
        await git(self.work, self.env, "commit", "--quiet", "--allow-empty", "-m", message)
        for _ in range(10):
            if await git(self.work, self.env, "ls-remote", "--heads", "origin", "main"):
                await git(self.work, self.env, "pull", "--quiet", "--rebase", "origin", "main")
            # cvsync's status commits race ours to the same branch, as they would in real life.
            code, _, _ = await run_git(self.work, self.env, "push", "--quiet", "origin", "main")
            if code == 0:
                break
        else:
            raise SystemExit("bench: could not push a commit in 10 attempts")
        return await git(self.work, self.env, "rev-parse", "HEAD")


# --- the live object and the process ----------------------------------------------------


class StampedQueue(asyncio.Queue[ChangeEvent | None]):
    """A watch queue that notes when the store handed over each event (inside the write)."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: deque[float] = deque()

    def put_nowait(self, item: ChangeEvent | None) -> None:
        self.stamps.append(time.perf_counter())
        super().put_nowait(item)


class LiveWatch:
    """The sandbox store's change feed for ClusterVersion/version, stamped at each write."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._watcher: Watcher = store.watch(
            CLUSTER_VERSIONS.id, "", "version", since=store.resource_version
        )
        self._queue = StampedQueue()
        self._watcher.queue = self._queue

    async def until_channel(self, channel: str, timeout: float = WAIT_S) -> float | None:
        """When the store first held spec.channel == `channel`; None after `timeout`."""
        deadline = time.perf_counter() + timeout
        while True:
            try:
                event = await asyncio.wait_for(
                    self._queue.get(), max(deadline - time.perf_counter(), 0.0)
                )
            except TimeoutError:
                return None
            stamp = self._queue.stamps.popleft()
            if event is None:
                raise SystemExit("bench: the sandbox ended the store watch")
            if (event.object.get("spec") or {}).get("channel") == channel:
                return stamp

    def close(self) -> None:
        self._store.stop_watching(self._watcher)


@dataclass
class AgentProcess:
    """`cvsync run` as a child process; its JSON cycle lines are tallied as they come."""

    process: asyncio.subprocess.Process
    cycle_seconds: list[float] = field(default_factory=list)
    results: Counter[str] = field(default_factory=Counter)
    attempted: dict[str, str] = field(default_factory=dict)  # revision -> first reason
    other_lines: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    first_cycle: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def spawn(cls, command: Sequence[str], env: dict[str, str]) -> AgentProcess:
        process = await asyncio.create_subprocess_exec(
            *command, cwd=REPO_ROOT, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, limit=16 * 1024 * 1024,
        )  # fmt: skip
        agent = cls(process)
        agent._reader = asyncio.create_task(agent._read(), name="cvsync-stderr")
        return agent

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and "result" in record and "seconds" in record:
                self.cycle_seconds.append(float(record["seconds"]))
                self.results[str(record["result"])] += 1
                self.attempted.setdefault(str(record.get("attempted")), str(record.get("reason")))
                self.first_cycle.set()
            else:
                self.other_lines.append(line.decode("utf-8", "replace").rstrip()[:300])
            self._changed.set()
        self._changed.set()

    async def until_attempted(self, sha: str, timeout: float = WAIT_S) -> str | None:
        """The reason of the first cycle that attempted commit `sha`; None if none was logged
        within `timeout`."""
        deadline = time.perf_counter() + timeout
        wanted = f"main@sha1:{sha}"
        while wanted not in self.attempted:
            if self._reader is not None and self._reader.done():
                raise SystemExit(f"bench: cvsync run exited early:\n{self.tail()}")
            self._changed.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.attempted[wanted]

    def tail(self) -> str:
        return "\n".join(self.other_lines)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 15)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._reader is not None:
            await self._reader
        return int(self.process.returncode or 0)


def process_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/status (VmRSS, RssAnon, VmHWM...)."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            figures[key] = int(value.split()[0])
    return figures


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- statistics -------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); nan for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return math.nan
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return math.nan
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


# --- the run ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingredients:
    """What the soak throws at cvsync; leaving one out at a time tells which one costs memory."""

    hostile: tuple[str, ...] = tuple(slug for slug, _, _ in HOSTILE)  # none: only good commits
    webhook: bool = True  # False: cvsync polls the remote every second instead
    write_back: bool = True
    drift: bool = True

    def describe(self) -> str:
        parts = [
            "all hostile kinds"
            if len(self.hostile) == len(HOSTILE)
            else f"hostile: {', '.join(self.hostile) or 'none'}"
        ]
        parts += [] if self.webhook else ["no webhook (polling every second)"]
        parts += [] if self.write_back else ["no write-back"]
        parts += [] if self.drift else ["no drift"]
        return "; ".join(parts)


@dataclass
class Sample:
    at: float  # seconds since cvsync's first cycle
    rss_mb: float
    anon_mb: float  # RssAnon: the process's own memory, without mapped files
    fds: int

    @classmethod
    def take(cls, pid: int, at: float) -> Sample:
        status = process_status(pid)
        return cls(at, status["VmRSS"] * 1024 / 1e6, status["RssAnon"] * 1024 / 1e6, open_fds(pid))


@dataclass
class Figures:
    minutes: float
    warmup_minutes: float
    ingredients: Ingredients
    samples: list[Sample]
    peak_rss_mb: float
    drifts: int
    corrected: int
    drift_ms: list[float]
    commits_good: int
    commits_bad: int
    commits_seen: int
    hostile_reasons: dict[str, int]
    cycle_ms: list[float]
    cycle_results: dict[str, int]
    cpu_count: int | None
    python: str
    kernel: str

    def rss_at(self, seconds: float) -> float:
        """The first sample at or after `seconds` (the last one if none)."""
        return next((s.rss_mb for s in self.samples if s.at >= seconds), self.samples[-1].rss_mb)

    @property
    def start(self) -> Sample:
        return self.samples[0]

    @property
    def end(self) -> Sample:
        return self.samples[-1]

    @property
    def warm_rss_mb(self) -> float:
        return self.rss_at(self.warmup_minutes * 60)

    @property
    def slope(self) -> float:
        warm = self.warmup_minutes * 60
        return slope_per_minute([(s.at, s.rss_mb) for s in self.samples if s.at >= warm])

    @property
    def anon_slope(self) -> float:
        warm = self.warmup_minutes * 60
        return slope_per_minute([(s.at, s.anon_mb) for s in self.samples if s.at >= warm])

    def goals(self) -> dict[str, bool]:
        return {
            "rss_flat": self.slope <= GOAL_SLOPE_MB_PER_MIN,
            "fds": self.end.fds <= self.start.fds + GOAL_FD_SLACK,
            "drifts_corrected": self.corrected == self.drifts,
            "commits_seen": self.commits_seen == self.commits_good + self.commits_bad,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "minutes": self.minutes,
            "warmup_minutes": self.warmup_minutes,
            "ingredients": {
                "hostile": list(self.ingredients.hostile),
                "webhook": self.ingredients.webhook,
                "write_back": self.ingredients.write_back,
                "drift": self.ingredients.drift,
            },
            "rss_mb": {
                "start": self.start.rss_mb,
                "after_warmup": self.warm_rss_mb,
                "end": self.end.rss_mb,
                "peak": self.peak_rss_mb,
                "slope_per_minute_after_warmup": self.slope,
                "end_to_warmup_ratio": self.end.rss_mb / self.warm_rss_mb,
            },
            "rss_anon_mb": {
                "start": self.start.anon_mb,
                "end": self.end.anon_mb,
                "slope_per_minute_after_warmup": self.anon_slope,
            },
            "fds": {"start": self.start.fds, "end": self.end.fds},
            "drifts": {
                "injected": self.drifts,
                "corrected": self.corrected,
                "p50_ms": percentile(self.drift_ms, 0.5),
                "p99_ms": percentile(self.drift_ms, 0.99),
            },
            "commits": {
                "good": self.commits_good,
                "bad": self.commits_bad,
                "seen": self.commits_seen,
                "broken_by_reason": self.hostile_reasons,
            },
            "cycles": {
                "count": len(self.cycle_ms),
                "p50_ms": percentile(self.cycle_ms, 0.5),
                "p99_ms": percentile(self.cycle_ms, 0.99),
                "results": self.cycle_results,
            },
            "goals_met": self.goals(),
            # [seconds, VmRSS MB, RssAnon MB, fds]
            "samples": [
                [round(s.at, 1), round(s.rss_mb, 2), round(s.anon_mb, 2), s.fds]
                for s in self.samples
            ],
            "cpu_count": self.cpu_count,
            "python": self.python,
            "kernel": self.kernel,
        }


@dataclass
class Soak:
    sandbox: Sandbox
    session: aiohttp.ClientSession
    admin_headers: dict[str, str]
    remote: Remote
    live: LiveWatch
    agent: AgentProcess
    cluster_id: str
    api_url: str
    webhook_url: str
    ingredients: Ingredients
    git_channel: str = CHANNELS[0]
    commits: int = 0
    commits_good: int = 0
    commits_bad: int = 0
    commits_seen: int = 0
    hostile_reasons: Counter[str] = field(default_factory=Counter)  # "kind (reason)": count
    drifts: int = 0
    drift_ms: list[float] = field(default_factory=list)

    async def notify(self) -> None:
        if not self.ingredients.webhook:
            return
        body = json.dumps({"ref": "refs/heads/main", "after": str(self.commits)}).encode()
        signature = "sha256=" + hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()
        headers = {
            "X-Hub-Signature-256": signature,
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"soak-{self.commits}",
            "Content-Type": "application/json",
        }
        async with self.session.post(self.webhook_url, data=body, headers=headers) as answer:
            await answer.read()
            if answer.status != 202:
                raise SystemExit(f"bench: the webhook answered {answer.status}")

    async def commit(self) -> None:
        """Push the next commit, alternately broken and good, and wait for cvsync to see it."""
        number = self.commits
        self.commits += 1
        hostile = [
            (kind, build) for slug, kind, build in HOSTILE if slug in self.ingredients.hostile
        ]
        if number % 2 == 0 and hostile:
            kind, build = hostile[(number // 2) % len(hostile)]
            self.commits_bad += 1
            sha = await self.remote.commit(
                build(self.cluster_id, self.git_channel, number), f"{number}: {kind}"
            )
            await self.notify()
            reason = await self.agent.until_attempted(sha)
            self.hostile_reasons[f"{kind} ({reason})"] += 1
            seen = reason is not None
        else:
            self.git_channel = CHANNELS[1] if self.git_channel == CHANNELS[0] else CHANNELS[0]
            self.commits_good += 1
            files: Files = {
                SPEC_PATH: spec_text(self.cluster_id, self.git_channel).encode(),
                POLICY_PATH: None,
            }
            sha = await self.remote.commit(files, f"{number}: {self.git_channel}")
            await self.notify()
            seen = await self.agent.until_attempted(sha) is not None
            seen = await self.live.until_channel(self.git_channel) is not None and seen
        self.commits_seen += int(seen)

    async def drift(self) -> None:
        """`oc patch` the channel away from git's and time until cvsync puts it back."""
        self.drifts += 1
        async with self.session.patch(
            self.api_url + CV_URL_PATH + "?fieldManager=oc",
            data=json.dumps({"spec": {"channel": DRIFT_CHANNEL}}).encode(),
            headers={**self.admin_headers, "Content-Type": "application/merge-patch+json"},
        ) as answer:
            body = await answer.read()
            if answer.status != 200:
                raise SystemExit(f"bench: the merge patch answered {answer.status}: {body[:300]!r}")
        drifted = await self.live.until_channel(DRIFT_CHANNEL)
        corrected = await self.live.until_channel(self.git_channel)
        if drifted is not None and corrected is not None:
            self.drift_ms.append((corrected - drifted) * 1000)


def isolated_env(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CVSYNC_")}
    env.pop("KUBECONFIG", None)
    return (
        env
        | GIT_IDENTITY
        | {
            "HOME": str(home),
            "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
        }
    )


async def sample(pid: int, started: float, every: float, into: list[Sample]) -> None:
    while True:
        into.append(Sample.take(pid, time.perf_counter() - started))
        await asyncio.sleep(every)


async def soak(
    soak_run: Soak, minutes: float, drift_every: float, commit_every: float, sample_every: float
) -> list[Sample]:
    agent = soak_run.agent
    await asyncio.wait_for(agent.first_cycle.wait(), 60)
    await asyncio.sleep(1)  # let the first cycle's write-back and watch settle
    samples: list[Sample] = []
    started = time.perf_counter()
    sampler = asyncio.create_task(sample(agent.pid, started, sample_every, samples))
    try:
        end = started + minutes * 60
        next_commit = started + commit_every
        tick = started
        while time.perf_counter() < end:
            if time.perf_counter() >= next_commit:
                await soak_run.commit()
                next_commit = max(next_commit + commit_every, time.perf_counter())
            if soak_run.ingredients.drift:
                await soak_run.drift()
            # A tick that overran (a slow commit) is not made up for with a burst of drifts.
            tick = max(tick + drift_every, time.perf_counter())
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
    finally:
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
    samples.append(Sample.take(agent.pid, time.perf_counter() - started))
    return samples


async def run(
    minutes: float,
    warmup: float,
    drift_every: float,
    commit_every: float,
    sample_every: float,
    *,
    ingredients: Ingredients,
) -> Figures:
    with tempfile.TemporaryDirectory(prefix="cvsync-bench-soak-") as name:
        tmp = Path(name)
        env = isolated_env(tmp)
        async with Sandbox(SandboxOptions(scenario=SCENARIO, work_dir=tmp / "sandbox")) as sandbox:
            sandbox.access.set_rules(AGENT_USER, FULL_ACCESS)
            kubeconfig = sandbox.kubeconfig(tmp / "kubeconfig", user=AGENT_USER)
            assert sandbox.pki is not None
            tls = ssl.create_default_context(cafile=str(sandbox.pki.ca.cert))
            live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert live is not None
            assert live["spec"]["channel"] == CHANNELS[0]
            cluster_id = live["spec"]["clusterID"]
            remote = Remote(tmp / "git", env)
            await remote.init()
            await remote.commit({SPEC_PATH: spec_text(cluster_id, CHANNELS[0]).encode()}, "start")
            secret = tmp / "webhook-secret"
            secret.write_bytes(WEBHOOK_SECRET)
            port = free_port()
            command = [
                sys.executable, "-m", "agent", "run", "--cluster", CLUSTER,
                "--repo", remote.bare.as_uri(), "--kubeconfig", str(kubeconfig),
                "--workdir", str(tmp / "cvsync"), "--http-address", f"127.0.0.1:{port}",
                "--webhook-secret-file", str(secret),
            ]  # fmt: skip
            command += ["--write-back"] if ingredients.write_back else []
            command += [] if ingredients.webhook else ["--interval", "1"]
            watch = LiveWatch(sandbox.store)
            agent = await AgentProcess.spawn(command, env)
            try:
                async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(ssl=tls)
                ) as session:
                    soak_run = Soak(
                        sandbox=sandbox,
                        session=session,
                        admin_headers={"Authorization": f"Bearer {sandbox.admin_token}"},
                        remote=remote,
                        live=watch,
                        agent=agent,
                        cluster_id=cluster_id,
                        api_url=sandbox.url,
                        webhook_url=f"http://127.0.0.1:{port}/hooks/git",
                        ingredients=ingredients,
                    )
                    samples = await soak(soak_run, minutes, drift_every, commit_every, sample_every)
                    peak = process_status(agent.pid)["VmHWM"] * 1024 / 1e6
            finally:
                watch.close()
                code = await agent.stop()
            if code != 0:
                raise SystemExit(f"bench: cvsync run exited {code}:\n{agent.tail()}")
    return Figures(
        minutes=minutes,
        warmup_minutes=warmup,
        ingredients=ingredients,
        samples=samples,
        peak_rss_mb=peak,
        drifts=soak_run.drifts,
        corrected=len(soak_run.drift_ms),
        drift_ms=soak_run.drift_ms,
        commits_good=soak_run.commits_good,
        commits_bad=soak_run.commits_bad,
        commits_seen=soak_run.commits_seen,
        hostile_reasons=dict(soak_run.hostile_reasons),
        cycle_ms=[s * 1000 for s in agent.cycle_seconds],
        cycle_results=dict(agent.results),
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        kernel=f"{platform.system()} {platform.release()}",
    )


# --- the output -------------------------------------------------------------------------


def render_markdown(f: Figures) -> str:
    goals = f.goals()

    def met(key: str) -> str:
        return "yes" if goals[key] else "**NO**"

    kinds = ", ".join(f"{kind} x{n}" for kind, n in f.hostile_reasons.items())
    results = ", ".join(f"{result} x{n}" for result, n in sorted(f.cycle_results.items()))
    rows = [
        ("RSS at start (after the first cycle)", f"{f.start.rss_mb:.1f} MB", "", ""),
        (
            f"RSS after the warm-up ({f.warmup_minutes:g} min)",
            f"{f.warm_rss_mb:.1f} MB",
            "",
            "",
        ),
        (
            f"RSS at the end ({f.minutes:g} min; peak {f.peak_rss_mb:.1f} MB)",
            f"{f.end.rss_mb:.1f} MB ({f.end.rss_mb / f.warm_rss_mb:.3f}x after warm-up)",
            "",
            "",
        ),
        (
            "RSS slope after the warm-up (least squares)",
            f"{f.slope:+.3f} MB/min",
            f"<= {GOAL_SLOPE_MB_PER_MIN} MB/min",
            met("rss_flat"),
        ),
        (
            "RssAnon (the process's own memory), start -> end; slope after the warm-up",
            f"{f.start.anon_mb:.1f} -> {f.end.anon_mb:.1f} MB; {f.anon_slope:+.3f} MB/min",
            "",
            "",
        ),
        (
            "open file descriptors, start -> end",
            f"{f.start.fds} -> {f.end.fds}",
            f"end <= start + {GOAL_FD_SLACK}",
            met("fds"),
        ),
        (
            "drifts corrected (`oc` merge patch of spec.channel)",
            f"{f.corrected} of {f.drifts}",
            "all",
            met("drifts_corrected"),
        ),
        (
            "drift -> corrected, p50 / p99",
            f"{percentile(f.drift_ms, 0.5):.1f} / {percentile(f.drift_ms, 0.99):.1f} ms",
            "",
            "",
        ),
        (
            f"commits seen ({f.commits_bad} broken, {f.commits_good} good)",
            f"{f.commits_seen} of {f.commits_bad + f.commits_good}",
            "all",
            met("commits_seen"),
        ),
        (
            f"cvsync's cycle duration, p50 / p99 ({len(f.cycle_ms)} cycles)",
            f"{percentile(f.cycle_ms, 0.5):.1f} / {percentile(f.cycle_ms, 0.99):.1f} ms",
            "",
            "",
        ),
    ]
    write_back = " --write-back" if f.ingredients.write_back else ""
    lines = [
        f"`cvsync run --repo file://...{write_back}` for {f.minutes:g} min against the "
        f"in-process sandbox ({SCENARIO}, HTTPS on 127.0.0.1); {f.ingredients.describe()}",
        "",
        "| measurement | value | goal | met? |",
        "|---|---:|---|---|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += [
        "",
        f"Broken commits (the reason cvsync gave): {kinds}.",
        f"Cycles: {results}.",
        f"os.cpu_count()={f.cpu_count}, Python {f.python}, {f.kernel}",
    ]
    return "\n".join(lines)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=_positive, default=10.0, help="how long to soak")
    parser.add_argument(
        "--warmup-minutes", type=_positive, help="left out of the slope (default: min(2, M/5))"
    )
    parser.add_argument("--drift-every", type=_positive, default=1.0, help="seconds")
    parser.add_argument("--commit-every", type=_positive, default=2.5, help="seconds")
    parser.add_argument("--sample-every", type=_positive, default=5.0, help="seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    slugs = [slug for slug, _, _ in HOSTILE]
    ingredients = parser.add_argument_group(
        "ingredients", "leave one out at a time to tell which one costs memory"
    )
    ingredients.add_argument(
        "--hostile",
        action="append",
        choices=[*slugs, "none"],
        help="only this kind of broken commit (repeatable; none: every commit is good)",
    )
    ingredients.add_argument(
        "--no-webhook", action="store_true", help="no webhook calls; cvsync polls every second"
    )
    ingredients.add_argument("--no-write-back", action="store_true", help="cvsync without it")
    ingredients.add_argument("--no-drift", action="store_true", help="no `oc patch` drift")
    args = parser.parse_args(argv)
    warmup = args.warmup_minutes or min(2.0, args.minutes / 5)
    chosen = args.hostile or slugs
    mix = Ingredients(
        hostile=tuple(slug for slug in slugs if slug in chosen),
        webhook=not args.no_webhook,
        write_back=not args.no_write_back,
        drift=not args.no_drift,
    )
    figures = asyncio.run(
        run(
            args.minutes,
            warmup,
            args.drift_every,
            args.commit_every,
            args.sample_every,
            ingredients=mix,
        )
    )
    print(json.dumps(figures.as_json(), indent=2) if args.json else render_markdown(figures))


if __name__ == "__main__":
    main()
