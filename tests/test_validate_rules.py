"""Every validation rule, fed good and bad specs, with the exact rule id, line and column."""

from __future__ import annotations

import pytest
from spec_text import HEADER, findings, located, spec

from agent.model.findings import Severity


def test_a_minimal_spec_has_no_findings() -> None:
    assert located(spec()) == []


def test_a_full_valid_spec_has_no_findings() -> None:
    text = spec(
        "  channel: stable-4.16\n"
        "  upstream: https://api.openshift.com/api/upgrades_info/v1/graph\n"
        "  desiredUpdate:\n"
        "    version: 4.16.3\n"
        "  capabilities:\n"
        "    baselineCapabilitySet: vCurrent\n"
        "    additionalEnabledCapabilities: [baremetal, MachineAPI]\n"
    )
    assert located(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEADER.replace("config.openshift.io/v1", "config.openshift.io/v2"),
            ("api-version", 1, 13),
        ),
        (HEADER.replace("apiVersion: config.openshift.io/v1\n", ""), ("api-version", 1, 1)),
        (HEADER.replace("name: version", "name: prod"), ("metadata-name", 4, 9)),
        (HEADER.replace("metadata:\n  name: version\n", ""), ("metadata-name", 1, 1)),
    ],
    ids=["wrong-api-version", "missing-api-version", "wrong-name", "missing-metadata"],
)
def test_type_meta_and_name_are_checked(text: str, expected: tuple[str, int, int]) -> None:
    assert located(text) == [expected]


def test_an_unknown_spec_field_is_an_error_with_the_closest_name() -> None:
    [finding] = findings(spec("  chanel: stable-4.16\n"))
    assert (finding.rule, finding.location.line, finding.location.column) == ("unknown-field", 7, 3)
    assert finding.severity is Severity.ERROR
    assert '"channel"' in finding.hint
    assert finding.field == ".spec.chanel"


def test_unknown_fields_are_found_at_every_depth() -> None:
    text = spec(
        "  desiredUpdate:\n"
        "    version: 4.16.3\n"
        "    forse: true\n"
        "  overrides:\n"
        "  - group: apps\n"
        "    kind: Deployment\n"
        "    name: x\n"
        "    namespace: y\n"
        "    unmanaged: true\n"
        "    unmanged: false\n"
        "  capabilities:\n"
        "    baselineCapabilitySet: vCurrent\n"
        "    additionalCapabilities: []\n"
    )
    found = [f for f in findings(text) if f.rule == "unknown-field"]
    assert [(f.field, f.location.line, f.location.column) for f in found] == [
        (".spec.desiredUpdate.forse", 9, 5),
        (".spec.overrides[0].unmanged", 16, 5),
        (".spec.capabilities.additionalCapabilities", 19, 5),
    ]
    assert ['"force"' in found[0].hint, '"unmanaged"' in found[1].hint] == [True, True]
    assert '"additionalEnabledCapabilities"' in found[2].hint


def test_a_misspelled_top_level_key_suggests_the_real_one() -> None:
    text = HEADER.replace("spec:", "spce:")
    rules = located(text)
    assert ("unknown-field", 5, 1) in rules
    assert ("required-field", 1, 1) in rules


def test_a_case_mistake_suggests_the_exact_field() -> None:
    text = HEADER.replace("clusterID", "clusterId")
    found = findings(text)
    assert [(f.rule, f.location.line, f.location.column) for f in found] == [
        ("required-field", 5, 1),
        ("unknown-field", 6, 3),
    ]
    assert '"clusterID"' in found[1].hint


def test_status_and_server_metadata_are_ignored_with_warnings() -> None:
    text = (
        "apiVersion: config.openshift.io/v1\n"
        "kind: ClusterVersion\n"
        "metadata:\n"
        "  name: version\n"
        "  resourceVersion: '123'\n"
        "  uid: 0d9b8b3c-4c4e-4bd4-8b1a-1c2f0c7f6a11\n"
        "  labels: {team: platform}\n"
        "spec:\n"
        "  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e\n"
        "status:\n"
        "  anything: goes\n"
    )
    found = findings(text)
    assert [(f.rule, f.severity, f.location.line) for f in found] == [
        ("metadata-server-owned", Severity.WARNING, 5),
        ("metadata-server-owned", Severity.WARNING, 6),
        ("status-ignored", Severity.WARNING, 10),
    ]


