"""Parsing keeps every field's position and refuses hostile input with located findings."""

from __future__ import annotations

import json

import pytest
from conftest import corpus_path
from spec_text import HEADER

from agent.spec import parse as parse_module
from agent.spec.parse import MAX_FILE_BYTES, parse_file, parse_text


def _rules(text: str) -> list[tuple[str, int, int]]:
    parsed = parse_text(text, "f.yaml")
    return [(f.rule, f.location.line, f.location.column) for f in parsed.findings]


def test_every_key_and_value_keeps_its_one_based_line_and_column() -> None:
    text = HEADER + "  overrides:\n  - kind: Deployment\n    name: x\n"
    [doc] = parse_text(text, "f.yaml").documents
    assert doc.positions.key(("spec", "clusterID")).line == 6
    assert doc.positions.value(("spec", "clusterID")).column == 14
    assert str(doc.at_key(("spec", "overrides", 0, "name"))) == "f.yaml:9:5"
    assert str(doc.at_value(("spec", "overrides", 0))) == "f.yaml:8:5"
    assert doc.body["spec"]["overrides"] == [{"kind": "Deployment", "name": "x"}]


def test_a_missing_path_falls_back_to_its_nearest_parent() -> None:
    [doc] = parse_text(HEADER, "f.yaml").documents
    assert str(doc.at_key(("spec", "desiredUpdate", "version"))) == "f.yaml:5:1"


def test_values_are_plain_python_types() -> None:
    text = HEADER + "  desiredUpdate:\n    force: true\n    version: 4.16.3\n"
    [doc] = parse_text(text, "f.yaml").documents
    update = doc.body["spec"]["desiredUpdate"]
    assert type(update["force"]) is bool
    assert type(update["version"]) is str
    assert type(doc.body["spec"]) is dict


def test_a_multi_document_file_yields_each_document_with_its_index() -> None:
    other = HEADER.replace("5e65da93", "6e65da93")
    parsed = parse_text(HEADER + "---\n" + other, "f.yaml")
    assert [d.index for d in parsed.documents] == [0, 1]
    assert parsed.documents[1].positions.key(("spec", "clusterID")).line == 13


def test_empty_documents_between_separators_are_skipped() -> None:
    parsed = parse_text("---\n---\n" + HEADER + "---\n", "f.yaml")
    assert len(parsed.documents) == 1
    assert parsed.findings == ()


def test_json_files_parse_with_positions() -> None:
    body = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {"clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e"},
    }
    [doc] = parse_text(json.dumps(body, indent=2), "cv.json").documents
    assert doc.body == body
    assert str(doc.at_value(("spec", "clusterID"))) == "cv.json:8:18"


def test_a_kind_list_wrapper_yields_its_cluster_versions_with_absolute_positions() -> None:
    item = "".join(f"  {line}\n" if line else "\n" for line in HEADER.splitlines())
    text = (
        "apiVersion: v1\nkind: List\nitems:\n- "
        + item.lstrip()
        + "metadata:\n  resourceVersion: ''\n"
    )
    parsed = parse_text(text, "list.yaml")
    [doc] = parsed.documents
    assert (doc.index, doc.item, doc.label) == (0, 0, "document 1, item 1")
    assert str(doc.at_value(("spec", "clusterID"))) == "list.yaml:9:16"


def test_a_list_item_of_another_kind_is_named_by_document_and_item() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
    assert _rules(text) == [("document-other-kind", 4, 3)]
    assert "document 1, item 1 is a ConfigMap" in parse_text(text, "f").findings[0].message


def test_a_document_of_another_kind_names_the_file_and_document_index() -> None:
    text = HEADER + "---\napiVersion: v1\nkind: ConfigMap\n"
    parsed = parse_text(text, "mixed.yaml")
    assert len(parsed.documents) == 1
    [finding] = parsed.findings
    assert (finding.rule, str(finding.location)) == ("document-other-kind", "mixed.yaml:9:7")
    assert "document 2 is a ConfigMap (v1)" in finding.message


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert _rules("- a\n- b\n") == [("document-not-mapping", 1, 1)]


