"""Render a validation report for people (compiler-style lines) or machines (JSON).

Pure.
"""

from __future__ import annotations

import json
from typing import Any

from agent.report.check import CheckReport


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render_text(report: CheckReport) -> str:
    lines: list[str] = []
    for finding in report.findings:
        lines.append(f"{finding.location}: {finding.severity}[{finding.rule}]: {finding.message}")
        lines.append(f"    hint: {finding.hint}")
    verdict = "FAILED" if report.errors else "ok"
    lines.append(
        f"{verdict}: {_plural(report.files, 'file')}, "
        f"{_plural(len(report.documents), 'ClusterVersion')}, "
        f"{_plural(report.errors, 'error')}, {_plural(report.warnings, 'warning')}"
    )
    return "\n".join(lines) + "\n"


def render_json(report: CheckReport) -> str:
    document: dict[str, Any] = {
        "files": report.files,
        "clusterVersions": len(report.documents),
        "errors": report.errors,
        "warnings": report.warnings,
        "findings": [
            {
                "file": f.location.file,
                "line": f.location.line,
                "column": f.location.column,
                "severity": str(f.severity),
                "rule": f.rule,
                "field": f.field,
                "message": f.message,
                "hint": f.hint,
            }
            for f in report.findings
        ],
    }
    return json.dumps(document, indent=2) + "\n"
