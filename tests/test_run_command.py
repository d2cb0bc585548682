"""`cvsync run` and `cvsync demo` as real processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from gitrepo import Remote, git

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions

SPEC_PATH = "clusters/east/clusterversion.yaml"


async def http_get(host: str, port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1."), head
    assert " 200 " in head.splitlines()[0], head
    return body


def test_the_demo_runs_the_whole_loop_in_under_a_minute() -> None:
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "agent", "demo"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert time.monotonic() - started < 60
    lines = run.stdout.splitlines()
    assert any(line.startswith("3. cvsync run: first cycle InSync") for line in lines)
    assert any("UpgradeBlocked: RisksNotAccepted" in line for line in lines)
    assert any("100% Cluster version is" in line for line in lines)
    assert any("cvsync put channel stable-4.15 back" in line for line in lines)
    assert lines[-1].startswith("done:")


async def test_run_applies_git_and_stops_within_five_seconds_of_sigterm(tmp_path: Path) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        remote = Remote(tmp_path / "git")
        spec = (
            "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
            f"spec: {{clusterID: {live['spec']['clusterID']}, channel: fast-4.15}}\n"
        )
        remote.commit({SPEC_PATH: spec}, "east")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--cluster", "east", "--repo", remote.url,
            "--workdir", str(tmp_path / "work"), "--kubeconfig", str(kubeconfig),
            "--http-address", "127.0.0.1:0",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            record: dict[str, object] = {}
            while record.get("result") != "Applied":
                line = await asyncio.wait_for(process.stderr.readline(), 30)
                assert line, "cvsync run exited early"
                record = json.loads(line)
            # git's channel replaces the installer's: git's change, not drift taken back.
            assert record["reason"] == "Applied"
            channel = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert channel is not None
            assert channel["spec"]["channel"] == "fast-4.15"
            stopped = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 10)
            assert code == 0
            assert time.monotonic() - stopped < 5
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_run_says_what_it_will_do_once_and_stays_quiet_while_idle(tmp_path: Path) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        remote = Remote(tmp_path / "git")
        spec = (
            "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
            f"spec: {{clusterID: {live['spec']['clusterID']}, "
            f"channel: {live['spec']['channel']}}}\n"
        )
        remote.commit({SPEC_PATH: spec}, "east")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--cluster", "east", "--repo", remote.url,
            "--workdir", str(tmp_path / "work"), "--kubeconfig", str(kubeconfig),
            "--http-address", "127.0.0.1:0", "--resync-interval", "0.2",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert process.stderr is not None
            first = json.loads(await asyncio.wait_for(process.stderr.readline(), 30))
            # One line naming the source, the cluster, the mode and the port actually bound.
            assert first["cluster"] == "east"
            assert first["source"] == remote.url
            assert first["mode"] == "enforce"
            host, port = str(first["http"]).rsplit(":", 1)
            assert int(port) > 0
            assert f"listening on http://127.0.0.1:{port}" in first["message"]
            # A few idle resyncs later: one InSync line at info level, not one per cycle.
            await asyncio.sleep(2.0)
            metrics = await http_get(host, int(port), "/metrics")
            cycles = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("cvsync_cycles_total{")
            )
            assert cycles >= 5
            process.send_signal(signal.SIGTERM)
            _, rest = await asyncio.wait_for(process.communicate(), 10)
            records = [json.loads(line) for line in rest.decode().splitlines() if line]
            in_sync = [r for r in records if r.get("result") == "InSync"]
            assert len(in_sync) == 1, [r["message"] for r in records]
            assert not any(str(r["message"]).startswith("cvsync ") for r in records)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_write_back_to_a_checked_out_branch_is_one_error_line_not_a_retry_storm(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        # The specs live in an ordinary clone with main checked out, as a user's laptop has.
        checkout = tmp_path / "checkout"
        (checkout / "clusters" / "east").mkdir(parents=True)
        git(checkout, "init", "--initial-branch=main")
        (checkout / SPEC_PATH).write_text(
            "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
            f"spec: {{clusterID: {live['spec']['clusterID']}, channel: fast-4.15}}\n"
        )
        git(checkout, "add", SPEC_PATH)
        git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-m", "east")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--cluster", "east", "--repo", checkout.as_uri(),
            "--workdir", str(tmp_path / "work"), "--kubeconfig", str(kubeconfig),
            "--http-address", "127.0.0.1:0", "--resync-interval", "0.2", "--write-back",
            "--status-min-interval", "0.3",
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            await asyncio.sleep(6.0)  # the reported storm: 30 warnings in 6 s
            process.send_signal(signal.SIGTERM)
            _, rest = await asyncio.wait_for(process.communicate(), 15)
            records = [json.loads(line) for line in rest.decode().splitlines() if line]
            pushes = [r for r in records if "status not pushed" in str(r["message"])]
            assert len(pushes) == 1, [r["message"] for r in pushes]
            assert pushes[0]["level"] == "error"
            assert "checked out" in pushes[0]["message"]
            assert "bare repository" in pushes[0]["message"]
            # The cluster itself was still brought in line with git.
            now = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
            assert now is not None
            assert now["spec"]["channel"] == "fast-4.15"
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
