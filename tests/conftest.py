"""Shared fixtures: the repository root, the real OpenShift corpus, and a spec builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CVSYNC_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))


def corpus_path(*parts: str) -> Path:
    """A path inside ../shared/corpus; skips the calling test when the corpus is absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"the OpenShift corpus is not present at {CORPUS}")
    return path


@pytest.fixture
def corpus() -> Path:
    return corpus_path()
