"""Parse and validate a policy file, `clusters/<name>/policy.yaml`, into a Policy.

Pure: bytes, a display path and today's date in; a Policy (or None when the file has
errors) and located findings out. The YAML goes through the same decoder as specs
(`yaml_events`, `build_documents`), so every finding points at file:line:col.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from ruamel.yaml.error import MarkedYAMLError, YAMLError

from agent.model import findings as rules
from agent.model import policy_rules as pr
from agent.model.findings import Finding, Rule, Severity
from agent.model.policy import (
    API_VERSION,
    KIND,
    AcceptedRisk,
    AllowForce,
    Blackout,
    DriftAction,
    DriftActions,
    MaintenanceWindow,
    Mode,
    Policy,
)
from agent.model.source import FieldPath, PositionMap, SourceLocation, format_field_path
from agent.spec.parse import (
    MAX_FILE_BYTES,
    decode_utf8,
    duplicate_key_findings,
    structure_finding,
    syntax_finding,
    too_large_finding,
    yaml_events,
)
from agent.spec.suggest import closest
from agent.spec.validate import json_type
from agent.spec.yaml_events import BuiltDocument, YamlStructureError, build_documents
from agent.upgrade.cron import CronSchedule

T = TypeVar("T")

TOP_FIELDS = ("apiVersion", "kind", "metadata", "spec")
_BOOLEANS = {
    "allowNotRecommended": "allow_not_recommended",
    "requireDigest": "require_digest",
    "allowMinor": "allow_minor",
    "allowMajor": "allow_major",
    "allowRetargetWhileProgressing": "allow_retarget_while_progressing",
}
SPEC_FIELDS = (
    *_BOOLEANS,
    "acceptedRisks",
    "allowForce",
    "maintenanceWindows",
    "blackouts",
    "mode",
    "drift",
    "stallAfter",
)
RISK_FIELDS = ("name", "reason", "approvedBy", "expires")
FORCE_FIELDS = ("until", "reason")
WINDOW_FIELDS = ("cron", "duration", "timeZone")
BLACKOUT_FIELDS = ("start", "end", "reason")
DRIFT_FIELDS = {
    "channel": "channel",
    "upstream": "upstream",
    "capabilities": "capabilities",
    "desiredUpdate": "desired_update",
    "overrides": "overrides",
}
MAX_WINDOW = timedelta(days=7)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")
_STALL_AFTER = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DATE_HINT = "write a date like 2025-01-31 or a timestamp like 2025-01-31T18:00:00Z"
_CRON_HINT = "write 5 fields: minute hour day-of-month month day-of-week, e.g. `0 2 * * SAT`"
_DAY_HINT = "write a date like 2025-12-24"
_SCALARS = ("string", "integer", "number", "boolean")


def parse_policy(
    data: bytes, file: str, *, today: date
) -> tuple[Policy | None, tuple[Finding, ...]]:
    """Read one policy file; the Policy is None when any finding is an error."""
    if len(data) > MAX_FILE_BYTES:
        return None, (too_large_finding(file, len(data)),)
    text, problem = decode_utf8(data, file)
    if text is None:
        assert problem is not None
        return None, (problem,)
    built, found = _load(text, file)
    policy = None
    if built is not None:
        reader = _Reader(file, PositionMap(built.keys, built.values, built.start), today)
        policy = reader.document(built.body)
        found.extend(reader.out)
    found.sort(key=lambda f: f.sort_key)
    if any(f.severity is Severity.ERROR for f in found):
        policy = None
    return policy, tuple(found)


def parse_date(text: str) -> date | datetime:
    """A date (`2025-01-31`) or an RFC 3339 timestamp with an offset; ValueError otherwise."""
    if _DATE.match(text):
        return date.fromisoformat(text)
    if _TIMESTAMP.match(text):
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    raise ValueError(f"{text!r} is neither a date (2025-01-31) nor an RFC 3339 timestamp")


def parse_duration(text: str) -> timedelta:
    """`4h`, `90m` or `1h30m`: positive and at most a week; ValueError otherwise."""
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 4h, 90m or 1h30m")
    hours, minutes = (int(group or 0) for group in match.groups())
    duration = timedelta(hours=hours, minutes=minutes)
    if not timedelta(0) < duration <= MAX_WINDOW:
        raise ValueError(f"{text!r} must be longer than 0 and at most 168h (a week)")
    return duration


def parse_short_duration(text: str) -> timedelta:
    """`90m`, `2h`, `1h30m` or, for tests, `20s`: positive and at most a week."""
    match = _STALL_AFTER.match(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration like 90m, 2h or 20s")
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    duration = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(0) < duration <= MAX_WINDOW:
        raise ValueError(f"{text!r} must be longer than 0 and at most 168h (a week)")
    return duration


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _load(text: str, file: str) -> tuple[BuiltDocument | None, list[Finding]]:
    found: list[Finding] = []
    documents: list[BuiltDocument] = []
    try:
        documents = list(build_documents(yaml_events(text)))
    except YamlStructureError as exc:
        found.append(structure_finding(exc, file))
    except MarkedYAMLError as exc:
        found.append(syntax_finding(exc, file, text))
    except (YAMLError, RecursionError) as exc:
        found.append(
            rules.YAML_SYNTAX.at(
                SourceLocation(file, 1, 1),
                f"the file cannot be parsed: {exc}",
                "check the file with a YAML linter",
            )
        )
    for built in documents:
        found.extend(duplicate_key_findings(built, file))
    if found:
        return None, found
    if len(documents) != 1:
        at = documents[1].start if documents else None
        shown = f"{len(documents)} documents" if documents else "no YAML document"
        found.append(
            pr.POLICY_DOCUMENT.at(
                SourceLocation(file, *(at.line, at.column) if at else (1, 1)),
                f"a policy file holds exactly one UpgradePolicy; this one holds {shown}",
                "keep a single document: apiVersion, kind: UpgradePolicy and spec",
            )
        )
        return None, found
    return documents[0], found


class _Reader:
    """Walks one policy document, converting fields and collecting findings."""

    def __init__(self, file: str, positions: PositionMap, today: date) -> None:
        self.file = file
        self.positions = positions
        self.today = today
        self.out: list[Finding] = []

    def report(
        self, rule: Rule, path: FieldPath, message: str, hint: str, key: bool = False
    ) -> None:
        where = self.positions.key(path) if key else self.positions.value(path)
        location = SourceLocation(self.file, where.line, where.column)
        self.out.append(rule.at(location, message, hint, format_field_path(path)))

    def typed(self, value: Any, path: FieldPath, expected: type[T]) -> T | None:
        """`value` when it has the JSON type `expected`, else a policy-field-type finding."""
        if isinstance(value, expected):
            return value
        field, want, actual = format_field_path(path), json_type(expected()), json_type(value)
        shown = f" {value!r}" if actual in _SCALARS else ""
        message = f"{field} must be a {want}, not the {actual}{shown}"
        if value is None:
            message, hint = f"{field} is null", "remove the line to use the default"
        elif want == "string" and actual in _SCALARS:
            hint = "put the value in quotes so YAML keeps it as text exactly as written"
        elif want == "boolean" and actual == "string":
            hint = "write true or false without quotes"
        else:
            hint = f"give {field} a value of type {want}"
        self.report(pr.POLICY_FIELD_TYPE, path, message, hint)
        return None

    def mapping(self, value: Any, path: FieldPath, known: Collection[str]) -> dict[str, Any] | None:
        """The object's known fields; unknown ones are reported with the closest name."""
        body = self.typed(value, path, dict)
        for name in body or {}:
            if name not in known:
                message = f'unknown field "{name}" in {format_field_path(path)}'
                hint = _suggest(name, known, f"known fields here: {', '.join(sorted(known))}")
                self.report(pr.POLICY_UNKNOWN_FIELD, (*path, name), message, hint, key=True)
        return None if body is None else {k: v for k, v in body.items() if k in known}

    def required(
        self, body: dict[str, Any], path: FieldPath, names: Collection[str], rule: Rule
    ) -> bool:
        """True when every one of `names` is set; a finding at the object's key otherwise."""
        missing = ", ".join(name for name in names if name not in body)
        if missing:
            field = format_field_path(path)
            self.report(rule, path, f"{field} has no {missing}", f"add {missing} to {field}", True)
        return not missing

    def text(self, body: dict[str, Any], path: FieldPath, name: str, rule: Rule) -> str | None:
        """A required non-empty string field."""
        value = self.typed(body[name], (*path, name), str)
        if value is not None and not value.strip():
            field = format_field_path((*path, name))
            self.report(rule, (*path, name), f"{field} is empty", f"write the {name}")
            return None
        return value

    def converted(
        self, value: Any, path: FieldPath, rule: Rule, parse: Callable[[str], T], hint: str
    ) -> T | None:
        """A string field converted by `parse`, whose ValueError becomes a `rule` finding."""
        text = self.typed(value, path, str)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.report(rule, path, f"{format_field_path(path)}: {exc}", hint)
            return None

    def expired(self, moment: date | datetime) -> bool:
        day = moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment
        return day < self.today

    def document(self, body: Any) -> Policy | None:
        if not isinstance(body, dict):
            shape = "a list" if isinstance(body, list) else "a scalar"
            hint = "write a mapping with apiVersion, kind: UpgradePolicy and spec"
            self.report(pr.POLICY_DOCUMENT, (), f"the document is {shape}, not a mapping", hint)
            return None
        for name, want, rule in (
            ("apiVersion", API_VERSION, pr.POLICY_API_VERSION),
            ("kind", KIND, pr.POLICY_DOCUMENT),
        ):
            if body.get(name) != want:
                shown = f"is {body[name]!r}" if name in body else "is missing"
                self.report(
                    rule,
                    (name,),
                    f"{name} {shown}; a policy has {name}: {want}",
                    f"set {name}: {want}",
                )
        top = self.mapping(body, (), TOP_FIELDS) or {}
        if "metadata" in top:
            self.typed(top["metadata"], ("metadata",), dict)
        if "spec" not in top:
            hint = "add `spec: {}` for the defaults, or the fields to change"
            self.report(pr.POLICY_REQUIRED_FIELD, (), "the policy has no spec", hint)
            return None
        spec = self.mapping(top["spec"], ("spec",), SPEC_FIELDS)
        return None if spec is None else self.spec(spec)

    def spec(self, spec: dict[str, Any]) -> Policy:
        values: dict[str, Any] = {}
        for name, attribute in _BOOLEANS.items():
            if name in spec and (flag := self.typed(spec[name], ("spec", name), bool)) is not None:
                values[attribute] = flag
        if "acceptedRisks" in spec:
            values["accepted_risks"] = self.items(spec["acceptedRisks"], "acceptedRisks", self.risk)
            self.duplicate_risks(spec["acceptedRisks"])
        if "allowForce" in spec:
            values["allow_force"] = self.force(spec["allowForce"])
        if "maintenanceWindows" in spec:
            windows = self.items(spec["maintenanceWindows"], "maintenanceWindows", self.window)
            values["maintenance_windows"] = windows
        if "blackouts" in spec:
            values["blackouts"] = self.items(spec["blackouts"], "blackouts", self.blackout)
        if "mode" in spec:
            mode = self.choice(spec["mode"], ("spec", "mode"), Mode, pr.POLICY_MODE)
            if mode is not None:
                values["mode"] = mode
        if "drift" in spec:
            values["drift"] = self.drift(spec["drift"])
        if "stallAfter" in spec:
            hint = "write a duration like 90m (the default), 2h or 20s"
            stall_after = self.converted(
                spec["stallAfter"], ("spec", "stallAfter"), pr.POLICY_STALL_AFTER,
                parse_short_duration, hint,
            )  # fmt: skip
            if stall_after is not None:
                values["stall_after"] = stall_after
        return Policy(**values)

    def items(
        self, value: Any, name: str, convert: Callable[[Any, FieldPath], T | None]
    ) -> tuple[T, ...]:
        entries = self.typed(value, ("spec", name), list) or []
        out = [convert(entry, ("spec", name, index)) for index, entry in enumerate(entries)]
        return tuple(item for item in out if item is not None)

    def risk(self, value: Any, path: FieldPath) -> AcceptedRisk | None:
        body = self.mapping(value, path, RISK_FIELDS)
        if body is None or not self.required(body, path, RISK_FIELDS, pr.POLICY_RISK_INCOMPLETE):
            return None
        name, reason, approved_by = (
            self.text(body, path, field, pr.POLICY_RISK_INCOMPLETE) for field in RISK_FIELDS[:3]
        )
        at = (*path, "expires")
        expires = self.converted(body["expires"], at, pr.POLICY_RISK_DATE, parse_date, _DATE_HINT)
        if name is None or reason is None or approved_by is None or expires is None:
            return None
        if self.expired(expires):
            # Kept: it no longer counts, and the gates name the day it ended.
            message = (
                f"the acceptance of {name} expired on {expires.isoformat()}; it no longer counts"
            )
            hint = "renew the acceptance with a new expires date and approval, or remove it"
            self.report(pr.POLICY_RISK_EXPIRED, at, message, hint)
        return AcceptedRisk(name, reason, approved_by, expires)

    def duplicate_risks(self, value: Any) -> None:
        seen: set[str] = set()
        for index, entry in enumerate(value if isinstance(value, list) else []):
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str) and name in seen:
                at = ("spec", "acceptedRisks", index, "name")
                self.report(
                    pr.POLICY_RISK_DUPLICATE,
                    at,
                    f"the risk {name} is accepted twice",
                    "keep one entry per risk",
                )
            if isinstance(name, str):
                seen.add(name)

    def force(self, value: Any) -> AllowForce | None:
        path: FieldPath = ("spec", "allowForce")
        body = self.mapping(value, path, FORCE_FIELDS)
        if body is None or not self.required(body, path, FORCE_FIELDS, pr.POLICY_FORCE_WINDOW):
            return None
        at = (*path, "until")
        until = self.converted(body["until"], at, pr.POLICY_FORCE_WINDOW, parse_date, _DATE_HINT)
        reason = self.text(body, path, "reason", pr.POLICY_FORCE_WINDOW)
        if until is None or reason is None:
            return None
        allowance = AllowForce(until, reason)
        if self.expired(until):
            # Kept: the gates name the date it ended when git asks for force after it.
            message = f"allowForce ended on {allowance.written}; force is no longer allowed"
            self.report(
                pr.POLICY_FORCE_EXPIRED, at, message, "remove allowForce, or set a new until"
            )
        return allowance

    def window(self, value: Any, path: FieldPath) -> MaintenanceWindow | None:
        body = self.mapping(value, path, WINDOW_FIELDS)
        if body is None or not self.required(body, path, WINDOW_FIELDS, pr.POLICY_REQUIRED_FIELD):
            return None
        cron = self.converted(
            body["cron"], (*path, "cron"), pr.POLICY_CRON, CronSchedule.parse, _CRON_HINT
        )
        hint = "write hours and minutes, e.g. 4h, 90m or 1h30m"
        duration = self.converted(
            body["duration"], (*path, "duration"), pr.POLICY_DURATION, parse_duration, hint
        )
        zone = self.typed(body["timeZone"], (*path, "timeZone"), str)
        if zone is not None and zone not in _zone_names():
            hint = _suggest(
                zone, _zone_names(), "use an IANA time zone such as UTC or Europe/Berlin"
            )
            message = f"{zone!r} is not a known IANA time zone"
            self.report(pr.POLICY_TIME_ZONE, (*path, "timeZone"), message, hint)
            zone = None
        if cron is None or duration is None or zone is None:
            return None
        return MaintenanceWindow(cron.text, duration, zone)

    def blackout(self, value: Any, path: FieldPath) -> Blackout | None:
        body = self.mapping(value, path, BLACKOUT_FIELDS)
        if body is None or not self.required(body, path, ("start",), pr.POLICY_REQUIRED_FIELD):
            return None
        start, end = (
            self.converted(body[name], (*path, name), pr.POLICY_BLACKOUT, _plain_date, _DAY_HINT)
            if name in body
            else None
            for name in ("start", "end")
        )
        end = end if "end" in body else start
        reason = self.typed(body.get("reason", ""), (*path, "reason"), str)
        if start is None or end is None or reason is None:
            return None
        if end < start:
            message = f"the blackout ends on {end} before it starts on {start}"
            self.report(pr.POLICY_BLACKOUT, (*path, "end"), message, "swap start and end")
            return None
        return Blackout(start, end, reason)

    def choice(
        self, value: Any, path: FieldPath, enum: type[Mode] | type[DriftAction], rule: Rule
    ) -> Any:
        text = self.typed(value, path, str)
        allowed = [member.value for member in enum]
        if text is not None and text not in allowed:
            message = f"{format_field_path(path)} is {text!r}, not one of {', '.join(allowed)}"
            self.report(
                rule, path, message, _suggest(text, allowed, f"use one of {', '.join(allowed)}")
            )
            return None
        return None if text is None else enum(text)

    def drift(self, value: Any) -> DriftActions:
        body = self.mapping(value, ("spec", "drift"), DRIFT_FIELDS) or {}
        actions: dict[str, DriftAction] = {}
        for name, item in body.items():
            action = self.choice(item, ("spec", "drift", name), DriftAction, pr.POLICY_DRIFT_ACTION)
            if action is not None:
                actions[DRIFT_FIELDS[name]] = action
        return DriftActions(**actions)


def _suggest(name: str, known: Collection[str], fallback: str) -> str:
    suggestion = closest(name, known)
    return f'did you mean "{suggestion}"?' if suggestion else fallback


def _plain_date(text: str) -> date:
    if not _DATE.match(text):
        raise ValueError(f"{text!r} is not a date like 2025-12-24")
    return date.fromisoformat(text)