def test_labels_must_map_to_strings() -> None:
    text = HEADER.replace("  name: version\n", "  name: version\n  labels:\n    tier: 1\n")
    assert located(text) == [("field-type", 6, 11)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e\n", []),
        ("  clusterID: not-a-uuid\n", [("cluster-id-format", 6, 14)]),
        ("  clusterID: 5e65da93-4167-4f1e-9571\n", [("cluster-id-format", 6, 14)]),
        ("  clusterID: 5e65da93-4167-4f1e-1571-f99963cda23e\n", [("cluster-id-format", 6, 14)]),
        ("  clusterID: 5e65da93-4167-1f1e-9571-f99963cda23e\n", [("cluster-id-version", 6, 14)]),
        ("  clusterID: 5E65DA93-4167-4F1E-9571-F99963CDA23E\n", []),
        ("  clusterID: 1234\n", [("field-type", 6, 14)]),
        ("  clusterID:\n", [("null-value", 6, 13), ("required-field", 5, 1)]),
        ("  channel: stable-4.16\n", [("required-field", 5, 1)]),
    ],
    ids=[
        "valid-v4",
        "not-a-uuid",
        "too-short",
        "wrong-variant",
        "version-1",
        "uppercase",
        "a-number",
        "null",
        "missing",
    ],
)
def test_cluster_id_is_a_required_rfc4122_uuid(
    line: str, expected: list[tuple[str, int, int]]
) -> None:
    text = HEADER.replace("  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e\n", line)
    assert sorted(located(text)) == sorted(expected)


@pytest.mark.parametrize(
    "channel",
    ["stable-4.15", "fast-4.15", "candidate-4.15", "eus-4.14", "stable-scos-4", "stable-4"],
)
def test_known_channel_forms_pass(channel: str) -> None:
    assert located(spec(f"  channel: {channel}\n")) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("test", [("channel-form", 7, 12)]),
        ("'stable 4.15'", [("channel-form", 7, 12)]),
        ('""', [("channel-form", 7, 12)]),
        ("4.15", [("field-type", 7, 12)]),
    ],
)
def test_unusual_channels_warn_and_numbers_are_type_errors(
    value: str, expected: list[object]
) -> None:
    found = findings(spec(f"  channel: {value}\n"))
    assert [(f.rule, f.location.line, f.location.column) for f in found] == expected
    if expected[0] == ("channel-form", 7, 12):
        assert found[0].severity is Severity.WARNING
    else:
        assert "quotes" in found[0].hint


@pytest.mark.parametrize(
    ("value", "rule", "severity"),
    [
        ("https://api.openshift.com/api/upgrades_info/v1/graph", None, None),
        ("http://updates.example.com/graph", "upstream-not-https", Severity.WARNING),
        ("updates.example.com/graph", "upstream-url", Severity.ERROR),
        ("https://", "upstream-url", Severity.ERROR),
        ("'https://exa mple.com'", "upstream-url", Severity.ERROR),
    ],
)
def test_upstream_is_an_absolute_url(
    value: str, rule: str | None, severity: Severity | None
) -> None:
    found = findings(spec(f"  upstream: {value}\n"))
    if rule is None:
        assert found == []
    else:
        assert [(f.rule, f.severity, f.location.line, f.location.column) for f in found] == [
            (rule, severity, 7, 13)
        ]


DIGEST_IMAGE = (
    "quay.io/openshift-release-dev/ocp-release@sha256:"
    "05ba8e63f8a76e568afe87f182334504a01d47342b6ad5b4c3ff83a2463018bd"
)


