"""Render a validation report for people (compiler-style lines) or machines (JSON, YAML).

Pure.
"""

from __future__ import annotations

import io
import json
from typing import Any

from ruamel.yaml import YAML

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
    return json.dumps(report_document(report), indent=2) + "\n"


def render_yaml(report: CheckReport) -> str:
    """The JSON document as YAML, keys in the same order."""
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.width = 4096  # a message stays on one line, as in the JSON
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    buffer = io.StringIO()
    yaml.dump(report_document(report), buffer)
    return buffer.getvalue()


def report_document(report: CheckReport) -> dict[str, Any]:
    return {
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
