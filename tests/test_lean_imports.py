"""What each command imports, read from real `python -m agent` processes as they exit: the
commands that need no cluster never load the Kubernetes client, help loads no checks, and
the commands that reach a cluster load of kubernetes-asyncio only the classes they use."""

from __future__ import annotations
import __future__

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import environment
from conftest import REPO_ROOT
from sandbox_support import sandbox_thread

from agent.adapters.kube_library import ON_DEMAND_PACKAGES, read_exports
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import SandboxOptions

FLEET = REPO_ROOT / "examples" / "05-fleet"
CLUSTER_CLIENT = ("kubernetes_asyncio", "aiohttp")
CLUSTER_ID = "0f5a3b6e-1d0c-4f5e-9a57-3c1e0e9d2b41"
VALID_SPEC = (
    "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
    f"spec: {{clusterID: {CLUSTER_ID}, channel: stable-4.15}}\n"
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
    assert run.stdout.startswith("ok: 4 files, 2 ClusterVersions, 0 errors")
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


def test_a_diff_against_a_cluster_loads_only_the_kubernetes_classes_it_uses(
    tmp_path: Path,
) -> None:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15")) as running:
        running.kubeconfig(tmp_path / "kubeconfig")
        sandbox = running.sandbox
        live = running.call(
            lambda: sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        )
        assert live is not None
        (tmp_path / "cv.yaml").write_text(
            VALID_SPEC.replace(CLUSTER_ID, live["spec"]["clusterID"]).replace(
                "stable-4.15", "fast-4.15"
            )
        )
        run, modules = imported_by(
            "diff", "--file", "cv.yaml", "--kubeconfig", "kubeconfig", cwd=tmp_path
        )
    assert run.returncode == 1, run.stderr  # the channel drifted
    assert ".spec.channel" in run.stdout
    library = {m for m in modules if m.startswith("kubernetes_asyncio.")}
    assert "kubernetes_asyncio.client.api.custom_objects_api" in library
    assert "kubernetes_asyncio.client.api.apps_v1_api" not in library
    assert "kubernetes_asyncio.client.models.v1_pod" not in library
    assert len(library) < 60, sorted(library)  # all of it is some 1,300


# Every name the library's package initialisers import, as "module.qualified name".
EXPORTED_NAMES = """
import importlib, json, sys
packages = json.loads(sys.argv[1])
if sys.argv[2] == "on-demand":
    import agent.adapters
names = {}
for package in packages:
    module = importlib.import_module(package)
    exported = [n for n in dir(module) if not n.startswith("_")] + ["__version__"]
    names[package] = {
        n: f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', getattr(v, '__name__', v))}"
        for n in exported if (v := getattr(module, n, None)) is not None
    }
print(json.dumps(names))
"""


def test_every_name_of_kubernetes_asyncio_is_the_same_object_when_loaded_on_demand() -> None:
    def exported(how: str) -> dict[str, dict[str, str]]:
        packages = json.dumps(sorted(ON_DEMAND_PACKAGES))
        run = subprocess.run(
            [sys.executable, "-c", EXPORTED_NAMES, packages, how],
            env=environment(), capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        answer: dict[str, dict[str, str]] = json.loads(run.stdout)
        return answer

    as_written, on_demand = exported("as-written"), exported("on-demand")
    assert len(as_written["kubernetes_asyncio.client.models"]) > 500
    assert as_written["kubernetes_asyncio.client"]["CoreV1Api"] == (
        "kubernetes_asyncio.client.api.core_v1_api.CoreV1Api"
    )
    for package in ON_DEMAND_PACKAGES:
        missing = as_written[package].keys() - on_demand[package].keys()
        assert not missing, (package, sorted(missing)[:10])
        differ = [n for n in as_written[package] if as_written[package][n] != on_demand[package][n]]
        assert not differ, (package, differ[:10])


def test_the_library_initialisers_are_all_read_and_anything_else_runs_as_written() -> None:
    for package in ON_DEMAND_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None
        assert spec.origin is not None
        assert read_exports(package, Path(spec.origin).read_text()) is not None, package
    client = "kubernetes_asyncio.client"
    assert read_exports(client, f"from {client}.x import Y\nsetup()\n") is None
    assert read_exports(client, f"from {client}.x import *\n") is None
    assert read_exports(client, "from os import path\n") is None
    exports = read_exports(
        client,
        f'"""doc"""\nfrom __future__ import annotations\n__version__ = "1.0"\n'
        f"from {client}.x import Y\nimport kubernetes_asyncio.watch as watch\n",
    )
    assert exports is not None
    assert exports.names == {"Y": (f"{client}.x", "Y")}
    assert exports.submodules == {"x": f"{client}.x", "watch": "kubernetes_asyncio.watch"}
    assert exports.constants == {"annotations": __future__.annotations, "__version__": "1.0"}