def _desired(fields: dict[str, str]) -> str:
    lines = "".join(f"    {key}: {value}\n" for key, value in fields.items())
    return spec("  desiredUpdate:\n" + (lines or "    force: false\n"))


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # The eight cases of the API reference: image, version, architecture set or not.
        (
            {"image": DIGEST_IMAGE, "version": "4.16.3", "architecture": "Multi"},
            ["desired-update-image-and-architecture"],
        ),
        ({"image": DIGEST_IMAGE, "version": "4.16.3"}, ["desired-update-version-ignored"]),
        (
            {"image": DIGEST_IMAGE, "architecture": "Multi"},
            ["desired-update-image-and-architecture"],
        ),
        ({"image": DIGEST_IMAGE}, []),
        ({"version": "4.16.3", "architecture": "Multi"}, []),
        ({"version": "4.16.3"}, []),
        ({"architecture": "Multi"}, ["desired-update-architecture-needs-version"]),
        ({}, ["desired-update-empty"]),
        # "" is not "specified", exactly as the CRD's CEL rules judge it.
        ({"image": DIGEST_IMAGE, "architecture": '""'}, []),
        ({"image": '""', "version": "4.18.0-ec.3", "architecture": "Multi"}, []),
        ({"architecture": "Multi", "version": '""'}, ["desired-update-architecture-needs-version"]),
        ({"image": '""', "version": '""'}, ["desired-update-empty"]),
    ],
    ids=[
        "1-all-three",
        "2-image-and-version",
        "3-image-and-architecture",
        "4-image-only",
        "5-version-and-architecture",
        "6-version-only",
        "7-architecture-only",
        "8-nothing",
        "image-with-empty-architecture",
        "empty-image-with-multi",
        "multi-with-empty-version",
        "all-empty",
    ],
)
def test_the_eight_desired_update_cases(fields: dict[str, str], expected: list[str]) -> None:
    found = findings(_desired(fields))
    assert [f.rule for f in found] == expected
    for finding in found:
        assert (finding.location.line, finding.location.column) == (7, 3)
    severities = {f.rule: f.severity for f in found}
    if "desired-update-version-ignored" in severities:
        assert severities["desired-update-version-ignored"] is Severity.WARNING


@pytest.mark.parametrize(
    "version",
    ["4.15.0-ec.2", "4.16.0-0.nightly-2024-08-01-082745", "4.19.0-okd-scos.16", "4.16.3"],
)
def test_real_release_versions_are_semantic_versions(version: str) -> None:
    assert located(_desired({"version": version})) == []


@pytest.mark.parametrize("version", ["'4.16'", "v4.16.3", "4.16.03", "4.16.3-", "latest"])
def test_other_versions_are_rejected(version: str) -> None:
    assert located(_desired({"version": version})) == [("version-semver", 8, 14)]


def test_an_unquoted_minor_version_is_a_number_and_says_to_quote_it() -> None:
    [finding] = findings(_desired({"version": "4.16"}))
    assert (finding.rule, finding.location.line, finding.location.column) == ("field-type", 8, 14)
    assert "quotes" in finding.hint


def test_architecture_is_multi_or_empty() -> None:
    text = _desired({"version": "4.16.3", "architecture": "amd64"})
    assert located(text) == [("architecture-value", 9, 19)]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (DIGEST_IMAGE, []),
        ("quay.io/openshift-release-dev/ocp-release:4.16.3-x86_64", [("image-not-digest", 8, 12)]),
        ("localhost:5000/ocp/release@sha256:" + "a" * 64, []),
        ("Quay.io/UPPER/Case:tag", [("image-reference", 8, 12)]),
        ("quay.io/ocp release:4.16", [("image-reference", 8, 12)]),
        ("quay.io/ocp/release@sha256:short", [("image-reference", 8, 12)]),
    ],
    ids=["digest", "tag", "registry-port", "uppercase-path", "space", "bad-digest"],
)
def test_images_are_pull_specs_pinned_by_digest(
    image: str, expected: list[tuple[str, int, int]]
) -> None:
    assert located(_desired({"image": f"'{image}'"})) == expected


