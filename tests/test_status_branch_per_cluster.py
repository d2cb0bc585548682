"""A status branch per cluster, end to end: two `cvsync run` processes with
`--status-branch 'cvsync-status/{cluster}'` push to one bare remote, each to its own branch;
a CI job then lists the fleet from those branches and runs `cvsync plan --pr --live` on the
status file it finds there, as the README shows."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from agent_support import spec
from gitrepo import Remote, git

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import Sandbox, SandboxOptions

CLUSTERS = ("east", "west")
TEMPLATE = "cvsync-status/{cluster}"


@asynccontextmanager
async def cvsync_run(
    cluster: str, remote: Remote, kubeconfig: Path, root: Path
) -> AsyncIterator[Path]:
    """`cvsync run --write-back` for `cluster`, its log in a file (a pipe nobody reads could
    fill up and stall it); SIGTERM at the end."""
    log = root / f"{cluster}.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--cluster", cluster, "--repo", remote.url,
            "--kubeconfig", str(kubeconfig), "--workdir", str(root / cluster),
            "--interval", "3600", "--resync-interval", "3600", "--http-address", "127.0.0.1:0",
            "--write-back", "--status-branch", TEMPLATE, "--status-push-attempts", "3",
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield log
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def until_branches(remote: Remote, names: list[str], logs: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while True:
        heads = git(remote.bare, "for-each-ref", "--format=%(refname:short)", "refs/heads/")
        if set(names) <= set(heads.split()):
            return
        tails = "\n".join(log.read_text(errors="replace")[-1500:] for log in logs)
        assert time.monotonic() < deadline, f"branches: {heads.split()}; logs end:\n{tails}"
        await asyncio.sleep(0.1)


def cvsync_plan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "plan", *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.timeout(180)
async def test_each_cluster_pushes_its_own_status_branch_and_plan_pr_live_reads_it(
    tmp_path: Path,
) -> None:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live: dict[str, Any] | None = sandbox.store.get(
            sandbox.api.key(CLUSTER_VERSIONS, "", "version")
        )
        assert live is not None
        cluster_id, channel = live["spec"]["clusterID"], live["spec"]["channel"]
        target = live["status"]["availableUpdates"][0]["version"]
        remote = Remote(tmp_path / "git")
        files = {f"clusters/{c}/clusterversion.yaml": spec(cluster_id, channel) for c in CLUSTERS}
        human = remote.commit(files, "the fleet")
        async with (
            cvsync_run("east", remote, kubeconfig, tmp_path) as east,
            cvsync_run("west", remote, kubeconfig, tmp_path) as west,
        ):
            await until_branches(remote, [f"cvsync-status/{c}" for c in CLUSTERS], [east, west])

    # Each branch holds its own cluster's three files and nothing else; main is untouched.
    assert git(remote.bare, "rev-parse", "main") == human
    for cluster in CLUSTERS:
        branch = f"cvsync-status/{cluster}"
        names = git(remote.bare, "ls-tree", "-r", "--name-only", branch).splitlines()
        assert names == [
            f"status/{cluster}-drift.md",
            f"status/{cluster}.md",
            f"status/{cluster}.yaml",
        ]
        assert git(remote.bare, "rev-list", "--max-parents=0", branch) != human  # an orphan
        subject = git(remote.bare, "log", "-1", "--format=%s", branch)
        assert subject.startswith(f"status({cluster}): 4.15.")

    # A CI job: the fleet at a glance, then the plan of a pull request moving east to a target.
    ci = tmp_path / "ci"
    git(tmp_path, "clone", "--quiet", remote.url, str(ci))
    git(
        ci,
        "fetch",
        "--quiet",
        "origin",
        "refs/heads/cvsync-status/*:refs/remotes/origin/cvsync-status/*",
    )
    fleet = git(
        ci,
        "for-each-ref",
        "--format=%(refname:lstrip=4) %(subject)",
        "refs/remotes/origin/cvsync-status/",
    )
    assert [line.split(" ", 1)[0] for line in fleet.splitlines()] == list(CLUSTERS)
    assert all(" idle" in line for line in fleet.splitlines()), fleet
    (ci / "clusters/east/clusterversion.yaml").write_text(spec(cluster_id, channel, target))
    git(ci, "fetch", "--quiet", "origin", "cvsync-status/east")
    saved = git(ci, "show", "origin/cvsync-status/east:status/east.yaml")
    (ci / "plans").mkdir()
    (ci / "plans/east.live.yaml").write_text(saved + "\n")
    plan = cvsync_plan(
        "--pr", "--cluster", "east", "--file", "clusters/east/clusterversion.yaml",
        "--live", "plans/east.live.yaml", cwd=ci,
    )  # fmt: skip
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert plan.stdout.startswith("<!-- cvsync-plan:east -->")
    assert "applies on merge" in plan.stdout
    assert target in plan.stdout
    assert "plans/east.live.yaml" in plan.stdout
