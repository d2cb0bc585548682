"""Running `cvsync` as a user does, for the command-line tests: a real process, and the
shape every expected failure must have (one line `cvsync: error: ...`, exit 2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import REPO_ROOT

# A kubeconfig that loads, for a server that is not there (port 9 is discard).
UNREACHABLE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: nowhere
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: someone
  user: {token: not-a-secret}
contexts:
- name: nowhere
  context: {cluster: nowhere, user: someone}
current-context: nowhere
"""


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), **extra}


def cvsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=cwd,
        env=env or environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def error_line(run: subprocess.CompletedProcess[str]) -> str:
    """The one line an expected failure prints; fails unless it is exactly that, exit 2."""
    assert "Traceback" not in run.stderr, run.stderr
    assert run.returncode == 2, (run.returncode, run.stdout, run.stderr)
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("cvsync: error: "), lines[0]
    return lines[0]


@contextmanager
def port_in_use() -> Iterator[int]:
    """A port something really listens on, for as long as the block runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
