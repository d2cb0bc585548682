"""`cvsync run` as a real process (`python -m agent run`) against the sandbox cluster: git-sync
mode, observe mode, API faults, secrets kept out of every output, and the webhook's signature
check. The sandbox runs in the test's event loop, or as `cvsync sandbox` in a process of its own.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from git_http_server import GitHttpServer
from gitrepo import GitSyncLayout, Remote

from agent.engine.reconciler import CycleOutcome, Reconciler, Result
from agent.engine.runtime import Runtime, retry_delay
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

CLUSTER = "east"
SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
WEBHOOK_SECRET = b"end-to-end-webhook-secret"
SCENARIO = "idle-4.15"
LIVE_CHANNEL = "stable-4.15"  # the scenario's channel
WAIT = 20.0  # the most any single expected event may take; they normally take milliseconds
Record = dict[str, Any]


def spec_text(cluster_id: str, channel: str) -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed(body: bytes, secret: bytes = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()}


async def http(method: str, url: str, **options: Any) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **options) as got:
        return got.status, await got.text()


class Agent:
    """One `cvsync run` process; stdout and stderr are read as they come, JSON lines parsed."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.records: list[Record] = []
        self._news = asyncio.Event()
        assert process.stdout is not None
        assert process.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(process.stdout, self.stdout)),
            asyncio.create_task(self._read(process.stderr, self.stderr, parse=True)),
        ]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cycles(self) -> list[Record]:
        """One record per reconcile cycle, in order."""
        return [record for record in self.records if "result" in record and "triggers" in record]

    async def _read(
        self, stream: asyncio.StreamReader, sink: bytearray, parse: bool = False
    ) -> None:
        async for line in stream:
            sink += line
            if parse:
                with suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict):
                        self.records.append(record)
            self._news.set()
        self._news.set()

    async def cycle(
        self, predicate: Callable[[Record], bool], *, after: int = 0, timeout: float = WAIT
    ) -> Record:
        """The first cycle record, from number `after` on, that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            self._news.clear()
            found = [record for record in self.cycles()[after:] if predicate(record)]
            if found:
                return found[0]
            exited = self.process.returncode is not None and all(t.done() for t in self._readers)
            remaining = deadline - time.monotonic()
            if exited or remaining <= 0:
                tail = self.stderr.decode(errors="replace")[-3000:]
                raise AssertionError(f"no such cycle (exited={exited}); stderr ends:\n{tail}")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._news.wait(), min(remaining, 0.5))

    async def webhook(self, body: bytes = b'{"ref": "refs/heads/main"}') -> None:
        status, _ = await http("POST", f"{self.base}/hooks/git", data=body, headers=signed(body))
        assert status == 202

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; always reap it and read its pipes to the end."""
        try:
            if self.process.returncode is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(self.process.wait(), 10)
                except TimeoutError:
                    self.process.kill()
        finally:
            if self.process.returncode is None:
                with suppress(ProcessLookupError):
                    self.process.kill()
            await self.process.wait()
            await asyncio.gather(*self._readers, return_exceptions=True)


@asynccontextmanager
async def cvsync_run(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Agent]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--cluster", CLUSTER,
        "--interval", "3600", "--resync-interval", "3600",
        "--http-address", f"127.0.0.1:{port}", "--log-format", "json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    agent = Agent(process, port)
    try:
        yield agent
    finally:
        await agent.stop()


@dataclass
class Cluster:
    """The in-process sandbox, with cvsync as a user of its own."""

    sandbox: Sandbox
    kubeconfig: Path
    cluster_id: str

    def live(self) -> dict[str, Any]:
        found = self.sandbox.store.get(self.sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return found

    def channel(self) -> object:
        return self.live()["spec"].get("channel")

    def cvsync_writes(self) -> int:
        """Writes to the ClusterVersion (its main resource or /status) as cvsync's user."""
        faults = self.sandbox.faults
        return sum(
            faults.writes(resource, user="cvsync")
            for resource in ("clusterversions", "clusterversions/status")
        )

    def edit_channel(self, channel: str) -> None:
        """What `oc patch clusterversion version --type=merge` does behind git's back."""
        self.sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version"),
            MERGE_PATCH,
            {"spec": {"channel": channel}},
            WriteOptions(manager="oc"),
        )

    async def until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> float:
        """Seconds until `predicate` holds; fails past `timeout`."""
        started = time.monotonic()
        while not predicate():
            assert time.monotonic() - started < timeout, f"still {self.live()['spec']}"
            await asyncio.sleep(0.02)
        return time.monotonic() - started


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with Sandbox(SandboxOptions(scenario=SCENARIO)) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        yield Cluster(sandbox, kubeconfig, found["spec"]["clusterID"])