def test_unquoted_and_quoted_timestamps_stay_text_exactly_as_written() -> None:
    text = HEADER.replace(
        "  name: version\n",
        "  name: version\n  annotations:\n    a: 2024-08-01T08:27:45Z\n    b: '2024-08-01'\n",
    )
    [doc] = parse_text(text, "f.yaml").documents
    assert doc.body["metadata"]["annotations"] == {"a": "2024-08-01T08:27:45Z", "b": "2024-08-01"}


def test_duplicate_keys_are_refused_with_both_positions() -> None:
    text = HEADER + "  channel: stable-4.15\n  channel: stable-4.16\n"
    parsed = parse_text(text, "f.yaml")
    assert parsed.documents == ()
    [finding] = parsed.findings
    assert (finding.rule, str(finding.location)) == ("yaml-duplicate-key", "f.yaml:8:3")
    assert "line 7, column 3" in finding.message


def test_files_over_one_mebibyte_are_refused_unread() -> None:
    data = b"# " + b"x" * MAX_FILE_BYTES + b"\n"
    [finding] = parse_file(data, "big.yaml").findings
    assert (finding.rule, str(finding.location)) == ("file-too-large", "big.yaml:1:1")


def test_non_utf8_bytes_are_located() -> None:
    data = HEADER.encode() + b"  channel: stable-\xe94.16\n"
    [finding] = parse_file(data, "latin1.yaml").findings
    assert (finding.rule, str(finding.location)) == ("file-not-utf8", "latin1.yaml:7:19")


def test_a_utf8_byte_order_mark_is_accepted() -> None:
    parsed = parse_file(b"\xef\xbb\xbf" + HEADER.encode(), "bom.yaml")
    assert len(parsed.documents) == 1
    assert parsed.findings == ()


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for n in range(1, 10):
        levels.append(f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]")
    assert _rules("\n".join(levels) + "\n") == [("yaml-alias-expansion", 1, 1)]


def test_a_small_alias_is_expanded_normally() -> None:
    text = HEADER + "  channel: &c stable-4.16\nmetadata2: *c\n"
    [doc] = parse_text(text, "f.yaml").documents
    assert doc.body["metadata2"] == "stable-4.16"


def test_a_recursive_alias_is_refused() -> None:
    assert _rules("a: &a [1, *a]\n") == [("yaml-alias-expansion", 1, 11)]


def test_hostile_nesting_is_refused_without_a_crash() -> None:
    # libyaml's composer recurses in C; cvsync reads events with its own stack instead.
    assert _rules("[" * 200_000 + "]" * 200_000) == [("yaml-syntax", 1, 65)]
    assert _rules("- " * 200_000 + "x\n")[0][0] == "yaml-syntax"


def test_merge_keys_are_refused_with_advice() -> None:
    assert _rules("base: &b {a: 1}\nother:\n  <<: *b\n") == [("yaml-unsupported", 3, 3)]


def test_custom_tags_are_refused() -> None:
    assert _rules("a: !vault secret\n") == [("yaml-unsupported", 1, 4)]


def test_a_syntax_error_is_located() -> None:
    assert _rules(HEADER + "  channel: [stable\n") == [("yaml-syntax", 8, 1)]


def test_a_syntax_error_keeps_the_documents_before_it() -> None:
    parsed = parse_text(HEADER + "---\na: [\n", "f.yaml")
    assert len(parsed.documents) == 1
    assert [f.rule for f in parsed.findings] == ["yaml-syntax"]


@pytest.mark.corpus
def test_the_list_wrapped_corpus_object_parses_as_one_item() -> None:
    path = corpus_path(
        "clusterversions", "4.16.0-ec.3-failing-mco-degraded-74-history-oc-get-list.yaml"
    )
    parsed = parse_file(path.read_bytes(), path.name)
    [doc] = parsed.documents
    assert (doc.index, doc.item) == (0, 0)
    assert doc.body["spec"]["clusterID"] == "f56f7197-9910-4e94-ac77-c25c125751f2"
    assert doc.at_value(("spec", "clusterID")).line > 1


