"""Ordinary mistakes with `cvsync`, made as a user makes them (a real process each): every one
ends in one line `cvsync: error: ...` naming the thing and what to do, exit 2, never a
traceback; only a bug in cvsync shows one, with a line asking to report it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import (
    UNREACHABLE_KUBECONFIG,
    cvsync,
    environment,
    error_line,
    port_in_use,
)
from conftest import REPO_ROOT
from spec_text import HEADER

from agent.cli.options import EXIT_BUG

FLEET = REPO_ROOT / "examples" / "05-fleet"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A directory with a valid spec, a git-sync style tree and a kubeconfig that loads."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "spec.yaml").write_text(HEADER + "  channel: stable-4.16\n")
    (tmp_path / "unreachable.kc").write_text(UNREACHABLE_KUBECONFIG)
    (tmp_path / "garbage.kc").write_text("apiVersion: v1\nclusters: [\n  - name: x\n")
    return tmp_path


def run_args(*extra: str) -> list[str]:
    return ["run", "--cluster", "east", "--local-path", "tree", *extra]


# 1. A port already in use.
def test_run_on_a_port_in_use_names_the_address_and_the_flag(workspace: Path) -> None:
    with port_in_use() as port:
        args = run_args("--kubeconfig", "unreachable.kc", "--http-address", f"127.0.0.1:{port}")
        line = error_line(cvsync(*args, cwd=workspace))
    assert line == (
        f"cvsync: error: cannot listen on 127.0.0.1:{port} (--http-address): address already "
        "in use; stop what listens there or choose another port"
    )


@pytest.mark.parametrize("flag", ["--port", "--admin-port"])
def test_the_sandbox_on_a_port_in_use_names_the_address_and_the_flag(
    tmp_path: Path, flag: str
) -> None:
    with port_in_use() as port:
        line = error_line(cvsync("sandbox", "--plain-http", flag, str(port), cwd=tmp_path))
    assert line.startswith(f"cvsync: error: cannot listen on 127.0.0.1:{port} ({flag}): ")
    assert "address already in use" in line


# 2. A kubeconfig that is not YAML, for every command that reads one.
@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["plan", "--file", "spec.yaml"],
        ["diff", "--file", "spec.yaml"],
        ["drift", "--file", "spec.yaml"],
        ["status", "--wait", "--timeout", "5s"],
        run_args("--http-address", "127.0.0.1:0"),
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_kubeconfig_that_is_not_yaml_is_one_line_naming_the_file(
    workspace: Path, args: list[str]
) -> None:
    line = error_line(cvsync(*args, "--kubeconfig", "garbage.kc", cwd=workspace))
    assert line.startswith("cvsync: error: kubeconfig garbage.kc is not valid YAML: ")
    assert line.endswith("; give a kubeconfig with --kubeconfig or KUBECONFIG")


def test_a_kubeconfig_that_is_yaml_but_no_kubeconfig_says_what_it_is(workspace: Path) -> None:
    (workspace / "list.kc").write_text("- just\n- a list\n")
    line = error_line(cvsync("status", "--kubeconfig", "list.kc", cwd=workspace))
    assert "kubeconfig list.kc is not a kubeconfig: a YAML mapping" in line


# 3. Addresses and ports that cannot be.
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            run_args("--http-address", "localhost"),
            "'localhost' is not HOST:PORT, such as 127.0.0.1:8080",
        ),
        (
            run_args("--http-address", "127.0.0.1:99999"),
            "port 99999 in '127.0.0.1:99999' is out of range (0 to 65535)",
        ),
        (["sandbox", "--port", "99999"], "invalid value for '--port': 99999 is not in the range"),
        (["sandbox", "--admin-port", "-1"], "invalid value for '--admin-port': -1 is not in"),
    ],
    ids=["host-without-port", "port-too-large", "sandbox-port", "sandbox-admin-port"],
)
def test_an_address_or_port_that_cannot_be_is_refused_before_anything_starts(
    workspace: Path, args: list[str], expected: str
) -> None:
    line = error_line(cvsync(*args, cwd=workspace))
    assert expected in line


# 4. A kubeconfig that does not exist: kubectl's words.
def test_a_kubeconfig_that_does_not_exist_is_named_as_kubectl_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "config"
    line = error_line(cvsync("status", "--kubeconfig", str(missing), cwd=tmp_path))
    assert line == (
        f"cvsync: error: stat {missing}: no such file or directory; give a kubeconfig with "
        "--kubeconfig or KUBECONFIG"
    )


def test_without_any_kubeconfig_the_default_path_is_named(tmp_path: Path) -> None:
    env = environment(HOME=str(tmp_path))
    env.pop("KUBECONFIG", None)
    line = error_line(cvsync("status", cwd=tmp_path, env=env))
    assert line.startswith(f"cvsync: error: stat {tmp_path}/.kube/config: no such file")


def test_the_kubeconfig_environment_variable_is_read_like_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "elsewhere"
    line = error_line(cvsync("status", cwd=tmp_path, env=environment(KUBECONFIG=str(missing))))
    assert line.startswith(f"cvsync: error: stat {missing}: no such file or directory")


def test_a_context_the_kubeconfig_lacks_is_one_line_listing_those_it_has(
    workspace: Path,
) -> None:
    args = ("status", "--kubeconfig", "unreachable.kc", "--context", "prod")
    line = error_line(cvsync(*args, cwd=workspace))
    assert line == (
        'cvsync: error: kubeconfig unreachable.kc: context "prod" (--context) does not exist '
        "(it has: nowhere)"
    )


def test_an_unreachable_api_server_is_one_line(workspace: Path) -> None:
    line = error_line(cvsync("status", "--kubeconfig", "unreachable.kc", cwd=workspace))
    assert line.startswith("cvsync: error: cannot reach the API server: ")


# 9. Mistakes that used to pass silently.
def test_repo_and_local_path_together_are_refused(workspace: Path) -> None:
    line = error_line(cvsync(*run_args("--repo", "https://git.example.com/f.git"), cwd=workspace))
    assert "give --repo URL or --local-path DIR, not both" in line


def test_write_back_from_a_git_sync_checkout_needs_a_remote_to_push_to(workspace: Path) -> None:
    line = error_line(cvsync(*run_args("--write-back"), cwd=workspace))
    assert "--write-back with --local-path needs --status-repo URL" in line


def test_graph_data_without_pr_is_refused_and_a_missing_graph_is_named(workspace: Path) -> None:
    (workspace / "graph").mkdir()
    unused = error_line(cvsync("plan", "--file", "spec.yaml", "--graph", "graph", cwd=workspace))
    assert "--graph is used only with --pr" in unused
    missing = error_line(cvsync("plan", "--file", "spec.yaml", "--graph", "nope", cwd=workspace))
    assert "invalid value for '--graph': Directory 'nope' does not exist" in missing


def test_validating_a_directory_with_no_spec_fails_instead_of_passing(tmp_path: Path) -> None:
    (tmp_path / "emptydir").mkdir()
    line = error_line(cvsync("validate", "emptydir/", cwd=tmp_path))
    assert line == (
        "cvsync: error: nothing to validate in emptydir/: no *.yaml, *.yml or *.json file; "
        "check the path"
    )


def test_validating_only_a_status_file_fails_instead_of_passing(tmp_path: Path) -> None:
    status = tmp_path / "status" / "prod-east.yaml"
    status.parent.mkdir()
    shutil.copy(FLEET / "status" / "prod-east.yaml", status)
    run = cvsync("validate", "status/prod-east.yaml", cwd=tmp_path)
    assert "only status files cvsync writes, which are not specs" in error_line(run)
    assert run.stdout == ""


# The one error path: usage errors are one line too; a bug is the only traceback.
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["status", "--clustr", "x"], "no such option '--clustr'. Did you mean '--cluster'?"),
        (["run", "--local-path", "tree"], "missing option '--cluster'"),
        (["run", "--cluster", "east"], "give --repo URL or --local-path DIR"),
        (["diff"], "give --cluster NAME (reads clusters/NAME/clusterversion.yaml) or --file"),
        (["bogus"], "no such command 'bogus'"),
    ],
)
def test_usage_errors_are_one_line_pointing_at_the_help(
    workspace: Path, args: list[str], expected: str
) -> None:
    line = error_line(cvsync(*args, cwd=workspace))
    assert expected in line
    assert line.endswith("--help')")


def test_a_bug_shows_its_traceback_and_asks_to_be_reported(tmp_path: Path) -> None:
    program = textwrap.dedent(
        """
        from agent.cli import cvsync

        @cvsync.cvsync.command()
        def broken() -> None:
            raise RuntimeError("an invariant that does not hold")

        cvsync.main(["broken"])
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == EXIT_BUG
    assert run.stderr.startswith("Traceback (most recent call last):")
    assert "RuntimeError: an invariant that does not hold" in run.stderr
    last = run.stderr.splitlines()[-1]
    assert last.startswith("cvsync: internal error: this is a bug in cvsync ")
    assert last.endswith("please report it with the traceback above")