@pytest.fixture
def webhook_secret(tmp_path: Path) -> Path:
    path = tmp_path / "webhook-secret"
    path.write_bytes(WEBHOOK_SECRET)
    return path


# 1. git-sync mode.
async def test_local_path_mode_applies_the_first_spec_and_then_each_swapped_worktree_quickly(
    tmp_path: Path, cluster: Cluster
) -> None:
    layout = GitSyncLayout.create(tmp_path / "gitsync", SPEC_PATH)
    first = layout.commit(spec_text(cluster.cluster_id, "fast-4.15"))
    layout.swap(first)
    async with cvsync_run(
        "--local-path", str(layout.link), "--kubeconfig", str(cluster.kubeconfig),
        "--workdir", str(tmp_path / "work"),
    ) as agent:  # fmt: skip
        applied = await agent.cycle(lambda r: r["result"] == "Applied")
        assert applied["revision"] == f"main@sha1:{first}"
        assert applied["drift"] == [".spec.channel"]
        assert cluster.channel() == "fast-4.15"

        # git-sync fetched a channel change: a new worktree, the link swapped, the old one gone.
        seen = len(agent.cycles())
        second = layout.commit(spec_text(cluster.cluster_id, "candidate-4.15"))
        swapped = time.monotonic()
        layout.swap(second)
        layout.remove(first)
        record = await agent.cycle(
            lambda r: r["revision"] == f"main@sha1:{second}" and r["result"] == "Applied",
            after=seen,
        )
        took = time.monotonic() - swapped
        assert cluster.channel() == "candidate-4.15"
        assert "git-sync" in record["triggers"]
        assert took < 5.0, f"the swap was applied {took:.1f} s later"


# 2. observe mode, against `cvsync sandbox` in a process of its own.
@dataclass
class SandboxProcess:
    process: asyncio.subprocess.Process
    admin: str = ""
    admin_token: str = ""
    lines: list[str] = field(default_factory=list)

    async def admin_call(self, method: str, path: str, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        status, text = await http(method, self.admin + path, json=body, headers=headers)
        assert status == 200, text
        return json.loads(text)


@asynccontextmanager
async def cvsync_sandbox(tmp_path: Path) -> AsyncIterator[SandboxProcess]:
    """`cvsync sandbox --admin-port 0`; its stderr goes to a file (a pipe nobody reads
    could fill up and stall it)."""
    with (tmp_path / "sandbox-stderr.log").open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "sandbox", "--admin-port", "0",
            "--scenario", SCENARIO, "--kubeconfig", str(tmp_path / "admin-kubeconfig"),
            stdout=asyncio.subprocess.PIPE, stderr=stderr,
        )  # fmt: skip
    running = SandboxProcess(process)
    try:
        assert process.stdout is not None
        while not any(line.startswith("kubeconfig written to") for line in running.lines):
            line = await asyncio.wait_for(process.stdout.readline(), WAIT)
            assert line, "cvsync sandbox exited early"
            running.lines.append(line.decode().strip())
        admin = next(line for line in running.lines if line.startswith("admin endpoint "))
        url, _, rest = admin.removeprefix("admin endpoint ").partition(" ")
        running.admin = url
        token_file = Path(rest.removeprefix("(bearer token in ").rstrip(")"))
        running.admin_token = token_file.read_text().strip()
        yield running
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
        await process.wait()
        await process.communicate()


