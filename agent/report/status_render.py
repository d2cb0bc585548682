"""Render a StatusSummary: YAML for status/<cluster>.yaml, JSON for `-o json`, text for
`cvsync status`, and (from status_markdown) Markdown for status/<cluster>.md and drift reports.

Pure: a summary in, a string out; the same summary always gives the same bytes.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from ruamel.yaml.emitter import Emitter
from ruamel.yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.representer import SafeRepresenter
from ruamel.yaml.resolver import Resolver

from agent.model.status import StatusSummary, UpdateState
from agent.report.markdown_cells import duration_text, progress_bar
from agent.report.status_document import (
    GENERATED_BY,
    FlowList,
    document,
    printable,
    revision_of,
)
from agent.report.status_markdown import (
    render_drift_report_markdown,
    render_markdown,
    target_text,
)

__all__ = [
    "render_drift_report_markdown",
    "render_json",
    "render_markdown",
    "render_text",
    "render_yaml",
    "yaml_text",
]

_YamlEmitter: type[Any]
try:
    from ruamel.yaml.cyaml import CEmitter  # type: ignore[attr-defined]  # clib or clibz

    _YamlEmitter = CEmitter
except ImportError:  # ruamel.yaml.clib is absent: the pure-Python emitter
    _YamlEmitter = Emitter

_STR_TAG = "tag:yaml.org,2002:str"

# Long single-line messages stay on one line: a wrapped scalar re-wraps when a word changes,
# which turns a one-word change into a many-line diff.
_YAML_WIDTH = 4096
# (plain_implicit, quoted_implicit) as the serializer would give them, so no tag is written.
_TYPED = (True, False)  # null, booleans and numbers: plain, and they read back as their type
_STRING = (True, True)  # a string that reads back as a string whether plain or quoted
_QUOTED = (False, True)  # a string that plain would turn into another type: always quoted
# YAML 1.1 readers (PyYAML, go-yaml v2 under sigs.k8s.io/yaml) also read these as booleans
# and base-60 numbers; ruamel's 1.2 resolver does not, so they are quoted here.
_YAML11 = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$"
)


def render_yaml(summary: StatusSummary) -> str:
    header = (
        f"# {GENERATED_BY}\n"
        f"# cluster: {printable(summary.agent.cluster)}; revision: {revision_of(summary)}\n"
    )
    return header + yaml_text(document(summary))


def yaml_text(data: Any) -> str:
    """YAML for a document of JSON values, emitted by ruamel.yaml from events.

    Events rather than `YAML.dump`: the representer and serializer cost about 10 µs a node
    and a summary of a cluster with 90 update targets has 2,000 nodes; the emitter itself (C
    when ruamel.yaml.clib is installed) is fast. Quoting is decided as the serializer does:
    a string is written plain only when the resolver reads the plain text back as a string.
    Key order is the document's; multi-line text is a literal block when the emitter allows
    one; FlowList values are written on one line.

    The emitter alone, not `YAML.emit`: that builds a new dumper class (emitter, representer
    and resolver in one object pointing at itself) on every call, garbage in a cycle that
    kept libyaml's buffers (some 40 kB, unseen by tracemalloc) until a full garbage
    collection, minutes apart in `cvsync run`. The emitter alone is freed on return."""
    events: list[Any] = [StreamStartEvent(), DocumentStartEvent(explicit=False)]
    _events(data, events, _Quoting())
    events += [DocumentEndEvent(explicit=False), StreamEndEvent()]
    buffer = io.StringIO()
    emitter = _YamlEmitter(buffer, width=_YAML_WIDTH, allow_unicode=True)
    for event in events:
        emitter.emit(event)
    return buffer.getvalue()


class _Quoting:
    """Whether a string must be quoted, memoized: values repeat (True, channel names)."""

    def __init__(self) -> None:
        self.resolver = Resolver()
        self.known: dict[str, bool] = {}

    def plain_is_string(self, text: str) -> bool:
        known = self.known.get(text)
        if known is None:
            tag = self.resolver.resolve(ScalarNode, text, (True, False))
            known = tag == _STR_TAG and not _YAML11.match(text)
            self.known[text] = known
        return known


def _events(value: Any, out: list[Any], quoting: _Quoting) -> None:
    if isinstance(value, dict):
        out.append(MappingStartEvent(None, None, True, flow_style=False))
        for key, item in value.items():
            _scalar(str(key), out, quoting)
            _events(item, out, quoting)
        out.append(MappingEndEvent())
    elif isinstance(value, list):
        out.append(SequenceStartEvent(None, None, True, flow_style=isinstance(value, FlowList)))
        for item in value:
            _events(item, out, quoting)
        out.append(SequenceEndEvent())
    elif value is None or isinstance(value, bool):
        out.append(
            ScalarEvent(None, None, _TYPED, {None: "null", True: "true", False: "false"}[value])
        )
    elif isinstance(value, int):
        out.append(ScalarEvent(None, None, _TYPED, str(value)))
    elif isinstance(value, float):
        out.append(ScalarEvent(None, None, _TYPED, SafeRepresenter().represent_float(value).value))
    else:
        _scalar(str(value), out, quoting)


def _scalar(text: str, out: list[Any], quoting: _Quoting) -> None:
    # The emitter falls back to quoting when a literal block cannot hold the text (trailing
    # spaces, control characters), so the block style is only ever a preference.
    style = "|" if "\n" in text else None
    implicit = _STRING if quoting.plain_is_string(text) else _QUOTED
    out.append(ScalarEvent(None, None, implicit, text, style=style))


def render_json(summary: StatusSummary) -> str:
    return json.dumps(document(summary), indent=2, ensure_ascii=False) + "\n"


def render_text(summary: StatusSummary) -> str:
    """`cvsync status`: what a person at a terminal wants first, in under a screen."""
    lines = [f"{summary.agent.cluster}: {_headline(summary)}"]
    add = lines.append
    if summary.cluster_id:
        add(f"  cluster ID:  {summary.cluster_id}")
    add(f"  channel:     {summary.channel or '(none)'}")
    if summary.upstream:
        add(f"  upstream:    {summary.upstream}")
    lifecycle = summary.lifecycle
    if lifecycle is not None and lifecycle.target:
        add(f"  update:      {_one_line(lifecycle.describe())}")
    update = summary.update
    if update.updating and update.message:
        add(f"  progress:    {_one_line(update.message)}")
    if update.failure:
        add(f"  failing:     {_one_line(update.failure)}")
    if summary.stale:
        add(
            f"  stale:       status observed generation {summary.observed_generation}, "
            f"spec is at {summary.generation}"
        )
    add("  conditions:")
    width = max((len(c.type) for c in summary.conditions), default=0)
    for c in summary.conditions:
        reason = f" ({c.reason})" if c.reason else ""
        message = f": {_one_line(c.message, 100)}" if c.message else ""
        add(f"    {c.type:<{width}}  {c.status}{reason}{message}")
    add(f"  updates:     {_update_counts(summary)}")
    for target in summary.available[:5]:
        add(f"    {target.version:<24} {target.image}")
    if len(summary.available) > 5:
        add(f"    … and {len(summary.available) - 5} more")
    add(f"  history:     {len(summary.history)} of {summary.history_total} shown")
    for entry in summary.history:
        took = duration_text(entry.duration_seconds) if entry.duration_seconds is not None else ""
        verified = {True: "verified", False: "not verified", None: ""}[entry.verified]
        add(
            f"    {entry.version or '(no version)':<24} {entry.state:<9} "
            f"{entry.started or '':<20} {took:<8} {verified}".rstrip()
        )
    agent = summary.agent
    # A one-shot `cvsync status` has no agent behind it: no line about cycles it never ran.
    if agent.last_result or agent.last_applied or agent.drift or agent.conflicts:
        add(f"  cvsync:      {_agent_line(summary)}")
    return "\n".join(lines) + "\n"


def _headline(summary: StatusSummary) -> str:
    update = summary.update
    current = summary.current_version or "(no completed version)"
    if update.updating:
        bar = f" {progress_bar(update.percent)}" if update.percent is not None else ""
        words = "failing while updating" if update.state is UpdateState.FAILING else "updating"
        return f"{words} {current} -> {target_text(summary)}{bar}"
    if update.state is UpdateState.FAILING:
        return f"failing at {current}"
    return f"idle at {current}"


def _update_counts(summary: StatusSummary) -> str:
    if summary.available_null and not summary.conditional:
        return "none listed (availableUpdates is null)"
    return (
        f"{len(summary.available)} available, {len(summary.conditional)} conditional "
        f"({summary.recommended_conditional} of them recommended and counted as available, "
        f"{len(summary.not_recommended)} not recommended)"
    )


def _agent_line(summary: StatusSummary) -> str:
    agent = summary.agent
    parts = [agent.last_result or "no cycle yet"]
    if agent.last_reason and agent.last_reason != agent.last_result:
        parts[0] += f" ({agent.last_reason})"
    if agent.last_applied:
        parts.append(f"applied {agent.last_applied}")
    if agent.last_attempted:
        parts.append(f"read {agent.last_attempted}")
    corrected = sum(1 for e in agent.drift if e.action == "corrected")
    if agent.drift:
        parts.append(f"drift: {len(agent.drift)} ({corrected} corrected)")
    if agent.conflicts:
        parts.append(f"conflicts: {len(agent.conflicts)}")
    return "; ".join(parts)


def _one_line(text: str | None, limit: int = 200) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
