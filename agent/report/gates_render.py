"""The upgrade gates' verdicts as Markdown: the table a status file and a pull-request
comment both show, and the one-line verdict of what happens to git's target.

Pure: an UpgradeCheck in, Markdown lines out.
"""

from __future__ import annotations

from agent.model.gates import UpgradeCheck, Verdict
from agent.report.markdown_cells import cell, code, table

_MARKS = {
    Verdict.PASS: "pass",
    Verdict.WARN: "warn",
    Verdict.BLOCK: "**block**",
    Verdict.WAIT: "**wait**",
}


def gate_table(check: UpgradeCheck) -> list[str]:
    rows = [
        [code(row.gate), _MARKS[row.verdict], cell(row.reason), cell(row.evidence)]
        for row in check.decision.rows
    ]
    return table(["Gate", "Verdict", "Reason", "Evidence"], rows)


def outcome_line(check: UpgradeCheck) -> str:
    """What happens to git's target: applied at once, waits for a window, or blocked."""
    target = code(check.target) if check.target else "the target"
    action = check.decision.action
    if action == "apply":
        resolved = check.decision.resolved or {}
        pinned = resolved.get("image")
        how = f" as {code(str(pinned))}" if pinned else ""
        return f"{target} applies at once{how}."
    if action == "wait":
        return f"{target} waits: {cell(check.window.note)}; it applies when a window opens."
    if action == "block":
        reasons = ", ".join(row.reason for row in check.decision.blocking)
        return f"{target} is **blocked** ({reasons}); it stays pending until the gates pass."
    first = check.decision.rows[0] if check.decision.rows else None
    return cell(first.evidence if first else "no desiredUpdate change")
