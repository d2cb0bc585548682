"""Policy files: every field good and bad, with the exact rule id, line and column."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from agent.model.findings import Severity
from agent.model.policy import (
    AcceptedRisk,
    AllowForce,
    Blackout,
    DriftAction,
    DriftActions,
    MaintenanceWindow,
    Mode,
    Policy,
)
from agent.upgrade.decision import accepted_risk_names, gate_settings
from agent.upgrade.policy import parse_policy

TODAY = date(2025, 6, 1)
HEADER = "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n"
# HEADER holds lines 1-3; a test's spec body starts on line 4 with two spaces of indent.


def parse(body: str, header: str = HEADER) -> tuple[Policy | None, list[tuple[str, int, int]]]:
    policy, found = parse_policy((header + body).encode(), "policy.yaml", today=TODAY)
    return policy, [(f.rule, f.location.line, f.location.column) for f in found]


def test_an_empty_spec_gives_the_defaults() -> None:
    policy, found = parse("  {}\n")
    assert found == []
    assert policy == Policy()
    assert policy is not None
    assert not policy.allow_not_recommended
    assert policy.require_digest
    assert policy.allow_minor
    assert not policy.allow_major
    assert not policy.allow_retarget_while_progressing
    assert policy.mode is Mode.ENFORCE
    assert policy.drift == DriftActions(
        channel=DriftAction.CORRECT,
        upstream=DriftAction.CORRECT,
        capabilities=DriftAction.CORRECT,
        desired_update=DriftAction.CORRECT,
        overrides=DriftAction.REPORT,
    )


FULL = """\
  allowNotRecommended: true
  acceptedRisks:
  - name: AROBrokenDNSMasq
    reason: no ARO clusters here
    approvedBy: jane@example.com
    expires: 2025-07-01
  - name: PreRelease
    reason: lab cluster
    approvedBy: ops
    expires: 2025-06-01T18:00:00+02:00
  allowForce:
    until: 2025-06-03T12:00:00Z
    reason: signature store outage
  requireDigest: false
  allowMinor: false
  allowMajor: true
  allowRetargetWhileProgressing: true
  maintenanceWindows:
  - cron: "0 2 * * SAT,SUN"
    duration: 4h
    timeZone: Europe/Berlin
  - cron: "*/30 22-23 * * 1-5"
    duration: 1h30m
    timeZone: UTC
  blackouts:
  - start: 2025-12-20
    end: 2026-01-02
    reason: holidays
  - start: 2025-11-27
  mode: observe
  drift:
    channel: report
    desiredUpdate: report
    overrides: correct
