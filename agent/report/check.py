"""One validation run over many files: parse, validate each document, then the fleet check.

Pure: file contents in, a CheckReport out; reading the files is the caller's job.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

from agent.model.documents import ManifestDocument
from agent.model.findings import Finding, Severity
from agent.report.status_document import GENERATED_BY
from agent.spec.fleet import check_fleet
from agent.spec.parse import parse_file
from agent.spec.validate import validate_document
from agent.upgrade.policy import parse_policy


@dataclass(frozen=True, slots=True)
class CheckReport:
    files: int
    documents: tuple[ManifestDocument, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.WARNING)

    def promoted(self) -> CheckReport:
        """The same report with every warning counted as an error (`--strict`)."""
        return replace(
            self, findings=tuple(replace(f, severity=Severity.ERROR) for f in self.findings)
        )


POLICY_FILE_NAMES = frozenset({"policy.yaml", "policy.yml"})
_STATUS_HEADER = f"# {GENERATED_BY}\n".encode()


def check_files(
    contents: Iterable[tuple[str, bytes]],
    read_problems: Iterable[Finding] = (),
    *,
    today: date | None = None,
) -> CheckReport:
    """Validate every (display path, bytes) pair, plus problems met while reading files.

    A cluster's `policy.yaml` is checked as an UpgradePolicy; `today` decides which accepted
    risks have expired (the caller passes the date, so this stays a pure function)."""
    findings = list(read_problems)
    documents: list[ManifestDocument] = []
    files = 0
    for path, data in contents:
        if data.startswith(_STATUS_HEADER):
            continue  # cvsync's own status file, committed next to the specs
        files += 1
        if posixpath.basename(path) in POLICY_FILE_NAMES:
            _, policy_findings = parse_policy(data, path, today=today or date.min)
            findings.extend(policy_findings)
            continue
        parsed = parse_file(data, path)
        findings.extend(parsed.findings)
        for doc in parsed.documents:
            documents.append(doc)
            findings.extend(validate_document(doc))
    findings.extend(check_fleet(documents))
    findings.sort(key=lambda f: f.sort_key)
    return CheckReport(files, tuple(documents), tuple(findings))
