"""`cvsync` as a newcomer meets it: help that explains every option and its environment
variable, output for people unless machines ask, Ctrl-C exiting 130, shell completion, and
the conformance tests running from the data a user points them at. Real processes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from cli_support import cvsync, environment, free_port
from conftest import REPO_ROOT, corpus_path
from ruamel.yaml import YAML
from sandbox_support import SandboxThread, sandbox_thread
from spec_text import HEADER

from agent.cli.cvsync import cvsync as command_line
from agent.cli.options import EXIT_INTERRUPTED
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.server import SandboxOptions


@pytest.fixture(scope="module")
def running() -> Iterator[SandboxThread]:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15")) as sandbox:
        yield sandbox


@pytest.fixture
def cluster_dir(tmp_path: Path, running: SandboxThread) -> Path:
    """A directory with the sandbox's kubeconfig and a spec that drifts in its channel."""
    running.kubeconfig(tmp_path / "kubeconfig")
    sandbox = running.sandbox
    live = running.call(lambda: sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version")))
    assert live is not None
    (tmp_path / "cv.yaml").write_text(
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec: {{clusterID: {live['spec']['clusterID']}, channel: fast-4.15}}\n"
    )
    return tmp_path


# 6. Help text and environment variables for every option of every command.
def every_option(
    group: click.Group, path: str = "cvsync"
) -> Iterator[tuple[str, click.Command, click.Option]]:
    for option in group.params:
        if isinstance(option, click.Option):
            yield path, group, option
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_option(command, f"{path} {name}")
            continue
        for option in command.params:
            if isinstance(option, click.Option):
                yield f"{path} {name}", command, option


def test_every_option_has_help_text_and_shows_its_environment_variable() -> None:
    options = list(every_option(command_line))
    assert len(options) > 60
    no_help = [f"{path} {o.opts[0]}" for path, _, o in options if not (o.help or "").strip()]
    hidden = [f"{path} {o.opts[0]}" for path, _, o in options if o.envvar and not o.show_envvar]
    assert no_help == []
    assert hidden == []
    for path, command, option in options:
        if option.envvar:
            with click.Context(command, info_name=path) as context:
                shown = command.get_help(context)
            names = [option.envvar] if isinstance(option.envvar, str) else option.envvar
            assert f"env var: {', '.join(names)}" in " ".join(shown.split()), (path, names)


def test_run_help_names_each_environment_variable_and_the_group_says_what_cvsync_does(
    tmp_path: Path,
) -> None:
    run = cvsync("run", "--help", cwd=tmp_path)
    assert run.returncode == 0
    flat = " ".join(run.stdout.split())
    for variable in ("CVSYNC_HTTP_ADDRESS", "CVSYNC_GIT_TOKEN_FILE", "KUBECONFIG", "CVSYNC_MODE"):
        assert f"env var: {variable}" in flat
    group = " ".join(cvsync("--help", cwd=tmp_path).stdout.split())
    assert "validate specs from git" not in group
    assert "keep a cluster's ClusterVersion in line with git" in group
    assert "_CVSYNC_COMPLETE=bash_source cvsync" in group


# 7. Text for people, Markdown only where asked, a real name for the cluster.
def test_drift_text_is_for_people_and_markdown_only_when_asked(cluster_dir: Path) -> None:
    args = ("drift", "--file", "cv.yaml", "--kubeconfig", "kubeconfig")
    text = cvsync(*args, cwd=cluster_dir)
    assert text.returncode == 1, text.stderr
    assert text.stderr == ""
    assert "<!--" not in text.stdout
    assert "|" not in text.stdout
    assert text.stdout.splitlines()[:4] == [
        "cvsync-sandbox: 1 drifted (cv.yaml (not in a git checkout))",
        '  changed  .spec.channel (live value owned by "cluster-bootstrap")',
        '    git:  "fast-4.15"',
        '    live: "stable-4.15"',
    ]
    assert text.stdout.splitlines()[4].startswith("    since: ")
    markdown = cvsync(*args, "-o", "markdown", cwd=cluster_dir)
    assert "# Drift report: cvsync-sandbox" in markdown.stdout


def test_status_names_the_cluster_from_the_kubeconfig_and_no_agent_cycle(
    cluster_dir: Path,
) -> None:
    run = cvsync("status", "--kubeconfig", "kubeconfig", cwd=cluster_dir)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout.startswith("cvsync-sandbox: idle at 4.15.12\n")
    assert "no cycle yet" not in run.stdout
    named = cvsync("status", "--kubeconfig", "kubeconfig", "--cluster", "lab", cwd=cluster_dir)
    assert named.stdout.startswith("lab: idle at 4.15.12\n")


# 11. Ctrl-C, validate -o yaml, diff --file alone, completion.
def start_run(tmp_path: Path, running: SandboxThread) -> tuple[subprocess.Popen[str], int]:
    tree = tmp_path / "tree" / "clusters" / "east"
    tree.mkdir(parents=True)
    (tree / "clusterversion.yaml").write_text((tmp_path / "cv.yaml").read_text())
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--cluster", "east", "--local-path",
         str(tmp_path / "tree"), "--kubeconfig", "kubeconfig", "--http-address",
         f"127.0.0.1:{port}", "--mode", "observe"],
        cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as health:
                if health.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    _, stderr = process.communicate()
    raise AssertionError(f"cvsync run never served /healthz: {stderr}")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, 0)]
)
def test_ctrl_c_stops_run_cleanly_with_130_and_sigterm_with_0(
    cluster_dir: Path, running: SandboxThread, signum: int, code: int
) -> None:
    process, _ = start_run(cluster_dir, running)
    try:
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == code, stderr
        assert "Traceback" not in stderr
        assert "Aborted" not in stderr
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, EXIT_INTERRUPTED), (signal.SIGTERM, 0)]
)
def test_ctrl_c_stops_the_sandbox_cleanly_with_130_and_sigterm_with_0(
    tmp_path: Path, signum: int, code: int
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "sandbox", "--kubeconfig", str(tmp_path / "kc")],
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("kubeconfig written to "):
                break
        process.send_signal(signum)
        rest, stderr = process.communicate(timeout=10)
        assert process.returncode == code, stderr
        assert rest.strip().splitlines()[-1] == "stopping"
        assert stderr == ""
    finally:
        if process.poll() is None:
            process.kill()


