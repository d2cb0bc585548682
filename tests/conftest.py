"""Shared fixtures: the repository root, the real OpenShift corpus, a spec builder, and git
kept to itself with a remote holding a human's spec (for the tests of cvsync's clones)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gitrepo import Remote, isolate_git

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CVSYNC_CORPUS", REPO_ROOT.parent / "shared" / "corpus"))


def corpus_path(*parts: str) -> Path:
    """A path inside ../shared/corpus; skips the calling test when the corpus is absent."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"the OpenShift corpus is not present at {CORPUS}; point CVSYNC_CORPUS at it "
            "(README: running the conformance tests)"
        )
    return path


@pytest.fixture
def corpus() -> Path:
    return corpus_path()


# Insights archives strip TypeMeta from this one corpus object (SOURCES.md says so).
NO_TYPE_META = "4.7.16-idle-upgradeable-false-no-typemeta.yaml"
CORPUS_CLUSTER_VERSIONS = sorted((CORPUS / "clusterversions").glob("*.yaml"))


def corpus_bytes(name: str) -> bytes:
    """A corpus ClusterVersion's bytes, with the TypeMeta the API server always returns."""
    data = corpus_path("clusterversions", name).read_bytes()
    if name == NO_TYPE_META:
        data = b"apiVersion: config.openshift.io/v1\nkind: ClusterVersion\n" + data
    return data


@pytest.fixture
def git_without_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither the tests nor the clones under test may see the machine's git config or
    identity (use with `pytestmark = pytest.mark.usefixtures("git_without_identity")`)."""
    isolate_git(tmp_path / "home", monkeypatch, identity=None)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    """A bare remote whose main holds one human commit: clusters/x/clusterversion.yaml."""
    upstream = Remote(tmp_path / "upstream")
    upstream.commit({"clusters/x/clusterversion.yaml": "spec: 1\n"}, "human: initial spec")
    return upstream