def test_force_warns_about_what_it_skips() -> None:
    [finding] = findings(_desired({"version": "4.16.3", "force": "true"}))
    assert (finding.rule, finding.severity, finding.location.line) == (
        "force-enabled",
        Severity.WARNING,
        9,
    )
    assert "signature verification" in finding.message


def test_force_must_be_a_boolean() -> None:
    [finding] = findings(_desired({"version": "4.16.3", "force": "yes"}))
    assert (finding.rule, finding.location.line, finding.location.column) == ("field-type", 9, 12)
    assert "true or false" in finding.hint


OVERRIDE = (
    "  - kind: Deployment\n"
    "    group: apps\n"
    "    namespace: openshift-monitoring\n"
    "    name: cluster-monitoring-operator\n"
    "    unmanaged: true\n"
)


def test_overrides_warn_that_they_block_minor_upgrades() -> None:
    [finding] = findings(spec("  overrides:\n" + OVERRIDE))
    assert (finding.rule, finding.severity, finding.location.line, finding.location.column) == (
        "overrides-block-upgrades",
        Severity.WARNING,
        7,
        3,
    )
    assert "ClusterVersionOverridesSet" in finding.message


def test_overrides_sharing_a_key_are_an_error_at_the_second_entry() -> None:
    found = findings(spec("  overrides:\n" + OVERRIDE + OVERRIDE.replace("true", "false")))
    duplicate = [f for f in found if f.rule == "override-duplicate"]
    assert [(f.location.line, f.location.column) for f in duplicate] == [(13, 5)]
    assert "line 8" in duplicate[0].message


def test_overrides_differing_in_one_key_are_distinct() -> None:
    second = OVERRIDE.replace("openshift-monitoring", "openshift-other")
    found = findings(spec("  overrides:\n" + OVERRIDE + second))
    assert [f.rule for f in found] == ["overrides-block-upgrades"]


def test_override_fields_are_required_and_typed() -> None:
    text = spec(
        "  overrides:\n  - kind: Deployment\n    group: apps\n    name: x\n    unmanaged: 'no'\n"
    )
    assert located(text) == [
        ("overrides-block-upgrades", 7, 3),
        ("required-field", 8, 5),
        ("field-type", 11, 16),
    ]


@pytest.mark.parametrize(
    ("caps", "expected"),
    [
        ("    baselineCapabilitySet: v4.18\n", []),
        ("    baselineCapabilitySet: v4.99\n", [("capability-baseline", 8, 28)]),
        ("    baselineCapabilitySet: vcurrent\n", [("capability-baseline", 8, 28)]),
        (
            "    baselineCapabilitySet: None\n    additionalEnabledCapabilities: [Consol]\n",
            [("capability-unknown", 9, 37)],
        ),
        (
            "    baselineCapabilitySet: None\n    additionalEnabledCapabilities: [marketplace]\n",
            [("capability-requires", 9, 37)],
        ),
        (
            "    baselineCapabilitySet: None\n"
            "    additionalEnabledCapabilities: [marketplace, OperatorLifecycleManager]\n",
            [],
        ),
        ("    additionalEnabledCapabilities: [marketplace]\n", [("capability-requires", 8, 37)]),
        (
            "    baselineCapabilitySet: v4.11\n    additionalEnabledCapabilities: [marketplace]\n",
            [],
        ),
        (
            "    additionalEnabledCapabilities: [marketplace, OperatorLifecycleManager]\n",
            [("capability-requires", 8, 37)],
        ),
        ("    additionalEnabledCapabilities: [baremetal]\n", []),
    ],
    ids=[
        "known-baseline",
        "unknown-baseline",
        "baseline-case",
        "unknown-capability",
        "marketplace-without-olm",
        "marketplace-with-olm",
        "marketplace-without-baseline",
        "marketplace-with-v4.11",
        "marketplace-and-olm-without-baseline",
        "other-capability-without-baseline",
    ],
)
def test_capabilities_follow_the_crd(caps: str, expected: list[tuple[str, int, int]]) -> None:
    found = findings(spec("  capabilities:\n" + caps))
    assert [(f.rule, f.location.line, f.location.column) for f in found] == expected
    if found and found[0].rule == "capability-baseline" and "vcurrent" in caps:
        assert '"vCurrent"' in found[0].hint
    if found and found[0].rule == "capability-unknown":
        assert '"Console"' in found[0].hint


