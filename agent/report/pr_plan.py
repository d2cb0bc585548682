"""`cvsync plan --pr`: what merging a pull request will do to one cluster, as a Markdown
comment ready to post, or as JSON for other tools.

Pure: a PullRequestPlan in, text out. The comment starts with a hidden marker naming the
cluster, so a CI job can find and update its earlier comment instead of adding another.
"""

from __future__ import annotations

import json
from typing import Any

from agent.model.gates import UpgradeCheck, Verdict
from agent.model.plan import ApplyPlan, PlanVerdict, PullRequestPlan
from agent.report.gates_render import gate_table, outcome_line
from agent.report.markdown_cells import cell, code, link, table, value

_HEADLINES = {
    "apply": "applies on merge",
    "none": "nothing to change",
    "wait": "waits for a maintenance window",
    "block": "blocked",
}


def plan_verdict(plan: ApplyPlan, upgrade: UpgradeCheck | None) -> PlanVerdict:
    """block: nothing can be applied or the target is blocked; wait: the target waits for a
    window; apply: merging changes the cluster; none: it changes nothing."""
    if plan.stalled is not None:
        return "block"
    if upgrade is not None and upgrade.decision.action in ("block", "wait"):
        return "block" if upgrade.decision.action == "block" else "wait"
    return "apply" if plan.body is not None else "none"


def marker(cluster: str) -> str:
    return f"<!-- cvsync-plan:{cluster} -->"


def section(title: str, body: list[str]) -> list[str]:
    """A sub-heading: the comment sits under the pull request's own headings."""
    return [f"#### {title}", "", *body, ""]


def render_pr_markdown(plan: PullRequestPlan) -> str:
    out = [
        marker(plan.cluster),
        f"### cvsync plan: {code(plan.cluster)} {_HEADLINES[plan.verdict]}",
        "",
        f"**On merge:** {cell(_on_merge(plan))}",
        "",
    ]
    out += section("Changes", _changes(plan))
    if plan.upgrade is not None and plan.upgrade.decision.action != "none":
        out += section("Upgrade gates", gate_table(plan.upgrade))
        out += section("Upgrade path", _path(plan))
        risks = _risks(plan.upgrade)
        if risks:
            out += section("Risks", risks)
    if plan.findings:
        out += section("Validation", [f"- {cell(text)}" for text in plan.findings])
    out += [f"<sub>{cell(_footer(plan))}</sub>"]
    return "\n".join(out).rstrip("\n") + "\n"


def render_pr_json(plan: PullRequestPlan) -> str:
    return json.dumps(pr_document(plan), indent=2, sort_keys=False) + "\n"


def pr_document(plan: PullRequestPlan) -> dict[str, Any]:
    upgrade = plan.upgrade
    return {
        "cluster": plan.cluster,
        "spec": plan.spec_label,
        "live": plan.live_label,
        "evaluatedAt": plan.evaluated_at,
        "verdict": plan.verdict,
        "onMerge": _on_merge(plan),
        "stalled": plan.stalled,
        "message": plan.message,
        "changes": plan.changes,
        "reported": list(plan.reported),
        "held": plan.held,
        "upgrade": None
        if upgrade is None
        else {
            "target": upgrade.target,
            "action": upgrade.decision.action,
            "resolved": upgrade.decision.resolved,
            "gates": [
                {
                    "gate": r.gate,
                    "verdict": str(r.verdict),
                    "reason": r.reason,
                    "evidence": r.evidence,
                }
                for r in upgrade.decision.rows
            ],
            "suggestion": upgrade.decision.suggestion,
            "window": upgrade.window.note if upgrade.window.open is not None else None,
            "path": list(plan.path),
        },
        "findings": list(plan.findings),
    }


def _on_merge(plan: PullRequestPlan) -> str:
    if plan.stalled:
        return f"nothing is applied: {plan.stalled}: {plan.message}"
    upgrade = plan.upgrade
    parts = []
    others = [c["path"] for c in plan.changes if not c["path"].startswith(".spec.desiredUpdate")]
    if others:
        parts.append(", ".join(others) + " applied at once")
    if upgrade is not None and upgrade.decision.action != "none":
        parts.append(outcome_line(upgrade))
    elif not plan.changes:
        parts.append("the cluster already matches this spec")
    elif not others:
        parts.append("desiredUpdate applied at once")
    return "; ".join(parts)


def _changes(plan: PullRequestPlan) -> list[str]:
    if not plan.changes and not plan.held:
        return ["No spec field changes."]
    rows = [
        [code(c["path"]), value(c["before"]), value(c["after"]), "applied"] for c in plan.changes
    ]
    rows += [
        [code(h["path"]), value(h["before"]), value(h["after"]), f"**{cell(h['why'])}**"]
        for h in plan.held
    ]
    return table(["Field", "Live", "Git", "On merge"], rows)


def _path(plan: PullRequestPlan) -> list[str]:
    assert plan.upgrade is not None
    steps = " → ".join(code(step) for step in plan.path) if plan.path else ""
    out = [steps] if steps else ["No path could be worked out from the data given."]
    if plan.path_source:
        out += ["", f"({cell(plan.path_source)})"]
    if plan.upgrade.decision.suggestion:
        out += ["", f"Next: {cell(plan.upgrade.decision.suggestion)}"]
    return out


def _risks(check: UpgradeCheck) -> list[str]:
    row = check.decision.row("recommended")
    if row is None or (row.verdict is Verdict.PASS and row.reason == "Recommended"):
        return []
    if not check.risks:
        return [f"{cell(row.reason)}: {cell(row.evidence)}"]
    accepted = sum(1 for risk in check.risks if risk.accepted)
    intro = (
        f"{code(check.target)} is a conditional update with {len(check.risks)} "
        f"risk{'s' if len(check.risks) != 1 else ''}; the policy accepts {accepted}:"
    )
    return [intro, *_risk_table(check)]


def _risk_table(check: UpgradeCheck) -> list[str]:
    if not check.risks:
        return []
    rows = [
        [code(r.name), "yes" if r.accepted else "**no**", cell(r.message), link("details", r.url)]
        for r in check.risks
    ]
    return ["", *table(["Risk", "Accepted", "Message", "Link"], rows)]


def _footer(plan: PullRequestPlan) -> str:
    return (
        f"cvsync plan of {plan.spec_label} against {plan.live_label}, evaluated at "
        f"{plan.evaluated_at}; policy: {plan.policy_label}"
    )
