"""The fleet check: one ClusterVersion per cluster directory, one cluster per clusterID."""

from __future__ import annotations

from spec_text import HEADER

from agent.report.check import check_files


def _rules(files: dict[str, str]) -> list[tuple[str, str]]:
    report = check_files((path, text.encode()) for path, text in files.items())
    return [(f.rule, str(f.location)) for f in report.findings]


def test_distinct_clusters_in_distinct_directories_pass() -> None:
    other = HEADER.replace("5e65da93", "6e65da93")
    assert _rules({"clusters/a/cv.yaml": HEADER, "clusters/b/cv.yaml": other}) == []


def test_two_files_with_one_cluster_id_are_an_error_at_the_second() -> None:
    found = _rules({"clusters/a/cv.yaml": HEADER, "clusters/b/cv.yaml": HEADER})
    assert found == [("fleet-duplicate-cluster-id", "clusters/b/cv.yaml:6:14")]


def test_cluster_ids_compare_without_regard_to_case() -> None:
    upper = HEADER.replace(
        "5e65da93-4167-4f1e-9571-f99963cda23e", "5E65DA93-4167-4F1E-9571-F99963CDA23E"
    )
    found = _rules({"clusters/a/cv.yaml": HEADER, "clusters/b/cv.yaml": upper})
    assert [rule for rule, _ in found] == ["fleet-duplicate-cluster-id"]


def test_two_cluster_versions_in_one_directory_are_an_error() -> None:
    other = HEADER.replace("5e65da93", "6e65da93")
    found = _rules({"clusters/a/one.yaml": HEADER, "clusters/a/two.yaml": other})
    assert found == [("fleet-duplicate-cluster", "clusters/a/two.yaml:1:1")]


def test_two_documents_in_one_file_are_two_cluster_versions_for_one_directory() -> None:
    other = HEADER.replace("5e65da93", "6e65da93")
    found = _rules({"clusters/a/cv.yaml": HEADER + "---\n" + other})
    assert found == [("fleet-duplicate-cluster", "clusters/a/cv.yaml:8:1")]