def test_a_null_field_warns_that_the_server_drops_it() -> None:
    [finding] = findings(spec("  desiredUpdate:\n"))
    assert (finding.rule, finding.severity, finding.location.line) == (
        "null-value",
        Severity.WARNING,
        7,
    )


def test_a_spec_that_is_not_a_mapping_is_a_type_error() -> None:
    text = HEADER.replace(
        "spec:\n  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e\n", "spec: [1]\n"
    )
    assert located(text) == [("field-type", 5, 7)]


# --- What a real server and kubectl do with the same file --------------------------------
# The API server drops a null object field but rejects a null list item: the sandbox's own
# test_a_null_inside_a_list_is_a_type_error records the server's refusal.
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  overrides: [null]\n", [("overrides-block-upgrades", 7, 3), ("null-list-item", 7, 15)]),
        (
            "  capabilities:\n"
            "    baselineCapabilitySet: vCurrent\n"
            "    additionalEnabledCapabilities: [null]\n",
            [("null-list-item", 9, 37)],
        ),
        (
            "  capabilities:\n"
            "    baselineCapabilitySet: vCurrent\n"
            "    additionalEnabledCapabilities: [baremetal, ~]\n",
            [("null-list-item", 9, 48)],
        ),
        (
            "  capabilities:\n"
            "    baselineCapabilitySet: vCurrent\n"
            "    additionalEnabledCapabilities:\n"
            "    - baremetal\n"
            "    -\n",
            [("null-list-item", 11, 6)],
        ),
    ],
    ids=["overrides", "capabilities", "tilde-item", "empty-dash"],
)
def test_a_null_list_item_is_an_error_because_the_api_server_rejects_it(
    body: str, expected: list[tuple[str, int, int]]
) -> None:
    found = findings(spec(body))
    assert [(f.rule, f.location.line, f.location.column) for f in found] == expected
    item = next(f for f in found if f.rule == "null-list-item")
    assert item.severity is Severity.ERROR
    assert "rejects" in item.message


def test_a_null_object_field_is_still_only_a_warning_since_the_server_drops_it() -> None:
    # Both YAML readings agree (`~` is null in YAML 1.1 and 1.2) and the server prunes it.
    [finding] = findings(spec("  channel: ~\n"))
    assert (finding.rule, finding.severity) == ("null-value", Severity.WARNING)


# go-yaml v2's resolver (resolve.go, which kubectl and oc use through sigs.k8s.io/yaml) reads
# these plain scalars as booleans or numbers; the YAML 1.2 core schema reads them as text.
YAML11_NON_TEXT = [
    "on", "off", "On", "OFF", "yes", "no", "Yes", "NO", "y", "n", "Y", "N",
    "1_000", "0b101", "0B101", "0X1F", "0O17", "+0x1F", "-0o7", "1_0.5", "0_777",
]  # fmt: skip


@pytest.mark.parametrize("token", YAML11_NON_TEXT)
def test_a_plain_value_kubectl_reads_as_a_boolean_or_number_must_be_quoted(token: str) -> None:
    [finding] = findings(spec(f"  channel: {token}\n"))
    assert (finding.rule, finding.location.line, finding.location.column) == (
        "yaml-ambiguous-value",
        7,
        12,
    )
    assert finding.severity is Severity.ERROR
    assert "kubectl" in finding.message
    assert f"'{token}'" in finding.hint or f'"{token}"' in finding.hint


