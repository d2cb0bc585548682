"""`cvsync validate` as a user runs it: a real process, exit codes, text and JSON output."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from spec_text import HEADER

from agent.spec.parse import MAX_FILE_BYTES


def cvsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_a_valid_tree_exits_zero_and_says_ok(tmp_path: Path) -> None:
    write(tmp_path / "clusters" / "east" / "clusterversion.yaml", HEADER)
    run = cvsync("validate", "clusters", cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout == "ok: 1 file, 1 ClusterVersion, 0 errors, 0 warnings\n"


def test_errors_print_compiler_style_lines_and_exit_one(tmp_path: Path) -> None:
    write(tmp_path / "clusters" / "east" / "clusterversion.yaml", HEADER + "  chanel: x\n")
    run = cvsync("validate", "clusters/", cwd=tmp_path)
    assert run.returncode == 1
    first, hint = run.stdout.splitlines()[:2]
    assert first.startswith("clusters/east/clusterversion.yaml:7:3: error[unknown-field]: ")
    assert hint == '    hint: did you mean "channel"?'
    assert "Traceback" not in run.stderr


def test_warnings_pass_unless_strict(tmp_path: Path) -> None:
    write(tmp_path / "cv.yaml", HEADER + "  channel: test\n")
    assert cvsync("validate", "cv.yaml", cwd=tmp_path).returncode == 0
    strict = cvsync("validate", "--strict", "cv.yaml", cwd=tmp_path)
    assert strict.returncode == 1
    assert "error[channel-form]" in strict.stdout


def test_json_output_is_one_document_for_machines(tmp_path: Path) -> None:
    write(tmp_path / "cv.yaml", HEADER + "  channel: test\n  upstream: nope\n")
    run = cvsync("validate", "-o", "json", "cv.yaml", cwd=tmp_path)
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert (report["files"], report["errors"], report["warnings"]) == (1, 1, 1)
    assert [(f["rule"], f["line"], f["column"], f["field"]) for f in report["findings"]] == [
        ("channel-form", 7, 12, ".spec.channel"),
        ("upstream-url", 8, 13, ".spec.upstream"),
    ]


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    run = cvsync("validate", "nowhere", cwd=tmp_path)
    assert run.returncode == 2
    assert "nowhere: no such file or directory" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_path_at_all_is_a_usage_error(tmp_path: Path) -> None:
    assert cvsync("validate", cwd=tmp_path).returncode == 2


def test_random_bytes_never_produce_a_traceback(tmp_path: Path) -> None:
    generator = random.Random(7)
    for index in range(40):
        size = generator.randint(1, 400)
        write(
            tmp_path / "junk" / f"{index}.yaml",
            bytes(generator.getrandbits(8) for _ in range(size)),
        )
    pieces = [HEADER, "  desiredUpdate: {", "[", "]", ": ", "- ", "&a ", "*a ", "\n", "\t", '"']
    for index in range(40):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(1, 30)))
        write(tmp_path / "junk" / f"text{index}.yaml", text)
    run = cvsync("validate", "junk", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr == ""
    assert run.stdout.rstrip().splitlines()[-1].startswith("FAILED: 80 files")


def test_only_yaml_and_json_files_are_read_and_hidden_directories_are_skipped(
    tmp_path: Path,
) -> None:
    write(tmp_path / "repo" / "a" / "cv.yml", HEADER)
    write(tmp_path / "repo" / "b" / "cv.json", json.dumps({"kind": "ConfigMap"}))
    write(tmp_path / "repo" / "README.md", "# not a spec: {")
    write(tmp_path / "repo" / ".git" / "config.yaml", "kind: Secret\n")
    run = cvsync("validate", "repo", cwd=tmp_path)
    assert run.stdout.splitlines()[0].startswith("repo/b/cv.json:1:10: error[document-other-kind]")
    assert run.stdout.splitlines()[-1] == "FAILED: 2 files, 1 ClusterVersion, 1 error, 0 warnings"


def test_a_symlink_out_of_the_scanned_root_is_refused(tmp_path: Path) -> None:
    secret = write(tmp_path / "outside" / "secret.yaml", HEADER)
    write(tmp_path / "repo" / "clusters" / "a" / "clusterversion.yaml", HEADER)
    os.symlink(secret, tmp_path / "repo" / "clusters" / "b.yaml")
    os.symlink(tmp_path / "outside", tmp_path / "repo" / "linked-dir")
    run = cvsync("validate", "repo", cwd=tmp_path)
    assert run.returncode == 1
    lines = [line for line in run.stdout.splitlines() if "symlink-outside-root" in line]
    assert [line.split(":")[0] for line in lines] == ["repo/clusters/b.yaml", "repo/linked-dir"]


def test_a_symlink_inside_the_root_is_followed_once(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "real" / "clusterversion.yaml", HEADER)
    os.symlink(tmp_path / "repo" / "real", tmp_path / "repo" / "alias")
    os.symlink(tmp_path / "repo", tmp_path / "repo" / "real" / "loop")
    run = cvsync("validate", "repo", cwd=tmp_path)
    assert run.stdout.splitlines()[-1].startswith("FAILED: 2 files, 2 ClusterVersions")
    assert "fleet-duplicate-cluster-id" in run.stdout


def test_an_unreadable_file_is_an_io_error(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "a" / "clusterversion.yaml", HEADER)
    os.symlink(tmp_path / "repo" / "missing.yaml", tmp_path / "repo" / "dangling.yaml")
    run = cvsync("validate", "repo", cwd=tmp_path)
    assert run.returncode == 2
    assert "repo/dangling.yaml:1:1: error[file-unreadable]" in run.stdout


def test_a_file_over_one_mebibyte_is_refused_without_reading_it(tmp_path: Path) -> None:
    write(tmp_path / "big.yaml", HEADER + "#" * MAX_FILE_BYTES)
    run = cvsync("validate", "big.yaml", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stdout.startswith("big.yaml:1:1: error[file-too-large]")


@pytest.mark.skipif(shutil.which("cvsync") is None, reason="the console script is not installed")
def test_the_console_script_is_the_same_command(tmp_path: Path) -> None:
    write(tmp_path / "cv.yaml", HEADER)
    cvsync_bin = shutil.which("cvsync")
    assert cvsync_bin is not None
    run = subprocess.run(
        [cvsync_bin, "validate", "cv.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (run.returncode, run.stdout) == (
        0,
        "ok: 1 file, 1 ClusterVersion, 0 errors, 0 warnings\n",
    )
    version = subprocess.run([cvsync_bin, "--version"], capture_output=True, text=True, check=False)
    assert version.stdout.startswith("cvsync, version ")


def test_a_clusters_policy_file_is_validated_as_an_upgrade_policy(tmp_path: Path) -> None:
    write(tmp_path / "clusters" / "east" / "clusterversion.yaml", HEADER)
    write(
        tmp_path / "clusters" / "east" / "policy.yaml",
        "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n"
        "  maintenanceWindows:\n    - cron: '0 25 * * *'\n      duration: 4h\n"
        "      timeZone: Europe/Berlin\n  allowMinr: true\n",
    )
    run = cvsync("validate", "clusters", cwd=tmp_path)
    assert run.returncode == 1
    lines = run.stdout.splitlines()
    assert lines[0].startswith("clusters/east/policy.yaml:5:13: error[policy-cron]")
    assert lines[2].startswith("clusters/east/policy.yaml:8:3: error[policy-unknown-field]")
    assert lines[-1] == "FAILED: 2 files, 1 ClusterVersion, 2 errors, 0 warnings"
