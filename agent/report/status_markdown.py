"""Markdown for status/<cluster>.md and the drift report: tables that read the same on GitHub
and GitLab, a text progress bar while updating, multi-line messages made safe in table cells.

Pure: a StatusSummary in, a string out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.model.drift import DriftItem
from agent.model.status import (
    ConditionalTarget,
    DriftAction,
    HistoryEntry,
    StatusSummary,
    UpdateState,
    UpdateTarget,
)
from agent.report.gates_render import gate_table, outcome_line
from agent.report.markdown_cells import (
    cell,
    code,
    duration_text,
    fenced,
    folded,
    inline,
    link,
    names,
    progress_bar,
    section,
    short_image,
    table,
    value,
)
from agent.report.status_document import (
    GENERATED_BY,
    distinct_risks,
    printable,
    revision_of,
    risk_names,
)


def render_markdown(summary: StatusSummary) -> str:
    out: list[str] = [
        *_header(summary),
        f"# {inline(summary.agent.cluster)}: {_headline(summary)}",
        "",
    ]
    out += _overview(summary)
    out += section("Conditions", _conditions(summary))
    out += section("cvsync", _agent(summary))
    out += section(
        f"History ({len(summary.history)} of {summary.history_total})", _history(summary.history)
    )
    out += section("Updates", _updates(summary))
    out += section("Capabilities", _capabilities(summary))
    if summary.overrides:
        out += section("Overrides", _overrides(summary))
    return "\n".join(out).rstrip("\n") + "\n"


def render_drift_report_markdown(summary: StatusSummary, revision: str | None = None) -> str:
    """The drift report; `revision` names what git's side was read from when the agent's
    state does not (`cvsync drift` reads a checkout, not the agent's last cycle)."""
    agent = summary.agent
    revision = revision or revision_of(summary)
    out = [*_header(summary, revision), f"# Drift report: {inline(agent.cluster)}", ""]
    if not agent.drift:
        out.append(f"The live ClusterVersion matches git ({inline(revision)}).")
        return "\n".join(out) + "\n"
    corrected = sum(1 for entry in agent.drift if entry.action is DriftAction.CORRECTED)
    out += [
        f"{len(agent.drift)} drifted field{'s' if len(agent.drift) != 1 else ''} at "
        f"{inline(revision)}: {corrected} corrected by cvsync, "
        f"{len(agent.drift) - corrected} only reported.",
        "",
    ]
    rows = [
        [
            code(e.item.path),
            str(e.item.kind),
            value(e.item.desired),
            value(e.item.live),
            _owner(e.item),
            cell(e.item.owner_since or ""),
            str(e.action),
        ]
        for e in agent.drift
    ]
    out += table(["Field", "Drift", "Git", "Live", "Changed by", "Since", "cvsync"], rows)
    notes = [
        f"- {code(e.item.path)}: {inline(e.item.detail)}" for e in agent.drift if e.item.detail
    ]
    if notes:
        out += ["", "Notes:", "", *notes]
    return "\n".join(out) + "\n"


# --- pieces -----------------------------------------------------------------------------


def _header(summary: StatusSummary, revision: str | None = None) -> list[str]:
    # HTML comments stay invisible on both forges; "--" would end the comment early.
    revision = revision or revision_of(summary)
    where = printable(f"cluster: {summary.agent.cluster}; revision: {revision}")
    where = re.sub(r"-(?=-)", "- ", where)
    return [f"<!-- {GENERATED_BY} -->", f"<!-- {where} -->", ""]


def _headline(summary: StatusSummary) -> str:
    update = summary.update
    current = inline(summary.current_version or "no completed version")
    if update.updating:
        verb = "failing while updating" if update.state is UpdateState.FAILING else "updating"
        return f"{verb} {current} → {inline(target_text(summary))}"
    if update.state is UpdateState.FAILING:
        return f"failing at {current}"
    return f"{current}, idle"


def target_text(summary: StatusSummary) -> str:
    """The version being updated to, saying so when it is the running version again: a move
    to the Multi architecture, or another payload image for the same version."""
    desired = summary.desired
    if desired is None or not desired.version:
        return "an unknown version"
    if desired.version != summary.current_version:
        return desired.version
    if desired.architecture:
        return f"{desired.version} ({desired.architecture} architecture)"
    return f"{desired.version} (another image)"


def _overview(summary: StatusSummary) -> list[str]:
    update, desired = summary.update, summary.desired
    out: list[str] = []
    if update.updating:
        bar = f"`{progress_bar(update.percent)}` " if update.percent is not None else ""
        out += [f"{bar}{inline(update.message or '')}".rstrip(), ""]
    if update.failure:
        out += [f"> **Failing:** {inline(update.failure)}", ""]
    if summary.stale:
        out += [
            f"> **Stale status:** the operator has observed generation "
            f"{summary.observed_generation} of {summary.generation}; desired and conditions "
            "may still describe the previous spec.",
            "",
        ]
    lifecycle = summary.lifecycle
    state = lifecycle.state if lifecycle is not None else update.state
    rows = [["State", f"**{state}**"]]
    if lifecycle is not None and lifecycle.target:
        rows.append(["Update", inline(lifecycle.describe())])
    rows += [
        ["Current version", inline(summary.current_version or "none completed yet")],
    ]
    if desired is not None:
        rows += [
            ["Desired version", inline(desired.version or "unknown")],
            ["Desired image", code(desired.image) if desired.image else ""],
        ]
        if desired.url:
            rows.append(["Release notes", link(desired.url, desired.url)])
        if desired.architecture:
            rows.append(["Architecture", inline(desired.architecture)])
        rows.append(["Request", _request(summary)])
    rows += [
        ["Channel", inline(summary.channel or "none")],
        ["Upstream", inline(summary.upstream or "default")],
        ["Cluster ID", code(summary.cluster_id) if summary.cluster_id else "unknown"],
        ["Generation", _generation(summary)],
        ["Git revision", inline(revision_of(summary))],
    ]
    return out + table(["", ""], rows) + [""]


def _request(summary: StatusSummary) -> str:
    desired = summary.desired
    if desired is None or not desired.requested:
        return "no spec.desiredUpdate"
    fields = " and ".join(desired.request_fields) or "no fields"
    words = [f"spec.desiredUpdate by {fields}{' only' if len(desired.request_fields) == 1 else ''}"]
    if desired.forced:
        words.append("**forced** (signature and upgradeable checks skipped)")
    if desired.accept_risks:
        words.append("accepting " + ", ".join(inline(name) for name in desired.accept_risks))
    return ", ".join(words)


def _generation(summary: StatusSummary) -> str:
    if summary.generation is None:
        return "unknown"
    observed = summary.observed_generation
    seen = "unknown" if observed is None else str(observed)
    return f"{summary.generation} (observed {seen}{', stale' if summary.stale else ''})"


def _conditions(summary: StatusSummary) -> list[str]:
    if not summary.conditions:
        return ["The object has no conditions."]
    rows = [
        [
            cell(c.type),
            cell(c.status),
            cell(c.reason or ""),
            cell(c.since or ""),
            cell(c.message or ""),
        ]
        for c in summary.conditions
    ]
    return table(["Condition", "Status", "Reason", "Since", "Message"], rows)


def _agent(summary: StatusSummary) -> list[str]:
    agent = summary.agent
    result = agent.last_result or "no cycle yet"
    if agent.last_reason and agent.last_reason != agent.last_result:
        result += f" ({agent.last_reason})"
    rows = [["Last result", cell(result)]]
    if agent.last_message:
        rows.append(["Message", cell(agent.last_message)])
    rows += [
        ["Last applied", cell(str(agent.last_applied) if agent.last_applied else "never")],
        ["Last attempted", cell(str(agent.last_attempted) if agent.last_attempted else "never")],
    ]
    if agent.last_cycle_at:
        took = "" if agent.last_cycle_seconds is None else f" ({agent.last_cycle_seconds:.2f} s)"
        rows.append(["Last cycle", cell(agent.last_cycle_at + took)])
    out = table(["", ""], rows)
    if agent.upgrade is not None:
        out += ["", f"Upgrade held back: {outcome_line(agent.upgrade)}", ""]
        out += gate_table(agent.upgrade)
        if agent.upgrade.decision.suggestion:
            out += ["", f"Next: {cell(agent.upgrade.decision.suggestion)}"]
    if agent.conflicts:
        out += ["", "Fields another manager owns, so the apply was refused:", ""]
        out += table(
            ["Field", "Owned by"], [[code(c.path), cell(c.manager)] for c in agent.conflicts]
        )
    if agent.drift:
        out += ["", f"Drift from git ({len(agent.drift)}):", ""]
        rows = [
            [
                code(e.item.path),
                str(e.item.kind),
                value(e.item.desired),
                value(e.item.live),
                _owner(e.item),
                str(e.action),
            ]
            for e in agent.drift
        ]
        out += table(["Field", "Drift", "Git", "Live", "Changed by", "cvsync"], rows)
    else:
        out += ["", "No drift from git."]
    return out


def _owner(item: DriftItem) -> str:
    if item.owner:
        return cell(item.owner)
    return "" if item.live is None else "unknown"  # nobody owns a field that is absent


def _history(entries: Sequence[HistoryEntry]) -> list[str]:
    if not entries:
        return ["The history is empty."]
    rows = [
        [
            inline(e.version or "unknown"),
            cell(e.state),
            cell(e.started or ""),
            cell(e.completed or "in progress"),
            duration_text(e.duration_seconds) if e.duration_seconds is not None else "",
            {True: "yes", False: "**no**", None: ""}[e.verified],
            code(short_image(e.image)) if e.image else "",
        ]
        for e in entries
    ]
    out = table(["Version", "State", "Started", "Completed", "Took", "Verified", "Image"], rows)
    risky = [e for e in entries if e.accepted_risks]
    for entry in risky:
        out += [
            "",
            f"Accepted risks for {inline(entry.version or 'unknown')} "
            f"(started {inline(entry.started or 'at an unknown time')}):",
            "",
            *fenced(entry.accepted_risks or ""),
        ]
    return out


def _updates(summary: StatusSummary) -> list[str]:
    out = [_update_counts(summary), ""] if summary.available or summary.conditional else []
    if summary.available:
        by_release = {c.release.image or c.release.version: c for c in summary.conditional}
        rows = [_available_row(t, by_release.get(t.image or t.version)) for t in summary.available]
        header = ["Version", "Release notes", "Image", "Risks evaluated"]
        out += folded(f"{len(rows)} available updates", table(header, rows))
    elif summary.available_null:
        retrieved = summary.condition("RetrievedUpdates")
        why = ""
        if retrieved is not None and retrieved.status != "True":
            why = f" RetrievedUpdates={retrieved.status}"
            why += f" ({retrieved.reason})" if retrieved.reason else ""
            why += f": {inline(retrieved.message)}" if retrieved.message else ""
        out.append(f"The operator lists no available updates (`availableUpdates: null`).{why}")
    else:
        out.append("The operator lists no available updates.")
    if summary.not_recommended:
        out += ["", "Conditional updates not recommended for this cluster:", ""]
        rows = [_conditional_row(c) for c in summary.not_recommended]
        header = ["Version", "Recommended", "Reason", "Risks"]
        out += folded(f"{len(rows)} not recommended", table(header, rows))
    risks = distinct_risks(summary.conditional)
    if risks:
        out += ["", "Risks of the conditional updates:", ""]
        rows = [
            [link(r.name, r.url), str(n), cell(", ".join(r.rules)), cell(r.message)]
            for r, n in risks
        ]
        header = ["Risk", "Updates", "Rules", "Message"]
        if any(r.applies for r, _ in risks):
            # The operator says which risks apply here (ClusterUpdateAcceptRisks).
            header.insert(1, "Applies")
            for row, (r, _) in zip(rows, risks, strict=True):
                row.insert(1, cell(r.applies or "not said"))
        out += folded(f"{len(rows)} risks", table(header, rows))
    return out


def _update_counts(summary: StatusSummary) -> str:
    text = f"{len(summary.available)} available"
    if summary.recommended_conditional:
        text += (
            f" ({summary.recommended_conditional} of them conditional, recommended after "
            "evaluating their risks)"
        )
    if summary.not_recommended:
        text += f", {len(summary.not_recommended)} conditional not recommended"
    return f"{text}: {summary.targets} update targets in all."


def _available_row(target: UpdateTarget, conditional: ConditionalTarget | None) -> list[str]:
    risks = conditional.risks if conditional else ()
    by_name = {r.name: r for r in risks}
    linked = ", ".join(link(name, by_name[name].url) for name in risk_names(risks))
    return [
        inline(target.version or "unknown"),
        link("notes", target.url) if target.url else "",
        code(target.image) if target.image else "",
        linked,
    ]


def _conditional_row(target: ConditionalTarget) -> list[str]:
    by_name = {r.name: r for r in target.risks}
    return [
        inline(target.release.version or "unknown"),
        cell(target.recommended or "not evaluated"),
        cell(target.reason or ""),
        ", ".join(link(name, by_name[name].url) for name in risk_names(target.risks)),
    ]


def _capabilities(summary: StatusSummary) -> list[str]:
    caps = summary.capabilities
    if caps is None:
        return ["The object reports no capabilities (clusters before 4.11 do not)."]
    return [
        f"- Baseline set: {inline(caps.baseline or 'not set (the cluster default)')}",
        f"- Additional: {names(caps.additional)}",
        f"- Enabled ({len(caps.enabled)}): {names(caps.enabled)}",
        f"- Known, not enabled ({len(caps.disabled)}): {names(caps.disabled)}",
    ]


def _overrides(summary: StatusSummary) -> list[str]:
    rows = [
        [cell(o.kind), cell(o.group), cell(o.namespace), cell(o.name), str(o.unmanaged).lower()]
        for o in summary.overrides
    ]
    note = (
        "Any override makes the operator report Upgradeable=False "
        "(ClusterVersionOverridesSet), which blocks minor updates."
    )
    return [*table(["Kind", "Group", "Namespace", "Name", "Unmanaged"], rows), "", note]
