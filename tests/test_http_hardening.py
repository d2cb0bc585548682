"""cvsync's HTTP listener under clients that would exhaust it: slow senders, more connections
than it takes, a process out of file descriptors, webhook deliveries sent again, and a
webhook secret anyone could sign with. Real sockets on 127.0.0.1; the descriptor test runs
`cvsync run` with a low RLIMIT_NOFILE.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import pytest
from agent_support import CLUSTER, SPEC_PATH, running_agent, spec
from gitrepo import Remote
from raw_http import Answer, closed_by_server, exchange, read_answer, request
from test_run_end_to_end import Agent, free_port

from agent.adapters.http import LINGER, HttpState, http_application, serve
from agent.adapters.http_guard import FD_RESERVE, REFUSAL_SLOTS, connection_budget
from agent.metrics import Metrics
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import HttpLimits

SECRET = b"hardening-webhook-secret"
HEALTHZ = request("GET", "/healthz", [])


@asynccontextmanager
async def endpoints(limits: HttpLimits) -> AsyncIterator[int]:
    """cvsync's endpoints with these limits; yields the port."""
    app = http_application(HttpState(Metrics(), lambda: True, lambda: None, SECRET, limits))
    runner, port = await serve(app, "127.0.0.1", 0, limits)
    try:
        yield port
    finally:
        await runner.cleanup()


async def healthz_seconds(port: int) -> float:
    started = time.monotonic()
    answer = await exchange(port, HEALTHZ)
    assert answer.status == 200
    return time.monotonic() - started


def test_the_descriptor_budget_leaves_a_reserve_for_the_api_server_and_git() -> None:
    assert connection_budget(1000, None).connections == 1000
    assert connection_budget(1000, 1_048_576).connections == 1000
    low = connection_budget(1000, 256)
    assert low.sockets == 256 - FD_RESERVE
    assert low.connections == 256 - FD_RESERVE - REFUSAL_SLOTS
    assert connection_budget(1000, 10).connections >= 1  # never refuses everything


