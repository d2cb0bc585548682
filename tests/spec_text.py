"""Build small ClusterVersion YAML texts for tests, with known line numbers."""

from __future__ import annotations

from agent.model.findings import Finding
from agent.spec.parse import parse_text
from agent.spec.validate import validate_document

CLUSTER_ID = "5e65da93-4167-4f1e-9571-f99963cda23e"

HEADER = """\
apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata:
  name: version
spec:
  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e
"""
# HEADER holds lines 1-6; a test's spec body starts on line 7 with two spaces of indent.
BODY_LINE = 7


def spec(body: str = "") -> str:
    """A valid ClusterVersion with `body` (already indented by two spaces) appended to spec."""
    return HEADER + body


def findings(text: str, file: str = "cv.yaml") -> list[Finding]:
    parsed = parse_text(text, file)
    out = list(parsed.findings)
    for doc in parsed.documents:
        out.extend(validate_document(doc))
    return sorted(out, key=lambda f: f.sort_key)


def located(text: str) -> list[tuple[str, int, int]]:
    """(rule, line, column) of every finding, in file order."""
    return [(f.rule, f.location.line, f.location.column) for f in findings(text)]