def test_validate_prints_yaml_for_machines(tmp_path: Path) -> None:
    (tmp_path / "cv.yaml").write_text(HEADER + "  channel: test\n")
    run = cvsync("validate", "-o", "yaml", "cv.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    document = YAML(typ="safe").load(run.stdout)
    assert list(document) == ["files", "clusterVersions", "errors", "warnings", "findings"]
    assert [(f["rule"], f["line"]) for f in document["findings"]] == [("channel-form", 7)]
    as_json = json.loads(cvsync("validate", "-o", "json", "cv.yaml", cwd=tmp_path).stdout)
    assert document == as_json


def test_diff_with_a_file_needs_no_cluster_name(cluster_dir: Path) -> None:
    run = cvsync("diff", "--file", "cv.yaml", "--kubeconfig", "kubeconfig", cwd=cluster_dir)
    assert run.returncode == 1, run.stderr
    assert run.stdout.startswith("cvsync-sandbox: 1 drifted (cv.yaml)\n")


def test_shell_completion_completes_commands_options_and_choices(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        env = environment(
            _CVSYNC_COMPLETE="bash_complete",
            COMP_WORDS=words,
            COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        )
        run = cvsync(cwd=tmp_path, env=env)
        assert run.returncode == 0, run.stderr
        return [line.split(",", 1)[1] for line in run.stdout.splitlines()]

    assert complete("cvsync st") == ["status"]
    assert complete("cvsync run --http-a") == ["--http-address"]
    assert complete("cvsync run --mode ") == ["enforce", "observe"]
    script = cvsync(cwd=tmp_path, env=environment(_CVSYNC_COMPLETE="bash_source"))
    assert "complete -o nosort -F _cvsync_completion cvsync" in script.stdout


# 12. The conformance tests run from the CRD test data a user points them at.
def test_the_conformance_tests_run_from_the_data_cvsync_corpus_points_at(
    tmp_path: Path,
) -> None:
    suite = ["-m", "pytest", "tests/test_crd_conformance.py", "-q", "-rs", "-p",
             "no:cacheprovider"]  # fmt: skip

    def conformance(corpus: Path) -> str:
        run = subprocess.run(
            [sys.executable, *suite], cwd=REPO_ROOT, env=environment(CVSYNC_CORPUS=str(corpus)),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    absent = conformance(tmp_path / "nowhere")
    assert "skipped" in absent
    assert "point CVSYNC_CORPUS at it" in absent
    only_crd = tmp_path / "corpus"
    shutil.copytree(corpus_path("crd"), only_crd / "crd")
    present = conformance(only_crd)
    assert "skipped" not in present
    assert " passed" in present


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("spec:\n\tchannel: stable-4.16\n", ":6:1:"),  # a tab where the indentation starts
        ("spec:\n  a: 1\n\t\tb: 2\n", ":7:1:"),
        ("spec:\n  overrides:\n  \t- kind: Deployment\n", ":7:3:"),  # after two spaces
    ],
)
def test_a_tab_in_the_indentation_is_named_as_the_trouble(
    tmp_path: Path, text: str, where: str
) -> None:
    (tmp_path / "cv.yaml").write_text(HEADER.split("spec:")[0] + text)
    run = cvsync("validate", "cv.yaml", cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert where in run.stdout, run.stdout
    assert "yaml-syntax" in run.stdout
    assert "YAML forbids tabs in indentation" in run.stdout
    assert "JSON" not in run.stdout


def test_a_json_spec_with_a_stray_comma_gets_a_json_hint_and_yaml_gets_a_yaml_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "cv.json").write_text('{"apiVersion": "config.openshift.io/v1",, "kind": 1}\n')
    (tmp_path / "cv.yaml").write_text("spec: channel: x\n")
    hints = {
        name: cvsync("validate", name, cwd=tmp_path).stdout.split("hint: ", 1)[1].splitlines()[0]
        for name in ("cv.json", "cv.yaml")
    }
    assert hints["cv.json"] == "fix the JSON at this position: check commas, quotes and brackets"
    assert hints["cv.yaml"] == "fix the YAML at this position: check indentation, colons and quotes"