async def test_observe_mode_reports_the_drifted_path_and_never_writes(
    tmp_path: Path, webhook_secret: Path
) -> None:
    cluster_id = load_scenario(SCENARIO).cluster_version["spec"]["clusterID"]
    remote = Remote(tmp_path / "git")
    remote.commit({SPEC_PATH: spec_text(cluster_id, "fast-4.15")}, "fast, unlike the cluster")
    async with cvsync_sandbox(tmp_path) as sandbox:
        rules = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
        user = await sandbox.admin_call("PUT", "/users/cvsync", {"rules": rules})
        async with cvsync_run(
            "--mode", "observe", "--repo", remote.url, "--kubeconfig", user["kubeconfig"],
            "--workdir", str(tmp_path / "work"), "--webhook-secret-file", str(webhook_secret),
        ) as agent:  # fmt: skip
            first = await agent.cycle(lambda r: True)
            assert (first["result"], first["reason"]) == ("DriftReported", "DriftReported")
            assert first["drift"] == [".spec.channel"]
            assert "observe mode" in first["message"]
            # Another cycle (a push: the webhook, a fetch) still only reports.
            await agent.webhook()
            second = await agent.cycle(lambda r: "webhook" in r["triggers"], after=1)
            assert (second["result"], second["drift"]) == ("DriftReported", [".spec.channel"])
        counts = await sandbox.admin_call("GET", "/requests")
    mine = [row for row in counts["requests"] if row["user"] == "cvsync"]
    # It did look: through the watch's list (cycles read the watch's object, not a GET each).
    reads = ("get", "list")
    assert sum(row["count"] for row in mine if row["verb"] in reads) >= 1
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    # Events (reports) aside, nothing is written: not the ClusterVersion, not its status.
    assert [r for r in mine if r["verb"] in writes and r["resource"] != "events"] == []


# 3. API faults.
async def test_live_edits_are_still_corrected_after_each_kind_of_api_fault(
    tmp_path: Path, cluster: Cluster
) -> None:
    wanted = "fast-4.15"
    remote = Remote(tmp_path / "git")
    remote.commit({SPEC_PATH: spec_text(cluster.cluster_id, wanted)}, "fast")
    sandbox = cluster.sandbox
    async with cvsync_run(
        "--repo", remote.url, "--kubeconfig", str(cluster.kubeconfig),
        "--workdir", str(tmp_path / "work"),
    ) as agent:  # fmt: skip
        await agent.cycle(lambda r: r["result"] == "Applied")
        assert cluster.channel() == wanted

        async def corrected_after(fault: str) -> list[Record]:
            seen = len(agent.cycles())
            cluster.edit_channel("candidate-4.15")
            try:
                await cluster.until(lambda: cluster.channel() == wanted)
            except AssertionError as exc:
                log = agent.stderr.decode(errors="replace")[-4000:]
                raise AssertionError(f"not corrected after {fault}: {exc}\n{log}") from None
            await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
            return agent.cycles()[seen:]

        # Two 500s on patch: two failed cycles, then a retry that succeeds.
        sandbox.faults.fail("patch", "clusterversions", times=2, status=500)
        records = await corrected_after("two 500s on patch")
        failed = [r for r in records if r["result"] == "Failed"]
        assert len(failed) == 2, records
        assert any("retry" in r["triggers"] for r in records), records

        # 429 with Retry-After: the adapter waits and retries within the same cycle.
        sandbox.faults.fail("patch", "clusterversions", times=1, status=429, retry_after=1)
        records = await corrected_after("a 429 with Retry-After")
        assert all(r["result"] != "Failed" for r in records), records

        # A connection reset while cvsync records the correction's Event: the Event is lost,
        # the reconcile loop is not (the next edit is corrected too).
        sandbox.faults.reset_connections("*", "events", times=1)
        await corrected_after("a reset connection while recording an Event")
        await corrected_after("the edit after a lost Event")

        # A dropped watch.
        assert sandbox.store.end_all_watches() >= 1
        await corrected_after("a dropped watch")

        # 410 Gone on the next watch: cvsync relists.
        sandbox.faults.gone_on_next_watch(1)
        sandbox.store.end_all_watches()
        await corrected_after("410 Gone")
        assert sandbox.faults.gone_next_watches == 0  # the re-watch did get its 410

        # The API server restarts (state kept; every connection dropped).
        await sandbox.restart()
        await corrected_after("an API server restart")

        assert all(rule.remaining == 0 for rule in sandbox.faults.rules)