@pytest.mark.parametrize(
    "body",
    [
        "  channel: stable-4.16\n  upstream: on\n",
        "  desiredUpdate:\n    version: 4.16.3\n    image: yes\n",
        "  capabilities:\n    baselineCapabilitySet: vCurrent\n"
        "    additionalEnabledCapabilities: [baremetal, on]\n",
        "  overrides:\n"
        "  - {kind: Deployment, group: apps, namespace: x, name: no, unmanaged: true}\n",
    ],
    ids=["upstream", "image", "capability", "override-name"],
)
def test_every_string_field_refuses_a_value_kubectl_reads_otherwise(body: str) -> None:
    found = [f for f in findings(spec(body)) if f.severity is Severity.ERROR]
    assert [f.rule for f in found] == ["yaml-ambiguous-value"]


def test_a_yaml_1_1_directive_does_not_change_the_verdict() -> None:
    text = "%YAML 1.1\n---\n" + spec("  channel: on\n")
    assert [f.rule for f in findings(text)] == ["yaml-ambiguous-value"]


def test_a_label_value_kubectl_reads_as_a_boolean_must_be_quoted() -> None:
    text = HEADER.replace("  name: version\n", "  name: version\n  labels:\n    managed: yes\n")
    assert located(text) == [("yaml-ambiguous-value", 6, 14)]


@pytest.mark.parametrize(
    "token",
    ["stable-4.16", "'on'", '"yes"', "2024-05-01", "on-call", "0x", "1_0e999", "+", "0.0.0.0"],
)
def test_values_both_readers_take_as_text_pass(token: str) -> None:
    assert [f.rule for f in findings(spec(f"  channel: {token}\n"))] in ([], ["channel-form"])


@pytest.mark.parametrize("token", ["0777", "1e3", "4.16", "true", ".inf"])
def test_values_both_readers_take_as_numbers_or_booleans_stay_type_errors(token: str) -> None:
    [finding] = findings(spec(f"  channel: {token}\n"))
    assert (finding.rule, finding.severity) == ("field-type", Severity.ERROR)
    assert "quotes" in finding.hint


def test_a_boolean_field_written_yes_explains_that_kubectl_reads_it_as_true() -> None:
    [finding] = findings(_desired({"version": "4.16.3", "force": "yes"}))
    assert finding.rule == "field-type"
    assert "kubectl" in finding.hint
    assert "true" in finding.hint


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ('  desiredUpdate:\n    version: "4.15.13\\n"\n', ".spec.desiredUpdate.version", "newline"),
        (
            "  desiredUpdate:\n    version: |\n      4.15.13\n",
            ".spec.desiredUpdate.version",
            "newline",
        ),
        ('  channel: "stable-4.16 "\n', ".spec.channel", "space"),
        ('  channel: "\\tstable-4.16"\n', ".spec.channel", "tab"),
        ('  channel: "stable-\\u200b4.16"\n', ".spec.channel", "U+200B"),
        ('  channel: "stable-4.16\\e"\n', ".spec.channel", "U+001B"),
        ('  upstream: "https://api.openshift.com/graph\\r"\n', ".spec.upstream", "carriage return"),
        (
            f'  desiredUpdate:\n    image: "{DIGEST_IMAGE}\\n"\n',
            ".spec.desiredUpdate.image",
            "newline",
        ),
    ],
    ids=[
        "version-newline",
        "version-block-scalar",
        "channel-trailing-space",
        "channel-leading-tab",
        "channel-zero-width-space",
        "channel-escape",
        "upstream-carriage-return",
        "image-newline",
    ],
)
def test_control_characters_and_surrounding_whitespace_are_errors(
    body: str, field: str, problem: str
) -> None:
    [finding] = findings(spec(body))
    assert (finding.rule, finding.severity, finding.field) == (
        "value-invisible-characters",
        Severity.ERROR,
        field,
    )
    assert problem in finding.message


def test_a_cluster_id_ending_in_a_newline_is_an_error() -> None:
    text = HEADER.replace(
        "clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e",
        'clusterID: "5e65da93-4167-4f1e-9571-f99963cda23e\\n"',
    )
    assert located(text) == [("value-invisible-characters", 6, 14)]
