"""desiredUpdate as the user wrote it, through real processes against the sandbox: `cvsync
diff` shows git's value as written, and `cvsync plan --pr` against the status file cvsync
committed lists the same changes as the same plan against the live cluster."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from gitrepo import Remote, git
from ruamel.yaml import YAML
from sandbox_support import SandboxThread, sandbox_thread

from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import SandboxOptions

SPEC_PATH = "clusters/east/clusterversion.yaml"
STATUS_PATH = "status/east.yaml"


def cvsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def live_of(running: SandboxThread) -> dict[str, Any]:
    store, key = running.sandbox.store, running.sandbox.api.key(CLUSTER_VERSIONS, "", "version")
    found = running.call(lambda: store.get(key))
    assert found is not None
    return found


def spec(live: dict[str, Any], channel: str, version: str) -> str:
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {live['spec']['clusterID']}\n  channel: {channel}\n"
        f"  desiredUpdate:\n    version: {version}\n"
    )


def test_diff_shows_git_s_desired_update_as_the_user_wrote_it(tmp_path: Path) -> None:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15", tls=False)) as running:
        kubeconfig = running.kubeconfig(tmp_path / "kubeconfig")
        live = live_of(running)
        target = live["status"]["availableUpdates"][0]["version"]
        path = tmp_path / SPEC_PATH
        path.parent.mkdir(parents=True)
        path.write_text(spec(live, live["spec"]["channel"], target))
        text = cvsync("diff", "--cluster", "east", "--kubeconfig", str(kubeconfig), cwd=tmp_path)
        as_json = cvsync(
            "diff", "--cluster", "east", "--kubeconfig", str(kubeconfig), "-o", "json",
            cwd=tmp_path,
        )  # fmt: skip
    assert text.returncode == 1, text.stderr
    assert f'    git:  {{"version": "{target}"}}' in text.stdout
    assert "architecture" not in text.stdout
    [item] = json.loads(as_json.stdout)["items"]
    assert (item["path"], item["git"], item["live"]) == (
        ".spec.desiredUpdate",
        {"version": target},
        None,
    )


def test_a_plan_against_the_committed_status_file_lists_what_the_cluster_plan_lists(
    tmp_path: Path,
) -> None:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15", time_scale=1)) as running:
        running.grant("cvsync", FULL_ACCESS)
        kubeconfig = running.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        live = live_of(running)
        target = live["status"]["availableUpdates"][0]["version"]
        remote = Remote(tmp_path / "git")
        remote.commit({SPEC_PATH: spec(live, "stable-4.15", target)}, f"update to {target}")
        _run_until_status_commit(remote, kubeconfig, tmp_path / "agent", target)
        assert live_of(running)["spec"]["desiredUpdate"]["version"] == target

        # The next pull request changes the channel and leaves desiredUpdate as it is.
        git(remote.work, "pull", "-q", "origin", "main")
        (remote.work / SPEC_PATH).write_text(spec(live, "fast-4.15", target))
        common = ("plan", "--pr", "--cluster", "east", "-o", "json")
        offline = cvsync(*common, "--live", STATUS_PATH, cwd=remote.work)
        online = cvsync(*common, "--kubeconfig", str(kubeconfig), cwd=remote.work)
        # One that asks for an older release: desiredUpdate is held, the cluster being ahead.
        older = live["status"]["availableUpdates"][-1]["version"]
        (remote.work / SPEC_PATH).write_text(spec(live, "stable-4.15", older))
        held_offline = cvsync(*common, "--live", STATUS_PATH, cwd=remote.work)
        held_online = cvsync(*common, "--kubeconfig", str(kubeconfig), cwd=remote.work)
    assert offline.returncode == online.returncode == 0, offline.stderr + online.stderr
    from_status = json.loads(offline.stdout)["changes"]
    from_cluster = json.loads(online.stdout)["changes"]
    assert [change["path"] for change in from_cluster] == [".spec.channel"]
    assert from_status == from_cluster
    held_from_status = json.loads(held_offline.stdout)["held"]
    held_from_cluster = json.loads(held_online.stdout)["held"]
    assert [row["path"] for row in held_from_cluster] == [".spec.desiredUpdate"]
    assert held_from_cluster[0]["after"] == {"version": older}
    assert held_from_status == held_from_cluster


def _run_until_status_commit(remote: Remote, kubeconfig: Path, workdir: Path, target: str) -> None:
    """`cvsync run --write-back` until it has applied git's target and committed a status
    file in which the operator has taken the request, then stopped. The first status commit
    after the apply may precede the operator's answer; a plan against it rightly differs
    from one against the cluster a moment later, so the test waits for the settled one."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "agent", "run", "--cluster", "east", "--repo", remote.url,
            "--workdir", str(workdir), "--kubeconfig", str(kubeconfig), "--write-back",
            "--status-min-interval", "0", "--http-address", "127.0.0.1:0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _operator_took_request(_remote_file(remote, STATUS_PATH), target):
            assert process.poll() is None, "cvsync run exited early"
            assert time.monotonic() < deadline, "no status commit recorded the operator's answer"
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _operator_took_request(status_text: str, target: str) -> bool:
    """The status file says the operator has read the spec that requests `target`."""
    status = YAML(typ="safe").load(status_text) if status_text else None
    if not isinstance(status, dict):
        return False
    desired = status.get("desired") or {}
    return status.get("stale") is False and desired.get("version") == target


def _remote_file(remote: Remote, path: str) -> str:
    git(remote.work, "fetch", "-q", "origin", "main")
    shown = subprocess.run(
        ["git", "show", f"origin/main:{path}"],
        cwd=remote.work,
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else ""
