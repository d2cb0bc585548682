"""Render drift and plans for `cvsync diff` and `cvsync plan`: text for people, JSON and
YAML for machines, Markdown for pull-request comments.

Pure: data in, a string out.
"""

from __future__ import annotations

import io
import json
from typing import Any

from ruamel.yaml import YAML

from agent.model.drift import Drift, DriftItem
from agent.model.plan import ApplyPlan
from agent.spec.normalize import requested_update, whole_desired_update
from agent.sync.diff import DESIRED_UPDATE

FORMATS = ("text", "json", "yaml", "markdown")


def _value(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, sort_keys=True)


def _item_document(item: DriftItem) -> dict[str, Any]:
    return {
        "path": item.path,
        "kind": str(item.kind),
        "git": item.desired,
        "live": item.live,
        "owner": item.owner,
        "ownerSince": item.owner_since,
        "detail": item.detail or None,
    }


def _dump(document: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, sort_keys=False) + "\n"
    buffer = io.StringIO()
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    yaml.dump(document, buffer)
    return buffer.getvalue()


def drift_document(cluster: str, revision: str, drift: Drift) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "revision": revision,
        "drifted": len(drift.items),
        "items": [_item_document(item) for item in drift.items],
    }


def render_drift(cluster: str, revision: str, drift: Drift, fmt: str) -> str:
    if fmt in ("json", "yaml"):
        return _dump(drift_document(cluster, revision, drift), fmt)
    if fmt == "markdown":
        if not drift:
            return f"**{cluster}**: the cluster matches git ({revision}).\n"
        rows = [
            f"| `{item.path}` | {item.kind} | `{_value(item.desired)}` | `{_value(item.live)}` "
            f"| {item.owner or ''} |"
            for item in drift.items
        ]
        header = "| field | drift | git | live | owner |\n|---|---|---|---|---|"
        return (
            f"**{cluster}**: {len(rows)} drifted ({revision})\n\n{header}\n"
            + "\n".join(rows)
            + "\n"
        )
    if not drift:
        return f"{cluster}: no drift ({revision})\n"
    lines = [f"{cluster}: {len(drift.items)} drifted ({revision})"]
    for item in drift.items:
        owner = f' (live value owned by "{item.owner}")' if item.owner else ""
        lines.append(f"  {item.kind:8} {item.path}{owner}")
        lines.append(f"    git:  {_value(item.desired)}")
        lines.append(f"    live: {_value(item.live)}")
        if item.owner_since:
            lines.append(f"    since: {item.owner_since} (the owner's last write)")
        if item.detail:
            lines.append(f"    note: {item.detail}")
    return "\n".join(lines) + "\n"


def render_plan(
    cluster: str, revision: str, plan: ApplyPlan, changes: list[dict[str, Any]], fmt: str
) -> str:
    """`changes` are the fields a server-side dry run says the apply would change."""
    document = {
        "cluster": cluster,
        "revision": revision,
        "stalled": plan.stalled,
        "message": plan.message,
        "wouldApply": plan.body is not None and plan.stalled is None,
        "changes": changes,
        "reported": list(plan.reported),
    }
    if fmt in ("json", "yaml"):
        return _dump(document, fmt)
    if fmt == "markdown":
        verdict = (
            f"blocked: **{plan.stalled}**"
            if plan.stalled
            else "applies on merge"
            if document["wouldApply"]
            else "nothing to apply"
        )
        lines = [f"### cvsync plan for `{cluster}` ({revision}): {verdict}", "", plan.message, ""]
        if changes:
            lines += ["| field | live | after apply |", "|---|---|---|"]
            lines += [
                f"| `{c['path']}` | `{_value(c['before'])}` | `{_value(c['after'])}` |"
                for c in changes
            ]
        return "\n".join(lines).rstrip() + "\n"
    lines = [f"{cluster} ({revision}): {plan.message or 'nothing to apply'}"]
    if plan.stalled:
        lines[0] = f"{cluster} ({revision}): stalled ({plan.stalled}): {plan.message}"
    for change in changes:
        lines.append(
            f"  ~ {change['path']}: {_value(change['before'])} -> {_value(change['after'])}"
        )
    return "\n".join(lines) + "\n"


def spec_changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """Leaf-level differences between two specs (lists compared whole), sorted by path.

    desiredUpdate compares as the operator reads it, a field left out being its zero value:
    `architecture: ""` applied where the field was absent changes nothing, so a live object
    read from a status file (which records only what was asked) plans like the cluster."""
    out: list[dict[str, Any]] = []

    def walk(path: str, old: Any, new: Any) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            for key in sorted(set(old) | set(new)):
                walk(f"{path}.{key}", old.get(key), new.get(key))
        elif old != new:
            out.append({"path": path, "before": old, "after": new})

    old_spec = dict((before or {}).get("spec") or {})
    new_spec = dict(after.get("spec") or {})
    old_update, new_update = old_spec.get(DESIRED_UPDATE), new_spec.get(DESIRED_UPDATE)
    if isinstance(old_update, dict) and isinstance(new_update, dict):
        old_spec[DESIRED_UPDATE] = whole_desired_update(old_update)
        new_spec[DESIRED_UPDATE] = whole_desired_update(new_update)
    else:  # one side has none: show what the other asks for
        for spec, update in ((old_spec, old_update), (new_spec, new_update)):
            if isinstance(update, dict):
                spec[DESIRED_UPDATE] = requested_update(update)
    walk(".spec", old_spec, new_spec)
    return out
