"""Every spec captured from a real cluster validates with zero errors.

Status and server-owned metadata are set aside exactly as cvsync does for desired specs
(warnings only); the files are read from ../shared/corpus and never copied here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CORPUS_CLUSTER_VERSIONS, NO_TYPE_META, corpus_bytes, corpus_path

from agent.model.findings import Severity
from agent.spec.parse import parse_file, parse_text
from agent.spec.validate import validate_document

CLUSTER_VERSIONS = CORPUS_CLUSTER_VERSIONS


@pytest.mark.corpus
def test_the_corpus_is_present() -> None:
    corpus_path("clusterversions")
    assert len(CLUSTER_VERSIONS) >= 20


@pytest.mark.corpus
@pytest.mark.parametrize("path", CLUSTER_VERSIONS, ids=lambda path: Path(path).name)
def test_a_real_cluster_spec_validates_without_errors(path: Path) -> None:
    parsed = parse_file(corpus_bytes(path.name), path.name)
    assert parsed.findings == ()
    [doc] = parsed.documents
    errors = [f for f in validate_document(doc) if f.severity is Severity.ERROR]
    assert errors == []


@pytest.mark.corpus
def test_the_corpus_file_without_type_meta_is_refused_as_it_stands() -> None:
    path = corpus_path("clusterversions", NO_TYPE_META)
    parsed = parse_text(path.read_text(), path.name)
    assert [f.rule for f in parsed.findings] == ["document-other-kind"]
