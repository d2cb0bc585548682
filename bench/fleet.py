"""Benchmark write-back at fleet scale: N simulated clusters publish their status to one bare
git remote, each through cvsync's own WriteBack and StatusWriter with a clone of its own.

What runs, per scenario: a bare remote in a temporary directory (every ref update logged;
git's defaults, or with `--remote host` run as a git host does: no `gc --auto` inside
pushes and its refs packed every 10 s); the clusters spread over
--processes worker processes (asyncio inside, at most --threads git calls at once each,
clusters dealt out in turn). Each agent starts at a random moment of the period before the
measured window (its clone, its branch, a first status that is not counted), then offers a
new view of its live ClusterVersion every period +-10%: a real object (the
corpus's 4.14.1 progressing at 16%, or the sandbox's idle-4.15 without ../shared) whose
Progressing message carries a sequence number, so each view is a status change. WriteBack
turns it into the real three files (status/<c>.yaml, .md, -drift.md) and publishes as
`cvsync run` does (commit interval 30 s, update steps at once, backoff after a give-up,
the newest status replacing one that waits). Layouts: `per-cluster` (--status-branch
'cvsync-status/{cluster}') or `shared` (every cluster on branch cvsync-status).

After --minutes of offers, a drain of up to --drain seconds (it ends once every cluster's
newest status has landed). Then the remote itself is read:
  stale at end   clusters whose newest status is not the one on their branch;
  lost           commits a publish reported pushed that their branch's history lacks;
  forced         ref updates (from the remote's reflogs) whose old value is not an
                 ancestor of the new one.
From the writers' side: offered/s (statuses produced), landed/s (commits pushed, in the
offer window), gave up (publishes whose every push was rejected, or that failed), attempts
per landed (pushes tried / commits landed) and status age (from a status being produced to
it, or a newer one of its cluster, being on the remote; a status never covered counts up
to the end of the drain). Load: the 1-minute load average sampled every 5 s, and the CPU
the workers and their git processes used.

Scenarios: 200/min, 300/min, 500/min, 1000/min (clusters, once a minute each),
wave-200/30s (200 clusters every 30 s, an upgrade wave) and burst-200/2s (200 clusters once
a minute, every agent starting within the same 2 s). `--transport http` serves the remote
through `git http-backend` on 127.0.0.1, as a git host's web server does. Proof: 1000/min
and wave-200/30s per-cluster with 0 lost, 0 forced, 0 stale at end and age p95 <= 60 s.

Run from the repository root:

    .venv/bin/python bench/fleet.py [--scenario NAME ...] [--layout per-cluster|shared|both]
        [--clusters N] [--minutes M] [--drain S] [--remote host|stock]
        [--transport file|http] [--processes P]
        [--threads T] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from agent.adapters.git_writer import StatusPushFailedError, StatusWriter
from agent.engine.writeback import WriteBack
from agent.errors import SourceError
from agent.model.revision import Revision
from agent.model.status import AgentState
from agent.sandbox.operator.scenarios import load_scenario

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CVSYNC_CORPUS", REPO.parent / "shared" / "corpus"))
LIVE_FILE = (
    CORPUS / "clusterversions" / "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
)
# name: (clusters, seconds between a cluster's statuses, seconds over which the agents start;
# None: spread over one period)
SCENARIOS: dict[str, tuple[int, float, float | None]] = {
    "200/min": (200, 60.0, None),
    "300/min": (300, 60.0, None),
    "500/min": (500, 60.0, None),
    "1000/min": (1000, 60.0, None),
    "wave-200/30s": (200, 30.0, None),
    "burst-200/2s": (200, 60.0, 2.0),  # every agent starts within 2 s (a fleet-wide rollout)
}
PROOF = ("1000/min", "wave-200/30s")
SHARED_BRANCH = "cvsync-status"
MARK = re.compile(rb"bench status (\d+)")
APPLIED = Revision.parse("main@sha1:" + "0" * 40)
ZERO = "0" * 40
GOAL_AGE_P95 = 60.0


def branch_of(cluster: str, layout: str) -> str:
    return f"cvsync-status/{cluster}" if layout == "per-cluster" else SHARED_BRANCH


def live_object() -> dict[str, Any]:
    """A real ClusterVersion: the corpus's, else the sandbox's idle-4.15."""
    if LIVE_FILE.is_file():
        loaded: dict[str, Any] = YAML(typ="safe").load(LIVE_FILE.read_text())
        served: dict[str, Any] = json.loads(json.dumps(loaded, default=str))
        return served  # timestamps as text, as the API server serves them
    found: dict[str, Any] = load_scenario("idle-4.15").cluster_version
    return found


def view(base: Mapping[str, Any], number: int) -> dict[str, Any]:
    """`base` whose Progressing message names status `number` (a shallow copy: offered views
    are kept by WriteBack, so each gets its own condition list)."""
    conditions = [
        {**c, "message": f"{c.get('message', '')} (bench status {number})"}
        if c["type"] == "Progressing"
        else c
        for c in base["status"]["conditions"]
    ]
    return {**base, "status": {**base["status"], "conditions": conditions}}


class Recorder:
    """The StatusSink WriteBack sees: the real writer, each publish timed and noted."""

    def __init__(self, writer: StatusWriter, cluster: str, log: list[list[Any]]) -> None:
        self.writer, self.cluster, self.log = writer, cluster, log

    async def publish(self, files: Mapping[str, bytes], message: str) -> Any:
        found = MARK.search(files[f"status/{self.cluster}.yaml"])
        number = int(found.group(1)) if found else -1
        started = time.monotonic()
        try:
            result = await self.writer.publish(files, message)
        except SourceError as exc:
            tries = exc.attempts if isinstance(exc, StatusPushFailedError) else 1
            self.log.append([self.cluster, number, started, time.monotonic(), False, tries, ""])
            raise
        sha = result.sha if result.committed else ""
        self.log.append(
            [self.cluster, number, started, time.monotonic(), True, result.attempts, sha]
        )
        return result

    async def read(self, path: str) -> bytes | None:
        return await self.writer.read(path)


async def simulate(config: dict[str, Any]) -> dict[str, Any]:
    """One worker: its clusters, from the common start to the end of the drain."""
    rng = random.Random(config["seed"])
    base, period = live_object(), config["period"]
    start, stop = config["start"], config["start"] + config["seconds"]
    produced: list[list[Any]] = []
    published: list[list[Any]] = []
    newest: dict[str, int] = {}
    landed: dict[str, int] = defaultdict(lambda: -1)
    writers, tasks = [], []

    async def produce(cluster: str, writeback: WriteBack) -> None:
        state = AgentState(cluster, last_applied=APPLIED, last_result="InSync")
        # The agent starts in the period before the offers are measured: its clone, its
        # branch and its first status (number 0); from then on a status every period.
        spread = config["spread"]
        at = start - spread + rng.uniform(0, spread)
        number = 0
        while at < stop:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            writeback.offer(view(base, number), state)
            if number:
                newest[cluster] = number
                produced.append([cluster, number, time.monotonic()])
            number += 1
            at += period * rng.uniform(0.9, 1.1)

    for cluster in config["clusters"]:
        writer = StatusWriter(
            config["url"], branch_of(cluster, config["layout"]), Path(config["root"]) / cluster,
            create_branch=True, max_attempts=config["attempts"],
        )  # fmt: skip
        writeback = WriteBack(cluster, Recorder(writer, cluster, published))
        writers.append(writer)
        tasks += [
            asyncio.create_task(writeback.run()),
            asyncio.create_task(produce(cluster, writeback)),
        ]
    await asyncio.sleep(max(0.0, stop - time.monotonic()))
    deadline = stop + config["drain"]
    while time.monotonic() < deadline:
        for row in published:
            if row[4] and row[1] > landed[row[0]]:
                landed[row[0]] = row[1]
        if all(landed[cluster] >= number for cluster, number in newest.items()):
            break
        await asyncio.sleep(0.5)
    ended = time.monotonic()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.gather(*(writer.close() for writer in writers))
    return {"produced": produced, "published": published, "ended": ended}


def worker(config: dict[str, Any]) -> None:
    for name in ("cvsync", "git"):  # give-ups and rejected pushes are counted, not logged
        logging.getLogger(name).setLevel(logging.CRITICAL)
    result = asyncio.run(simulate_with(config))
    Path(config["out"]).write_text(json.dumps(result))


async def simulate_with(config: dict[str, Any]) -> dict[str, Any]:
    # At most this many git calls at once per process: more only queue up on two cores.
    pool = ThreadPoolExecutor(max_workers=config["threads"], thread_name_prefix="git")
    asyncio.get_running_loop().set_default_executor(pool)
    return await simulate(config)


def git(cwd: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True, check=True
    )
    return done.stdout


def remote_findings(bare: Path, clusters: list[str], layout: str) -> dict[str, Any]:
    """What the remote holds: each cluster's status number, every commit's parents, the
    history of each branch, and the ref updates that were not fast-forwards."""
    requests = "".join(f"{branch_of(c, layout)}:status/{c}.yaml\n" for c in clusters)
    batch = subprocess.run(
        ["git", "cat-file", "--batch"], cwd=bare, input=requests.encode(), capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    numbers = {
        cluster: int(found.group(1)) if (found := MARK.search(part)) else -1
        for cluster, part in zip(clusters, _objects(batch), strict=True)
    }
    parents: dict[str, list[str]] = {}
    for line in git(bare, "rev-list", "--all", "--reflog", "--parents").splitlines():
        sha, *rest = line.split()
        parents[sha] = rest
    history: dict[str, set[str]] = {}
    tips = git(bare, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
    for line in tips.splitlines():
        name, tip = line.split()
        history[name] = _ancestry(tip, parents)
    forced = 0
    for log in (bare / "logs" / "refs" / "heads").rglob("*"):
        previous = ZERO
        for entry in log.read_text().splitlines() if log.is_file() else []:
            old, new = entry.split()[:2]
            fast_forward = old in parents.get(new, []) or old in _ancestry(new, parents)
            if old != previous or (old != ZERO and not fast_forward):
                forced += 1
            previous = new
    return {"numbers": numbers, "history": history, "forced": forced}


def _objects(batch: bytes) -> list[bytes]:
    """The contents of each `cat-file --batch` answer, empty for a missing one."""
    found, rest = [], batch
    while rest:
        header, _, rest = rest.partition(b"\n")
        if header.endswith(b" missing"):
            found.append(b"")
            continue
        size = int(header.split()[2])
        found.append(rest[:size])
        rest = rest[size + 1 :]
    return found


def _ancestry(tip: str, parents: Mapping[str, list[str]]) -> set[str]:
    seen, todo = set(), [tip]
    while todo:
        sha = todo.pop()
        if sha not in seen:
            seen.add(sha)
            todo += parents.get(sha, [])
    return seen


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class GitHttpBackend(BaseHTTPRequestHandler):
    """git's smart HTTP protocol on 127.0.0.1: each request handed to `git http-backend`
    (a CGI program), as a git host's web server does; pushes allowed without auth."""

    protocol_version = "HTTP/1.1"
    project_root = ""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request would drown the figures

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        env = {
            **os.environ, "GIT_PROJECT_ROOT": self.project_root, "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "REMOTE_ADDR": "127.0.0.1",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }  # fmt: skip
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        done = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()  # the empty line after the last chunk
        return b"".join(chunks)


def serve_over_http(root: Path) -> ThreadingHTTPServer:
    """A git HTTP server for the repositories under `root`, on a free port, in a thread."""
    handler = type("Handler", (GitHttpBackend,), {"project_root": str(root)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="git-http", daemon=True).start()
    return server


def run_scenario(name: str, layout: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    count, period, spread = SCENARIOS[name]
    count = args.clusters or count
    bare = root / "remote.git"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(bare, "config", "core.logAllRefUpdates", "always")
    git(bare, "config", "http.receivepack", "true")  # anonymous pushes over HTTP
    server = serve_over_http(root) if args.transport == "http" else None
    url = f"http://127.0.0.1:{server.server_address[1]}/{bare.name}" if server else bare.as_uri()
    if args.remote == "host":
        # A git host keeps maintenance off the push path (no `gc --auto` in receive-pack)
        # and its refs packed; with the files backend, 1,000 loose refs cost each push a
        # read of 1,000 files.
        git(bare, "config", "receive.autogc", "false")
    clusters = [f"c{number:04d}" for number in range(count)]
    seconds = args.minutes * 60
    spread = period if spread is None else spread
    start = time.monotonic() + 5.0 + spread  # the workers import cvsync meanwhile
    context = multiprocessing.get_context("spawn")
    processes, outputs = [], []
    for index in range(args.processes):
        out = root / f"worker-{index}.json"
        config = {
            "clusters": clusters[index :: args.processes], "url": url, "layout": layout,
            "root": str(root / "clones"), "period": period, "spread": spread, "start": start,
            "seconds": seconds,
            "drain": args.drain, "attempts": args.attempts, "seed": index, "out": str(out),
            "threads": args.threads,
        }  # fmt: skip
        process = context.Process(target=worker, args=(config,))
        process.start()
        processes.append(process)
        outputs.append(out)
    loads = []
    before, began, packed = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic(), 0.0
    while any(process.is_alive() for process in processes):
        loads.append(os.getloadavg()[0])
        if args.remote == "host" and time.monotonic() - packed >= 10:
            packed = time.monotonic()
            subprocess.run(
                ["git", "pack-refs", "--all"], cwd=bare, capture_output=True, check=False
            )
        for process in processes:
            process.join(timeout=5.0 / len(processes))
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - began
    if server is not None:
        server.shutdown()
    assert all(process.exitcode == 0 for process in processes), "a worker failed"
    results = [json.loads(out.read_text()) for out in outputs]
    produced = [row for result in results for row in result["produced"]]
    published = [row for result in results for row in result["published"]]
    ended = max(result["ended"] for result in results)
    remote = remote_findings(bare, clusters, layout)
    collected = Collected(name, layout, count, seconds, start, ended, produced, published, remote)
    return summarize(collected) | {
        "load_mean": statistics.fmean(loads) if loads else 0.0,
        "load_max": max(loads, default=0.0),
        "cpu_seconds": cpu.ru_utime + cpu.ru_stime - before.ru_utime - before.ru_stime,
        "wall_seconds": wall,
        "remote": args.remote,
        "transport": args.transport,
    }


@dataclass(frozen=True)
class Collected:
    """One scenario's run: what the workers noted, and what the remote holds."""

    name: str
    layout: str
    clusters: int
    seconds: float
    start: float  # when offers began (time.monotonic, the same in every process)
    ended: float  # when the last worker's drain ended
    produced: list[list[Any]]  # cluster, number, at
    published: list[list[Any]]  # cluster, number, started, finished, ok, pushes, sha
    remote: dict[str, Any]


def summarize(run: Collected) -> dict[str, Any]:
    layout, seconds, start, ended = run.layout, run.seconds, run.start, run.ended
    produced, published, remote = run.produced, run.published, run.remote
    every_commit = [row for row in published if row[4] and row[6]]
    published = [row for row in published if row[1] > 0]  # the agents' first ones aside
    successes = [row for row in published if row[4]]
    commits = [row for row in successes if row[6]]
    gave_up = [row for row in published if not row[4]]
    # When each cluster's statuses were covered: the earliest landing of that number or later.
    landings: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for cluster, number, _, finished, *_ in successes:
        landings[cluster].append((number, finished))
    ages, uncovered = [], 0
    for cluster, number, at in produced:
        covering = [t for n, t in landings[cluster] if n >= number and t >= at]
        uncovered += not covering
        ages.append((min(covering) if covering else ended) - at)
    newest: dict[str, int] = defaultdict(int)
    for cluster, number, _ in produced:
        newest[cluster] = max(newest[cluster], number)
    stale = sum(1 for c, n in newest.items() if remote["numbers"].get(c, -1) < n)
    history = remote["history"]
    lost = sum(1 for r in every_commit if r[6] not in history.get(branch_of(r[0], layout), set()))
    in_window = sum(1 for row in commits if row[3] <= start + seconds)
    tries = sum(row[5] for row in published)
    took = [row[3] - row[2] for row in published]
    return {
        "scenario": run.name, "layout": layout, "clusters": run.clusters, "seconds": seconds,
        "offered_per_s": len(produced) / seconds, "landed_per_s": in_window / seconds,
        "offered": len(produced), "landed": len(commits), "gave_up": len(gave_up),
        "stale_at_end": stale, "attempts_per_landed": tries / max(1, len(commits)),
        "age_p50": percentile(ages, 0.5), "age_p95": percentile(ages, 0.95),
        "age_max": max(ages, default=0.0), "uncovered": uncovered, "lost": lost,
        "forced": remote["forced"], "drain_used": max(0.0, ended - start - seconds),
        "publish_p50": percentile(took, 0.5), "publish_p95": percentile(took, 0.95),
    }  # fmt: skip


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| scenario | layout | offered/s | landed/s | gave up | stale at end | attempts/landed"
        " | age p50 | age p95 | lost | forced | load (mean/max) | CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scenario']} | {r['layout']} | {r['offered_per_s']:.1f}"
            f" | {r['landed_per_s']:.1f} | {r['gave_up']:,} | {r['stale_at_end']}"
            f" | {r['attempts_per_landed']:.2f}"
            f" | {r['age_p50']:.1f} s | {r['age_p95']:.1f} s | {r['lost']} | {r['forced']}"
            f" | {r['load_mean']:.1f}/{r['load_max']:.1f}"
            f" | {r['cpu_seconds'] / r['wall_seconds'] / (os.cpu_count() or 1):.0%} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument(
        "--layout", choices=["per-cluster", "shared", "both"], default="per-cluster"
    )
    parser.add_argument("--clusters", type=int, help="override the scenario's number of clusters")
    parser.add_argument(
        "--minutes", type=float, default=3.0, help="how long clusters offer statuses"
    )
    parser.add_argument(
        "--drain", type=float, default=120.0, help="seconds to wait for the last ones"
    )
    parser.add_argument(
        "--remote",
        choices=["host", "stock"],
        default="stock",
        help="stock: git's defaults; host: maintenance off the push path, refs packed every 10 s",
    )
    parser.add_argument(
        "--transport",
        choices=["file", "http"],
        default="file",
        help="file: the remote's path; http: git's smart HTTP protocol on 127.0.0.1",
    )
    parser.add_argument("--processes", type=int, default=8, help="worker processes")
    parser.add_argument("--threads", type=int, default=3, help="git calls at once per process")
    parser.add_argument(
        "--attempts", type=int, default=5, help="pushes per round (--status-push-attempts)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    # Neither the machine's nor the user's git config may change what is measured.
    os.environ |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    layouts = ["per-cluster", "shared"] if args.layout == "both" else [args.layout]
    rows: list[dict[str, Any]] = []
    for name in args.scenario or list(PROOF):
        for layout in layouts:
            # The remote's own `git gc --auto` may still run detached when a run ends.
            with tempfile.TemporaryDirectory(
                prefix="cvsync-fleet-", ignore_cleanup_errors=True
            ) as scratch:
                rows.append(run_scenario(name, layout, args, Path(scratch)))
            if not args.json:  # each row as it comes: a run takes minutes
                lines = table(rows[-1:]).splitlines()
                print("\n".join(lines if len(rows) == 1 else lines[2:]), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"\n{table(rows)}\n")
    print(
        f"{os.cpu_count()} cores; CPU = the workers' and their git processes' share of all cores."
    )
    for r in rows:
        met = r["lost"] == r["forced"] == r["stale_at_end"] == 0 and r["age_p95"] <= GOAL_AGE_P95
        verdict = "meets" if met else "misses"
        print(
            f"{r['scenario']} {r['layout']}: {verdict} the goal (0 lost, 0 forced, 0 stale at"
            f" end, age p95 <= {GOAL_AGE_P95:.0f} s); drain used {r['drain_used']:.0f} s,"
            f" {r['uncovered']} statuses never covered"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