"""


def test_a_full_policy() -> None:
    policy, found = parse(FULL)
    assert found == []
    assert policy == Policy(
        allow_not_recommended=True,
        accepted_risks=(
            AcceptedRisk(
                "AROBrokenDNSMasq", "no ARO clusters here", "jane@example.com", date(2025, 7, 1)
            ),
            AcceptedRisk(
                "PreRelease",
                "lab cluster",
                "ops",
                datetime(2025, 6, 1, 18, 0, tzinfo=timezone(timedelta(hours=2))),
            ),
        ),
        allow_force=AllowForce(datetime(2025, 6, 3, 12, 0, tzinfo=UTC), "signature store outage"),
        require_digest=False,
        allow_minor=False,
        allow_major=True,
        allow_retarget_while_progressing=True,
        maintenance_windows=(
            MaintenanceWindow("0 2 * * SAT,SUN", timedelta(hours=4), "Europe/Berlin"),
            MaintenanceWindow("*/30 22-23 * * 1-5", timedelta(minutes=90), "UTC"),
        ),
        blackouts=(
            Blackout(date(2025, 12, 20), date(2026, 1, 2), "holidays"),
            Blackout(date(2025, 11, 27), date(2025, 11, 27)),
        ),
        mode=Mode.OBSERVE,
        drift=DriftActions(
            channel=DriftAction.REPORT,
            desired_update=DriftAction.REPORT,
            overrides=DriftAction.CORRECT,
        ),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("  allowMinr: true\n", ("policy-unknown-field", 4, 3)),
        ('  allowNotRecommended: "true"\n', ("policy-field-type", 4, 24)),
        ("  requireDigest: 1\n", ("policy-field-type", 4, 18)),
        ("  allowMinor: null\n", ("policy-field-type", 4, 15)),
        ("  allowMajor: yes\n", ("policy-field-type", 4, 15)),
        ("  allowRetargetWhileProgressing: []\n", ("policy-field-type", 4, 34)),
        ("  acceptedRisks: {}\n", ("policy-field-type", 4, 18)),
        ("  acceptedRisks:\n  - name: X\n    reason: r\n", ("policy-risk-incomplete", 5, 5)),
        (
            "  acceptedRisks:\n  - {name: X, reason: r, approvedBy: '', expires: 2026-01-01}\n",
            ("policy-risk-incomplete", 5, 38),
        ),
        (
            "  acceptedRisks:\n  - {name: X, reason: r, approvedBy: me, expires: soon}\n",
            ("policy-risk-date", 5, 51),
        ),
        (
            "  acceptedRisks:\n"
            "  - {name: X, reason: r, approvedBy: me, expires: '2026-01-01T10:00:00'}\n",
            ("policy-risk-date", 5, 51),
        ),
        (
            "  acceptedRisks:\n"
            "  - {name: X, reason: r, approvedBy: me, expires: 2026-01-01, by: x}\n",
            ("policy-unknown-field", 5, 63),
        ),
        (
            "  acceptedRisks:\n"
            "  - {name: X, reason: r, approvedBy: me, expires: 2026-01-01}\n"
            "  - {name: X, reason: s, approvedBy: me, expires: 2026-01-01}\n",
            ("policy-risk-duplicate", 6, 12),
        ),
        ("  allowForce: true\n", ("policy-field-type", 4, 15)),
        ("  allowForce:\n    until: 2026-01-01\n", ("policy-force-window", 4, 3)),
        ("  allowForce:\n    until: tomorrow\n    reason: r\n", ("policy-force-window", 5, 12)),
        ("  allowForce:\n    until: 2026-01-01\n    reason: ''\n", ("policy-force-window", 6, 13)),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * *'\n    duration: 4h\n    timeZone: UTC\n",
            ("policy-cron", 5, 11),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n"
            "    duration: 4 hours\n    timeZone: UTC\n",
            ("policy-duration", 6, 15),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n    duration: 4\n    timeZone: UTC\n",
            ("policy-field-type", 6, 15),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n"
            "    duration: 200h\n    timeZone: UTC\n",
            ("policy-duration", 6, 15),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n"
            "    duration: 4h\n    timeZone: Mars/Olympus\n",
            ("policy-time-zone", 7, 15),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n    duration: 4h\n",
            ("policy-required-field", 5, 5),
        ),
        (
            "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n    duration: 4h\n"
            "    timeZone: UTC\n    window: 1h\n",
            ("policy-unknown-field", 8, 5),
        ),
        ("  stallAfter: soon\n", ("policy-stall-after", 4, 15)),
        ("  stallAfter: 0s\n", ("policy-stall-after", 4, 15)),
        ("  stallAfter: 90\n", ("policy-field-type", 4, 15)),
        ("  blackouts:\n  - start: 2025-12-24\n    end: 2025-12-01\n", ("policy-blackout", 6, 10)),
        ("  blackouts:\n  - start: 2025-12-24T00:00:00Z\n", ("policy-blackout", 5, 12)),
        ("  blackouts:\n  - end: 2025-12-24\n", ("policy-required-field", 5, 5)),
        ("  mode: enforced\n", ("policy-mode", 4, 9)),
        ("  mode: 1\n", ("policy-field-type", 4, 9)),
        ("  drift:\n    channel: fix\n", ("policy-drift-action", 5, 14)),
        ("  drift:\n    chanel: report\n", ("policy-unknown-field", 5, 5)),
    ],
)
def test_every_field_is_checked_at_its_position(body: str, expected: tuple[str, int, int]) -> None:
    policy, found = parse(body)
    assert found == [expected]
    assert policy is None


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ("  allowMinr: true\n", 'did you mean "allowMinor"?'),
        ("  mode: Observe\n", 'did you mean "observe"?'),
        ("  drift:\n    overides: report\n", 'did you mean "overrides"?'),
        ("  drift:\n    channel: reports\n", 'did you mean "report"?'),
        ("  allowMajor: 'false'\n", "write true or false without quotes"),
        (
            "  maintenanceWindows:\n"
            "  - {cron: '0 2 * * *', duration: 1h, timeZone: Europe/Berln}\n",
            'did you mean "Europe/Berlin"?',
        ),
    ],
)
def test_hints_suggest_the_closest_known_name(body: str, hint: str) -> None:
    _, found = parse_policy((HEADER + body).encode(), "policy.yaml", today=TODAY)
    assert [f.hint for f in found] == [hint]


def test_cron_errors_say_which_field_is_wrong() -> None:
    body = "  maintenanceWindows:\n  - {cron: '0 25 * * *', duration: 1h, timeZone: UTC}\n"
    _, found = parse_policy((HEADER + body).encode(), "policy.yaml", today=TODAY)
    assert "field 2 (hour): 25 is out of range 0-23" in found[0].message
    assert found[0].field == ".spec.maintenanceWindows[0].cron"


def test_an_expired_risk_is_a_warning_is_kept_for_the_gates_and_stops_counting() -> None:
    body = (
        "  acceptedRisks:\n"
        "  - {name: Old, reason: r, approvedBy: me, expires: 2025-05-31}\n"
        "  - {name: Today, reason: r, approvedBy: me, expires: 2025-06-01}\n"
    )
    policy, found = parse_policy((HEADER + body).encode(), "policy.yaml", today=TODAY)
    [warning] = found
    assert (warning.rule, warning.severity, warning.location.line) == (
        "policy-risk-expired",
        Severity.WARNING,
        5,
    )
    assert warning.location.column == 53
    assert policy is not None
    assert [risk.name for risk in policy.accepted_risks] == ["Old", "Today"]
    assert accepted_risk_names(policy, datetime.combine(TODAY, time(12), UTC)) == ("Today",)


def test_an_expired_force_window_is_a_warning_and_is_kept_for_the_gates_to_name() -> None:
    body = "  allowForce:\n    until: 2025-05-01T00:00:00Z\n    reason: r\n"
    policy, found = parse_policy((HEADER + body).encode(), "policy.yaml", today=TODAY)
    [warning] = found
    assert (warning.rule, warning.location.line, warning.location.column) == (
        "policy-force-expired",
        5,
        12,
    )
    assert warning.message == "allowForce ended on 2025-05-01T00:00:00Z; force is no longer allowed"
    assert policy is not None
    assert policy.allow_force is not None
    # The gates see when it ended, so they can say it expired rather than "not allowed".
    settings = gate_settings(policy)
    assert settings.allow_force_until == datetime(2025, 5, 1, tzinfo=UTC)
    assert settings.allow_force_written == "2025-05-01T00:00:00Z"


def test_a_force_window_until_a_date_counts_through_that_day() -> None:
    body = "  allowForce: {until: 2025-05-31, reason: r}\n"
    policy, found = parse(body)
    assert found == [("policy-force-expired", 4, 23)]
    assert policy is not None
    settings = gate_settings(policy)
    assert settings.allow_force_until == datetime(2025, 6, 1, tzinfo=UTC)
    assert settings.allow_force_written == "2025-05-31"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: cvsync.io/v1\nkind: UpgradePolicy\nspec: {}\n",
            [("policy-api-version", 1, 13)],
        ),
        ("kind: UpgradePolicy\nspec: {}\n", [("policy-api-version", 1, 1)]),
        ("apiVersion: cvsync.io/v1alpha1\nkind: Policy\nspec: {}\n", [("policy-document", 2, 7)]),
        (
            "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\n",
            [("policy-required-field", 1, 1)],
        ),
        (
            "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec: []\n",
            [("policy-field-type", 3, 7)],
        ),
        (HEADER + "  {}\nstatus: {}\n", [("policy-unknown-field", 5, 1)]),
        (HEADER + "  {}\n---\n" + HEADER + "  {}\n", [("policy-document", 5, 1)]),
        ("", [("policy-document", 1, 1)]),
        ("- a\n- b\n", [("policy-document", 1, 1)]),
        (HEADER + "  mode: enforce\n  mode: observe\n", [("yaml-duplicate-key", 5, 3)]),
        (HEADER + "  mode: [\n", [("yaml-syntax", 5, 1)]),
    ],
)
def test_the_document_itself_is_checked(text: str, expected: list[tuple[str, int, int]]) -> None:
    policy, found = parse_policy(text.encode(), "policy.yaml", today=TODAY)
    assert [(f.rule, f.location.line, f.location.column) for f in found] == expected
    assert policy is None


def test_bad_bytes_are_located() -> None:
    policy, found = parse_policy(HEADER.encode() + b"  mode: \xff\n", "p.yaml", today=TODAY)
    assert policy is None
    assert [(f.rule, f.location.line) for f in found] == [("file-not-utf8", 4)]


def test_every_finding_names_its_file_field_and_a_hint() -> None:
    _, found = parse_policy(
        (HEADER + "  mode: x\n").encode(), "clusters/prod/policy.yaml", today=TODAY
    )
    [finding] = found
    assert str(finding.location) == "clusters/prod/policy.yaml:4:9"
    assert finding.field == ".spec.mode"
    assert finding.hint


def test_a_misspelt_required_field_is_unknown_and_missing() -> None:
    body = "  maintenanceWindows:\n  - cron: '0 2 * * SAT'\n    duration: 4h\n    timezone: UTC\n"
    _, found = parse(body)
    assert found == [("policy-required-field", 5, 5), ("policy-unknown-field", 7, 5)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20s", timedelta(seconds=20)),
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_stall_after_takes_hours_minutes_and_seconds(text: str, expected: timedelta) -> None:
    policy, found = parse(f"  stallAfter: {text}\n")
    assert found == []
    assert policy is not None
    assert policy.stall_after == expected


def test_stall_after_defaults_to_ninety_minutes() -> None:
    policy, _ = parse("  mode: enforce\n")
    assert policy is not None
    assert policy.stall_after == timedelta(minutes=90)