# 1. Slow clients.
async def trickle(port: int, at_once: bytes, slowly: bytes) -> float:
    """Send `at_once`, then `slowly` a byte a second, until the server hangs up; the
    seconds that took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    closed = asyncio.create_task(closed_by_server(reader))
    try:
        writer.write(at_once)
        for byte in slowly:
            await asyncio.wait([closed], timeout=1.0)
            if closed.done():
                break
            with suppress(ConnectionError):
                writer.write(bytes([byte]))
        await closed
        return time.monotonic() - started
    finally:
        closed.cancel()
        writer.close()


async def test_500_slow_clients_leave_healthz_fast_and_each_is_closed_within_the_timeouts() -> None:
    limits = HttpLimits(header_timeout=2.0, body_timeout=2.0)
    slow_headers = request("GET", "/healthz", [(b"X-Padding", b"p" * 100)])
    signature = b"sha256=" + hmac.new(SECRET, b"x" * 200, hashlib.sha256).hexdigest().encode()
    post = request("POST", "/hooks/git", [(b"X-Hub-Signature-256", signature)], b"x" * 200)
    head, body = post.split(b"\r\n\r\n", 1)
    async with endpoints(limits) as port:
        # 450 send their headers a byte a second; 50 their headers at once, then the body so.
        headers_slowly = [asyncio.create_task(trickle(port, b"", slow_headers)) for _ in range(450)]
        body_slowly = [
            asyncio.create_task(trickle(port, head + b"\r\n\r\n", body)) for _ in range(50)
        ]
        await asyncio.sleep(0.5)
        latencies = []
        for _ in range(9):
            latencies.append(await healthz_seconds(port))
            await asyncio.sleep(0.1)
        assert statistics.median(latencies) < 0.1, latencies
        header_lives = await asyncio.wait_for(asyncio.gather(*headers_slowly), 20)
        body_lives = await asyncio.wait_for(asyncio.gather(*body_slowly), 20)
    slack = 1.5  # a loaded 2-core machine
    assert max(header_lives) < limits.header_timeout + slack, sorted(header_lives)[-5:]
    # The 408 is answered at the body deadline; the rest is read for LINGER seconds so that
    # the client sees it.
    assert max(body_lives) < limits.body_timeout + LINGER + slack, sorted(body_lives)[-5:]
    assert min(header_lives + body_lives) > 1.0  # none closed before its deadline


async def test_a_second_request_that_comes_too_slowly_on_a_kept_alive_connection_is_closed() -> (
    None
):
    async with endpoints(HttpLimits(header_timeout=0.5)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(HEALTHZ)
            assert (await read_answer(reader)).status == 200
            writer.write(HEALTHZ[:10])  # and the rest never comes
            started = time.monotonic()
            async with asyncio.timeout(5):
                await closed_by_server(reader)
            assert time.monotonic() - started < 0.5 + 1.5
        finally:
            writer.close()


# 2. More connections than the cap.
async def test_connections_past_the_cap_get_503_at_once_and_healthz_answers_after_they_close(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cvsync.http")
    async with endpoints(HttpLimits(max_connections=20)) as port:
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        await asyncio.sleep(0.1)
        refused: list[Answer] = await asyncio.gather(
            *(exchange(port, HEALTHZ, timeout=2) for _ in range(12))
        )
        assert [answer.status for answer in refused] == [503] * 12
        assert refused[0].headers["retry-after"] == "1"
        for _, writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        assert (await exchange(port, HEALTHZ)).status == 200
    said = [r for r in caplog.records if "connection limit" in r.getMessage()]
    assert len(said) == 1  # 12 refusals, one line


# 3. Out of file descriptors, in a process of its own.
@asynccontextmanager
async def cvsync_run_with_descriptors(limit: int, *args: str) -> AsyncIterator[Agent]:
    port = free_port()

    def lower_the_limit() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--cluster", CLUSTER,
        "--resync-interval", "3600", "--http-address", f"127.0.0.1:{port}",
        "--log-format", "json", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        preexec_fn=lower_the_limit,
    )  # fmt: skip
    agent = Agent(process, port)
    try:
        yield agent
    finally:
        await agent.stop()


async def test_out_of_descriptors_the_agent_keeps_reconciling_and_says_so_once(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        key = sandbox.api.key(CLUSTER_VERSIONS, "", "version")
        live = sandbox.store.get(key)
        assert live is not None
        cluster_id, channel = live["spec"]["clusterID"], live["spec"]["channel"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec(cluster_id, channel)}, "as the cluster is")
        async with cvsync_run_with_descriptors(
            256, "--repo", remote.url, "--kubeconfig", str(kubeconfig),
            "--workdir", str(tmp_path / "work"), "--interval", "0.5",
        ) as agent:  # fmt: skip
            await agent.cycle(lambda r: r["result"] == "InSync")
            flood = [await _connect(agent.port) for _ in range(300)]
            try:
                await asyncio.sleep(0.5)
                before = len(agent.cycles())
                # git changes while the clients hold every connection: fetched and applied.
                remote.commit({SPEC_PATH: spec(cluster_id, "fast-4.15")}, "fast")
                applied = await agent.cycle(lambda r: r["result"] == "Applied", after=before)
                assert applied["revision"].startswith("main@sha1:")
                # Cycles go on: the next change is fetched and applied too (idle cycles log
                # at debug level, so each change is what shows a cycle ran).
                second = len(agent.cycles())
                remote.commit({SPEC_PATH: spec(cluster_id, channel)}, "back")
                again = await agent.cycle(lambda r: r["result"] == "Applied", after=second)
                assert again["revision"] != applied["revision"]
                during = agent.cycles()[before:]
                assert [r for r in during if r["result"] == "Failed"] == []
            finally:
                for _, writer in flood:
                    writer.close()
            async with asyncio.timeout(10):
                while await _healthz_status(agent.port) != 200:
                    await asyncio.sleep(0.2)
            said = [r for r in agent.records if r.get("logger") == "cvsync.http"]
            assert len(said) == 1, said  # hundreds refused, one line
            assert len(agent.stderr) < 200_000


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _healthz_status(port: int) -> int | None:
    try:
        return (await exchange(port, HEALTHZ, timeout=1)).status
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None


# 4. A delivery sent again.
async def test_a_webhook_delivery_sent_three_times_fetches_once(tmp_path: Path) -> None:
    async with running_agent(tmp_path, "idle-4.15", webhook_secret=SECRET) as agent:
        runtime = agent.runtime
        assert runtime.http_port is not None
        registry = runtime.metrics.registry

        def fetches() -> float:
            return registry.get_sample_value("cvsync_git_fetch_duration_seconds_count") or 0.0

        start = fetches()
        body = b'{"ref": "refs/heads/main"}'
        signature = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        headers = [
            (b"X-Hub-Signature-256", signature.encode()),
            (b"X-GitHub-Delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ]
        for _ in range(3):
            cycles = runtime.cycles
            answer = await exchange(runtime.http_port, request("POST", "/hooks/git", headers, body))
            assert answer.status == 202
            with suppress(TimeoutError):  # a replay runs no cycle: give it the time to
                await runtime.wait_for_cycles(cycles + 1, timeout=1.0)
        assert fetches() == start + 1


# 5. The secret itself.
@pytest.mark.parametrize("content", [b"", b" \n"], ids=["empty", "whitespace"])
def test_an_empty_webhook_secret_stops_the_agent_before_it_serves_anything(
    tmp_path: Path, content: bytes
) -> None:
    secret = tmp_path / "webhook-secret"
    secret.write_bytes(content)  # an HMAC with an empty key is anyone's to compute
    done = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--cluster", CLUSTER, "--repo", "file:///none",
         "--http-address", f"127.0.0.1:{free_port()}", "--webhook-secret-file", str(secret)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"cvsync: error: --webhook-secret-file {secret} is empty; the webhook needs a secret"
    )