async def test_a_watch_that_starts_as_the_sandbox_restarts_does_not_hold_the_restart() -> None:
    """Found by the test above: aiohttp waited 2 x 60 s for such a watch before stopping."""
    async with Sandbox(SandboxOptions(scenario=SCENARIO, tls=False)) as sandbox:
        token = next(t for t, who in sandbox.access.tokens.items() if who.user == "sandbox-admin")
        path = "/apis/config.openshift.io/v1/clusterversions?watch=1"
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", sandbox.port)) as client:
            client.sendall(request.encode())  # read by the server once restart() yields
            started = time.monotonic()
            await asyncio.wait_for(sandbox.restart(), 10)
        assert time.monotonic() - started < 5


# 4. Secrets.
async def test_the_git_token_appears_in_no_output_file_or_git_config(
    tmp_path: Path, cluster: Cluster, webhook_secret: Path
) -> None:
    token = "tok-" + secrets.token_hex(20)
    wrong = "bad-" + secrets.token_hex(20)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "token").write_text(token + "\n")
    (secrets_dir / "wrong").write_text(wrong + "\n")
    projects = tmp_path / "projects"
    remote = Remote(projects)  # projects/remote.git, served as <url>/remote.git
    remote.commit({SPEC_PATH: spec_text(cluster.cluster_id, "fast-4.15")}, "fast")
    home = tmp_path / "home"  # git's global files (a credential store, say) would land here
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    env.pop("GIT_CONFIG_GLOBAL", None)
    workdir = tmp_path / "work"
    outputs: dict[str, bytes] = {}

    def common(url: str, token_file: str) -> list[str]:
        return [
            "--repo", url, "--git-token-file", str(secrets_dir / token_file),
            "--kubeconfig", str(cluster.kubeconfig), "--workdir", str(workdir),
            "--webhook-secret-file", str(webhook_secret),
        ]  # fmt: skip

    with GitHttpServer(projects, token=token) as server:
        url = server.url("remote")
        # The right token: a clone, a pushed commit, an outage of the remote, recovery.
        async with cvsync_run(*common(url, "token"), env=env) as agent:
            await agent.cycle(lambda r: r["result"] == "Applied")
            second = remote.commit({SPEC_PATH: spec_text(cluster.cluster_id, "eus-4.16")}, "eus")
            await agent.webhook()
            await agent.cycle(lambda r: second in str(r["revision"]) and r["result"] == "Applied")
            assert cluster.channel() == "eus-4.16"
            away = projects / "away.git"
            remote.bare.rename(away)
            seen = len(agent.cycles())
            await agent.webhook()
            down = await agent.cycle(lambda r: r["result"] == "Failed", after=seen)
            assert down["reason"] == "GitRepositoryUnreachable", down
            assert f"main@sha1:{second}" in down["message"]  # the last good spec stays
            away.rename(remote.bare)
            # No new trigger: the failed fetch is retried by itself and recovers.
            seen = len(agent.cycles())
            back = await agent.cycle(
                lambda r: "retry" in r["triggers"] and r["result"] != "Failed", after=seen
            )
            assert (back["result"], back["revision"]) == ("InSync", f"main@sha1:{second}")
            status, metrics = await http("GET", f"{agent.base}/metrics")
            assert status == 200
            assert "cvsync_git_fetch_duration_seconds_count" in metrics
            outputs["metrics"] = metrics.encode()
        outputs |= {"run 1 stdout": bytes(agent.stdout), "run 1 stderr": bytes(agent.stderr)}

        # The right token, a repository that does not exist: failures, retried.
        async with cvsync_run(*common(server.url("missing"), "token"), env=env) as agent:
            await agent.cycle(lambda r: r["result"] == "Failed")
            retried = await agent.cycle(lambda r: "retry" in r["triggers"])
            assert retried["result"] == "Failed"
            assert retried["reason"] != "GitAuthFailed"
        outputs |= {"run 2 stdout": bytes(agent.stdout), "run 2 stderr": bytes(agent.stderr)}

        # A wrong token: GitAuthFailed, never retried (retries get an address locked out).
        async with cvsync_run(*common(url, "wrong"), env=env) as agent:
            denied = await agent.cycle(lambda r: True)
            assert (denied["result"], denied["reason"]) == ("Failed", "GitAuthFailed")
            await asyncio.sleep(1.0)  # a retry would come after 0.5 s
            cycles = agent.cycles()
            assert all(r["reason"] == "GitAuthFailed" for r in cycles), cycles
            assert [r for r in cycles if "retry" in r["triggers"]] == []
        outputs |= {"run 3 stdout": bytes(agent.stdout), "run 3 stderr": bytes(agent.stderr)}
        assert 200 in server.statuses()

    clone = workdir / "repo"
    assert (clone / ".git" / "config").is_file()
    for args in (("remote", "-v"), ("config", "--list"), ("config", "--list", "--show-origin")):
        done = subprocess.run(
            ["git", "-C", str(clone), *args], env=env, capture_output=True, check=True
        )
        outputs[f"git {' '.join(args)}"] = done.stdout + done.stderr
    assert url.encode() in outputs["git remote -v"]
    for base in (workdir, home):
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink():
                outputs[str(path)] = path.read_bytes()
    assert any(name.endswith(".git/config") for name in outputs)

    pair = base64.b64encode(f"x-access-token:{token}".encode())
    wrong_pair = base64.b64encode(f"x-access-token:{wrong}".encode())
    for forbidden in (token.encode(), pair, wrong.encode(), wrong_pair):
        leaks = [name for name, data in outputs.items() if forbidden in data]
        assert leaks == [], f"{forbidden!r} appears in {leaks}"


