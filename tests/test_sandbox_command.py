"""`cvsync sandbox` as a user runs it: a real process, a kubeconfig, Ctrl-C, state kept."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sandbox_support import kubectl, needs_kubectl

from agent.cli.options import EXIT_INTERRUPTED


@contextmanager
def start(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Run `cvsync sandbox`, read its start-up lines, and never leave it running."""
    with subprocess.Popen(
        [sys.executable, "-m", "agent", "sandbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            lines: dict[str, str] = {}
            for line in process.stdout:
                key, _, value = line.strip().partition(" ")
                lines[key] = value
                if line.startswith("kubeconfig written to "):
                    lines["kubeconfig"] = line.removeprefix("kubeconfig written to ").strip()
                    break
            yield process, lines
        finally:
            if process.poll() is None:
                process.kill()


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C: a clean stop that exits 130, as a shell expects of an interrupted command."""
    process.send_signal(signal.SIGINT)
    remaining, _ = process.communicate(timeout=5)
    return process.returncode, remaining


@needs_kubectl
def test_the_sandbox_command_serves_kubectl_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    with start("--kubeconfig", str(tmp_path / "kubeconfig")) as (process, lines):
        assert lines["kubeconfig"] == str(tmp_path / "kubeconfig")
        assert lines["cvsync"].startswith("sandbox serving https://127.0.0.1:")
        run = kubectl(tmp_path / "kubeconfig", "get", "namespace", "cvsync", "-o", "name")
        assert run.stdout == "namespace/cvsync\n"
        code, rest = stop(process)
    assert code == EXIT_INTERRUPTED
    assert rest.strip().splitlines()[-1] == "stopping"


@needs_kubectl
def test_a_state_directory_keeps_objects_across_restarts(tmp_path: Path) -> None:
    spec = (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        "spec: {clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e, channel: stable-4.16}\n"
    )
    state = tmp_path / "state"
    versions: list[int] = []
    for _ in range(2):
        with start("--state-dir", str(state), "--scenario", "none") as (process, lines):
            config = Path(lines["kubeconfig"])
            if not versions:
                applied = kubectl(config, "apply", "--server-side", "-f", "-", stdin=spec)
                assert applied.returncode == 0, applied.stderr
            got = kubectl(config, "get", "clusterversion", "version", "-o", "json")
            obj = json.loads(got.stdout)
            versions.append(int(obj["metadata"]["resourceVersion"]))
            assert obj["spec"]["channel"] == "stable-4.16"
            kubectl(
                config,
                "patch",
                "clusterversion",
                "version",
                "--type=merge",
                "-p",
                '{"spec":{"upstream":"https://u.example.com/g"}}',
            )
            assert stop(process)[0] == EXIT_INTERRUPTED
    assert versions[1] > versions[0]


def test_the_admin_endpoint_needs_its_token_and_counts_requests(tmp_path: Path) -> None:
    with start("--admin-port", "0", "--plain-http", "--state-dir", str(tmp_path)) as (
        process,
        lines,
    ):
        admin_url = lines["admin"].split()[1]
        token = (tmp_path / "admin-token").read_text().strip()
        refused = urllib.request.Request(f"{admin_url}/requests")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(refused, timeout=5)
        assert caught.value.code == 401
        caught.value.close()
        asked = urllib.request.Request(
            f"{admin_url}/requests", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(asked, timeout=5) as response:
            report = json.load(response)
        assert report == {"requests": [], "writes": 0, "writeLog": []}
        assert stop(process)[0] == EXIT_INTERRUPTED


@needs_kubectl
def test_a_simulated_upgrade_progresses_to_completed_as_kubectl_sees_it(tmp_path: Path) -> None:
    with start("--scenario", "idle-4.15", "--time-scale", "600") as (process, lines):
        config = Path(lines["kubeconfig"])
        live = json.loads(kubectl(config, "get", "clusterversion", "version", "-o", "json").stdout)
        current = live["status"]["desired"]["version"]
        target = live["status"]["availableUpdates"][0]["version"]
        assert target != current
        patch = json.dumps({"spec": {"desiredUpdate": {"version": target}}})
        run = kubectl(config, "patch", "clusterversion", "version", "--type=merge", "-p", patch)
        assert run.returncode == 0, run.stderr
        seen: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            table = kubectl(config, "get", "clusterversion", "version", "--no-headers").stdout
            seen.append(table.split(None, 5)[-1].strip())
            if table.split()[1] == target:
                break
            time.sleep(0.2)
        assert table.split()[1:4] == [target, "True", "False"]
        assert any(status.startswith(f"Working towards {target}") for status in seen)
        assert seen[-1] == f"Cluster version is {target}"
        assert stop(process)[0] == EXIT_INTERRUPTED
