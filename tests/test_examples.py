"""Each example's stored `cvsync validate` output is exactly what cvsync prints today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

EXAMPLES = sorted(
    path.parent.relative_to(REPO_ROOT).as_posix()
    for path in (REPO_ROOT / "examples").rglob("expected-validate.txt")
)


def test_every_named_example_is_present() -> None:
    names = {Path(example).name for example in EXAMPLES}
    assert {"01-minimal", "02-version-upgrade", "03-overrides", "04-multi-arch"} <= names
    assert sum(example.startswith("examples/bad/") for example in EXAMPLES) >= 6


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_example_validates_exactly_as_recorded(example: str) -> None:
    expected = (REPO_ROOT / example / "expected-validate.txt").read_text()
    run = subprocess.run(
        [sys.executable, "-m", "agent", "validate", example],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.stdout == expected
    assert run.stderr == ""
    assert run.returncode == (1 if example.startswith("examples/bad/") else 0)