# 5. The webhook's signature.
async def test_a_bad_or_missing_webhook_signature_gets_401_and_fetches_nothing(
    tmp_path: Path, cluster: Cluster, webhook_secret: Path
) -> None:
    remote = Remote(tmp_path / "git")
    remote.commit({SPEC_PATH: spec_text(cluster.cluster_id, LIVE_CHANNEL)}, "as the cluster is")
    async with cvsync_run(
        "--repo", remote.url, "--kubeconfig", str(cluster.kubeconfig),
        "--workdir", str(tmp_path / "work"), "--webhook-secret-file", str(webhook_secret),
    ) as agent:  # fmt: skip
        await agent.cycle(lambda r: r["result"] == "InSync")
        # A commit is waiting: a fetch would apply it at once.
        pushed = remote.commit({SPEC_PATH: spec_text(cluster.cluster_id, "fast-4.15")}, "fast")
        fetches = await fetch_count(agent)
        body = b'{"ref": "refs/heads/main"}'
        attempts: list[dict[str, str]] = [
            {},
            {"X-Hub-Signature-256": "sha256=" + "0" * 64},
            {"X-Hub-Signature-256": "sha256="},
            {"X-Hub-Signature-256": hmac.new(WEBHOOK_SECRET, body, hashlib.sha256).hexdigest()},
            signed(body, b"another-secret"),
            signed(b'{"ref": "refs/heads/other"}'),  # signs another body
            {"X-Hub-Signature": "sha1=" + hmac.new(WEBHOOK_SECRET, body, "sha1").hexdigest()},
            {"X-Gitlab-Token": "wrong"},
            {"X-Gitlab-Token": ""},
        ]
        url = f"{agent.base}/hooks/git"
        for headers in attempts:
            status, _ = await http("POST", url, data=body, headers=headers)
            assert status == 401, headers
        await asyncio.sleep(1.0)  # room for a cycle that should not come
        assert [r for r in agent.cycles() if "webhook" in r["triggers"]] == []
        assert await fetch_count(agent) == fetches
        assert cluster.channel() == LIVE_CHANNEL
        assert cluster.cvsync_writes() == 0

        # The same request, signed: one fetch, and the waiting commit is applied.
        await agent.webhook(body)
        applied = await agent.cycle(lambda r: "webhook" in r["triggers"])
        assert (applied["result"], applied["revision"]) == ("Applied", f"main@sha1:{pushed}")
        assert cluster.channel() == "fast-4.15"
        assert await fetch_count(agent) == fetches + 1
        assert len([r for r in agent.cycles() if "webhook" in r["triggers"]]) == 1


async def fetch_count(agent: Agent) -> float:
    status, text = await http("GET", f"{agent.base}/metrics")
    assert status == 200
    line = next(
        x for x in text.splitlines() if x.startswith("cvsync_git_fetch_duration_seconds_count")
    )
    return float(line.split()[-1])


