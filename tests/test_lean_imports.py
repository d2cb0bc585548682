"""What each command imports, read from real `python -m agent` processes as they exit: the
commands that need no cluster never load the Kubernetes client, and help loads no checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import environment
from conftest import REPO_ROOT

FLEET = REPO_ROOT / "examples" / "05-fleet"
CLUSTER_CLIENT = ("kubernetes_asyncio", "aiohttp")
VALID_SPEC = (
    "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
    "spec: {clusterID: 0f5a3b6e-1d0c-4f5e-9a57-3c1e0e9d2b41, channel: stable-4.15}\n"
)


# `python -m agent ARGS`, and at exit (also through sys.exit) the names of every module loaded.
RECORDING_MAIN = """
import atexit, runpy, sys
record = sys.argv.pop(1)
atexit.register(lambda: open(record, "w").write("\\n".join(sorted(sys.modules))))
runpy.run_module("agent", run_name="__main__", alter_sys=True)
"""


def imported_by(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `cvsync ARGS` as a real process; its result and every module it had loaded."""
    record = cwd / ".modules"
    run = subprocess.run(
        [sys.executable, "-c", RECORDING_MAIN, str(record), *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    modules = set(record.read_text().split())
    assert "agent.cli.cvsync" in modules, run.stderr
    return run, modules


def top_levels(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    shutil.copytree(FLEET, tmp_path / "fleet")
    return tmp_path / "fleet"


def test_validate_help_imports_none_of_the_checks_and_no_cluster_client(tmp_path: Path) -> None:
    run, modules = imported_by("validate", "--help", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Validate ClusterVersion specs" in run.stdout
    loaded_commands = {m for m in modules if m.startswith("agent.cli.")}
    assert loaded_commands == {"agent.cli.cvsync", "agent.cli.options", "agent.cli.validate"}
    assert not {m for m in modules if m.startswith(("agent.spec", "agent.report", "agent.sync"))}
    assert not top_levels(modules) & {*CLUSTER_CLIENT, "ruamel", "deepdiff", "asyncio"}


def test_validate_checks_a_whole_directory_without_loading_a_cluster_client(fleet: Path) -> None:
    run, modules = imported_by("validate", "clusters", cwd=fleet)
    assert run.returncode == 0, run.stderr
    assert "ok" in run.stdout.lower()
    assert "agent.report.check" in modules
    assert not top_levels(modules) & {*CLUSTER_CLIENT, "git", "watchdog", "cryptography"}


def test_a_plan_for_a_pull_request_against_a_saved_object_loads_no_cluster_client(
    fleet: Path,
) -> None:
    run, modules = imported_by(
        "plan", "--pr", "--cluster", "prod-east", "--live", "status/prod-east.yaml",
        "--at", "2026-12-04T20:00:00Z", cwd=fleet,
    )  # fmt: skip
    assert run.returncode == 1, run.stderr  # Friday evening: it waits for a window
    assert "cvsync plan: `prod-east` waits for a maintenance window" in run.stdout
    assert not top_levels(modules) & {*CLUSTER_CLIENT, "git", "watchdog"}


@pytest.mark.parametrize(
    ("command", "spec", "expected"),
    [
        ("diff", None, "no such file"),
        ("diff", "spec: [unclosed\n", "holds no valid ClusterVersion"),
        ("plan", "spec: [unclosed\n", "holds no valid ClusterVersion"),
    ],
    ids=["diff-of-a-missing-file", "diff-of-a-broken-spec", "plan-of-a-broken-spec"],
)
def test_a_spec_that_cannot_be_compared_fails_before_the_cluster_client_loads(
    tmp_path: Path, command: str, spec: str | None, expected: str
) -> None:
    if spec is not None:
        (tmp_path / "cv.yaml").write_text(spec)
    run, modules = imported_by(command, "--file", "cv.yaml", cwd=tmp_path)
    assert run.returncode == 2
    assert expected in run.stderr
    assert not top_levels(modules) & set(CLUSTER_CLIENT)


def test_a_diff_with_a_valid_spec_does_load_the_cluster_client_to_reach_the_cluster(
    tmp_path: Path,
) -> None:
    """The other side of the tests above: the recording sees the client when a command
    really loads it."""
    (tmp_path / "cv.yaml").write_text(VALID_SPEC)
    run, modules = imported_by(
        "diff", "--file", "cv.yaml", "--kubeconfig", str(tmp_path / "absent"), cwd=tmp_path
    )
    assert run.returncode == 2
    assert "kubeconfig" in run.stderr
    assert {"kubernetes_asyncio", "aiohttp"} <= top_levels(modules)
