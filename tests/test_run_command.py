"""`cvsync run` and `cvsync demo` as real processes."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from gitrepo import Remote

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions

SPEC_PATH = "clusters/east/clusterversion.yaml"


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
