"""`cvsync diff` and `cvsync plan` as real processes against the sandbox cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_support import SandboxThread, sandbox_thread

from agent.sandbox.resources import CLUSTER_VERSIONS
from agent.sandbox.server import SandboxOptions


@pytest.fixture(scope="module")
def running() -> Iterator[SandboxThread]:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15")) as sandbox:
        yield sandbox


def cvsync(
    tmp_path: Path, running: SandboxThread, spec: str, *args: str
) -> subprocess.CompletedProcess[str]:
    kubeconfig = running.kubeconfig(tmp_path / "kubeconfig")
    path = tmp_path / "clusters" / "east" / "clusterversion.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(spec)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            *args,
            "--cluster",
            "east",
            "--kubeconfig",
            str(kubeconfig),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def spec_for(running: SandboxThread, channel: str) -> str:
    sandbox = running.sandbox
    live = running.call(lambda: sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version")))
    assert live is not None
    return (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec: {{clusterID: {live['spec']['clusterID']}, channel: {channel}}}\n"
    )


def test_diff_exits_zero_when_the_cluster_matches_git(
    tmp_path: Path, running: SandboxThread
) -> None:
    run = cvsync(tmp_path, running, spec_for(running, "stable-4.15"), "diff")
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("east: no drift")


def test_diff_exits_one_and_names_the_field_its_values_and_owner(
    tmp_path: Path, running: SandboxThread
) -> None:
    run = cvsync(tmp_path, running, spec_for(running, "fast-4.15"), "diff")
    assert run.returncode == 1
    assert '.spec.channel (live value owned by "cluster-bootstrap")' in run.stdout
    assert '    git:  "fast-4.15"' in run.stdout
    assert '    live: "stable-4.15"' in run.stdout
    as_json = cvsync(tmp_path, running, spec_for(running, "fast-4.15"), "diff", "-o", "json")
    document = json.loads(as_json.stdout)
    assert [(i["path"], i["git"], i["live"], i["owner"]) for i in document["items"]] == [
        (".spec.channel", "fast-4.15", "stable-4.15", "cluster-bootstrap")
    ]


def test_diff_refuses_an_invalid_spec_with_exit_two(tmp_path: Path, running: SandboxThread) -> None:
    spec = spec_for(running, "fast-4.15").replace("spec: {", "spec: {chanel: x, ")
    run = cvsync(tmp_path, running, spec, "diff")
    assert run.returncode == 2
    assert "clusters/east/clusterversion.yaml:4:8: error[unknown-field]" in run.stdout


def test_plan_shows_what_a_dry_run_apply_would_change_and_writes_nothing(
    tmp_path: Path, running: SandboxThread
) -> None:
    sandbox = running.sandbox
    before = running.call(lambda: sandbox.store.resource_version)
    run = cvsync(tmp_path, running, spec_for(running, "fast-4.15"), "plan", "-o", "markdown")
    assert run.returncode == 0, run.stderr
    assert '| `.spec.channel` | `"stable-4.15"` | `"fast-4.15"` |' in run.stdout
    assert "applies on merge" in run.stdout
    assert 'takes .spec.channel back from "cluster-bootstrap"' in run.stdout
    assert running.call(lambda: sandbox.store.resource_version) == before
    assert running.call(lambda: sandbox.faults.total("patch", "clusterversions")) >= 1