def test_the_pure_python_parser_gives_the_same_documents_and_findings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [
        HEADER + "  overrides:\n  - kind: Deployment\n    name: x\n",
        HEADER + "---\napiVersion: v1\nkind: ConfigMap\n",
        HEADER + "  channel: a\n  channel: b\n",
        "a: &a [1, *a]\n",
        "[" * 100 + "]" * 100,
        HEADER + "  channel: [stable\n",
    ]
    with_libyaml = [parse_text(text, "f.yaml") for text in texts]
    monkeypatch.setattr(parse_module, "_LibyamlParser", None)
    pure = [parse_text(text, "f.yaml") for text in texts]
    for fast, slow in zip(with_libyaml, pure, strict=True):
        assert [d.body for d in fast.documents] == [d.body for d in slow.documents]
        assert [d.positions for d in fast.documents] == [d.positions for d in slow.documents]
        assert [(f.rule, f.location) for f in fast.findings] == [
            (f.rule, f.location) for f in slow.findings
        ]


# kubectl refuses such a file: "no objects passed to apply" (kubernetes/kubectl
# pkg/cmd/apply/apply.go, when the builder yields no object and no error).
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no YAML document"),
        ("# nothing here\n", "no YAML document"),
        ("---\n", "document 1 is empty"),
        ("--- \n---\n", "document 2 is empty"),
        ("null\n", "document 1 is empty"),
        ("~\n", "document 1 is empty"),
        ("apiVersion: v1\nkind: List\nitems: []\n", "document 1 is a List with no items"),
        (
            "---\nnull\n---\napiVersion: v1\nkind: List\nitems: []\n",
            "document 1 is empty (---, null or ~); document 2 is a List with no items",
        ),
    ],
    ids=["zero-bytes", "comment", "separator", "separators", "null", "tilde", "list", "mixed"],
)
def test_a_file_holding_no_cluster_version_is_an_error_naming_it(text: str, reason: str) -> None:
    parsed = parse_text(text, "clusters/east/clusterversion.yaml")
    [finding] = parsed.findings
    assert (finding.rule, finding.severity.value) == ("file-empty", "error")
    assert str(finding.location) == "clusters/east/clusterversion.yaml:1:1"
    assert "holds no ClusterVersion" in finding.message
    assert reason in finding.message


def test_empty_documents_next_to_a_cluster_version_are_fine() -> None:
    parsed = parse_text(
        "null\n---\n" + HEADER + "---\napiVersion: v1\nkind: List\nitems: []\n", "f"
    )
    assert (len(parsed.documents), parsed.findings) == (1, ())


def test_other_findings_explain_a_file_without_a_cluster_version_on_their_own() -> None:
    assert _rules("apiVersion: v1\nkind: ConfigMap\n") == [("document-other-kind", 2, 7)]


# go-yaml v2's resolve.go (what kubectl and oc read YAML with, through sigs.k8s.io/yaml):
# the type it gives each plain scalar, where YAML 1.2's core schema reads text.
@pytest.mark.parametrize(
    ("token", "kubectl_type"),
    [
        ("y", "boolean"), ("Y", "boolean"), ("yes", "boolean"), ("Yes", "boolean"),
        ("YES", "boolean"), ("n", "boolean"), ("N", "boolean"), ("no", "boolean"),
        ("No", "boolean"), ("NO", "boolean"), ("on", "boolean"), ("On", "boolean"),
        ("ON", "boolean"), ("off", "boolean"), ("Off", "boolean"), ("OFF", "boolean"),
        ("1_000", "integer"), ("0b101", "integer"), ("-0b1", "integer"), ("0X1F", "integer"),
        ("0O17", "integer"), ("+0x1F", "integer"), ("1_8446744073709551615", "integer"),
        ("1_0.5", "number"), ("1_8446744073709551616", "number"), ("+1_0e2", "number"),
        # Text for both readers: not in the map, not numbers (or out of float64's range).
        ("yEs", None), ("oN", None), ("0x", None), ("1_0e999", None), ("+", None), ("._5", None),
        ("2024-05-01", None), ("0XFFFFFFFFFFFFFFFFF", None), ("on-call", None), ("0.0.0.0", None),
    ],
)  # fmt: skip
def test_plain_scalars_record_how_kubectl_reads_them(token: str, kubectl_type: str | None) -> None:
    [doc] = parse_text(HEADER + f"  channel: {token}\n", "f.yaml").documents
    assert doc.body["spec"]["channel"] == token
    assert doc.yaml11_types.get(("spec", "channel")) == kubectl_type