# The runtime's retry of failed cycles, at unit level.
class ScriptedReconciler:
    """Answers cycles from a script, then InSync; records when and how it was called."""

    last_live: dict[str, Any] | None = None
    newest_live: dict[str, Any] | None = None
    last_applied: object = None
    last_good: object = None
    lifecycle: object = None

    def __init__(self, script: Sequence[CycleOutcome]) -> None:
        self.script = list(script)
        self.calls: list[tuple[float, bool]] = []

    async def cycle(self, *, refresh_source: bool) -> CycleOutcome:
        self.calls.append((time.monotonic(), refresh_source))
        if self.script:
            return self.script.pop(0)
        return CycleOutcome(Result.IN_SYNC, "InSync", "in sync")

    def refreshes(self) -> list[bool]:
        return [refresh for _, refresh in self.calls]

    def observe_live(self, live: dict[str, Any] | None) -> None:
        return None


class QuietCluster:
    async def watch(self) -> AsyncIterator[None]:
        await asyncio.Event().wait()
        yield None


FAILED = CycleOutcome(Result.FAILED, "KubeError", "patch: HTTP 500", retryable=True)
UNREACHABLE = CycleOutcome(
    Result.FAILED, "GitRepositoryUnreachable", "fetch: connection refused", retryable=True
)


@asynccontextmanager
async def scripted_runtime(
    script: Sequence[CycleOutcome], *, base: float = 0.05, cap: float = 0.2
) -> AsyncIterator[tuple[Runtime, ScriptedReconciler]]:
    """A Runtime around a scripted reconciler; its startup cycle refreshes the source."""
    reconciler = ScriptedReconciler(script)
    settings = Settings(CLUSTER, GitSettings(), resync_interval=3600, http_port=0)
    runtime = Runtime(
        settings,
        cast(Reconciler, reconciler),
        cast(Any, QuietCluster()),
        retry_base=base,
        retry_cap=cap,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        yield runtime, reconciler
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_the_retry_delay_doubles_from_the_base_up_to_the_cap() -> None:
    delays = [retry_delay(failures, base=0.5, cap=60.0) for failures in range(1, 10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert retry_delay(10_000, base=0.5, cap=60.0) == 60.0


async def test_a_retryable_failure_is_retried_with_growing_delays_until_it_succeeds() -> None:
    async with scripted_runtime([FAILED] * 4) as (runtime, reconciler):
        await runtime.wait_for_cycles(5, timeout=10)
        await asyncio.sleep(0.5)
    times = [at for at, _ in reconciler.calls]
    assert len(times) == 5, "after a success no more retries come"
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    # 0.05, 0.1, 0.2, then the cap 0.2 (timers never fire early; allow for a busy machine)
    for gap, delay in zip(gaps, [0.05, 0.1, 0.2, 0.2], strict=True):
        assert delay * 0.95 <= gap < delay + 1.0, gaps
    assert reconciler.refreshes() == [True] * 5  # as the failed startup cycle did
    assert runtime.last_outcome is not None
    assert runtime.last_outcome.result is Result.IN_SYNC


async def test_a_failure_that_is_not_retryable_waits_for_the_next_trigger() -> None:
    denied = CycleOutcome(Result.FAILED, "GitAuthFailed", "authentication failed")
    async with scripted_runtime([denied]) as (runtime, reconciler):
        await runtime.wait_for_cycles(1, timeout=10)
        await asyncio.sleep(0.4)
    assert len(reconciler.calls) == 1


async def test_a_cycle_without_a_fetch_leaves_the_retry_of_a_failed_fetch_in_place() -> None:
    async with scripted_runtime([UNREACHABLE], base=0.4) as (runtime, reconciler):
        await runtime.wait_for_cycles(1, timeout=10)
        runtime.trigger("live", refresh_source=False)  # succeeds, but fetched nothing
        await runtime.wait_for_cycles(3, timeout=10)
        await asyncio.sleep(0.5)
    assert reconciler.refreshes() == [True, False, True]


async def test_a_success_ends_the_series_and_the_next_failure_starts_from_the_base() -> None:
    script = [FAILED, FAILED, CycleOutcome(Result.APPLIED, "Applied", "applied"), FAILED]
    async with scripted_runtime(script, base=0.1, cap=10) as (runtime, reconciler):
        await runtime.wait_for_cycles(3, timeout=10)
        runtime.trigger("live", refresh_source=False)
        await runtime.wait_for_cycles(5, timeout=10)
    times = [at for at, _ in reconciler.calls]
    assert 0.095 <= times[4] - times[3] < 0.6  # the base again, not 0.4
