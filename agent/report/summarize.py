"""The live ClusterVersion, summarized: versions, update state, conditions, history, updates,
capabilities and overrides, with cvsync's own state; plus what a change of summary means.

Pure: a live object (as the API server returns it, or a one-item `kind: List`) in, data out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from agent.model.clusterversion_api import LIST_KINDS, OVERRIDE_KEYS
from agent.model.drift import DriftItem
from agent.model.status import (
    AgentState,
    Capabilities,
    ConditionSummary,
    Desired,
    DriftAction,
    DriftEntry,
    HistoryEntry,
    Override,
    StatusSummary,
    Transition,
    UpdateState,
    UpdateStatus,
)
from agent.report.status_document import document
from agent.upgrade.lifecycle import git_target, observe_update
from agent.upgrade.status_read import (
    available_updates,
    conditional_updates,
    integer,
    mapping,
    mappings,
    text,
    text_or_none,
    texts,
)

# The conditions a reader looks at first, in this order; any others follow by type.
KEY_CONDITIONS = (
    "Available",
    "Progressing",
    "Failing",
    "Upgradeable",
    "RetrievedUpdates",
    "ReleaseAccepted",
)
_KEY_RANK = {name: rank for rank, name in enumerate(KEY_CONDITIONS)}

# "Working towards 4.14.1: 139 of 859 done (16% complete), waiting on kube-scheduler"
_PERCENT = re.compile(r"\((\d{1,3})% complete\)")
_DONE_OF = re.compile(r"(\d+) of (\d+) done")
# status.desired.architecture is recent (the 4.18 captures lack it), so the payload's
# architecture in ReleaseAccepted's message is the fallback: a move to Multi must show.
_ARCHITECTURE = re.compile(r'architecture="([^"]*)"')
_USERINFO = re.compile(r"(?<=//)[^/?#@\s]*@")


def summarize(
    live: Mapping[str, Any] | None,
    agent: AgentState,
    *,
    history_limit: int = 10,
    now: datetime | None = None,
) -> StatusSummary:
    """Summarize `live`; anything absent, null or of the wrong type reads as "not said", and
    None (the object is gone) summarizes as an object that says nothing. `now` dates a
    lifecycle read from the object alone (without cvsync's own, when the agent has none)."""
    obj = _unwrap(live or {})
    metadata = mapping(obj.get("metadata"))
    spec = mapping(obj.get("spec"))
    status = mapping(obj.get("status"))
    conditions = _conditions(status.get("conditions"))
    by_type = {c.type: c for c in conditions}
    all_history = [_history_entry(e) for e in mappings(status.get("history"))]
    raw_available = status.get("availableUpdates")
    available = available_updates(raw_available)
    return StatusSummary(
        agent=agent,
        cluster_id=text_or_none(spec.get("clusterID")),
        channel=text_or_none(spec.get("channel")),
        upstream=_redacted(text_or_none(spec.get("upstream"))),
        current=next((e for e in all_history if e.state == "Completed"), None),
        desired=_desired(status.get("desired"), spec.get("desiredUpdate"), by_type),
        update=_update_status(by_type, all_history),
        conditions=conditions,
        history=tuple(all_history[: max(history_limit, 0)]),
        history_total=len(all_history),
        available=available,
        conditional=conditional_updates(
            status.get("conditionalUpdates"), available, status.get("conditionalUpdateRisks")
        ),
        capabilities=_capabilities(status.get("capabilities"), spec.get("capabilities")),
        overrides=_overrides(spec.get("overrides")),
        generation=integer(metadata.get("generation")),
        observed_generation=integer(status.get("observedGeneration")),
        available_null="availableUpdates" in status and raw_available is None,
        conditional_absent="conditionalUpdates" not in status,
        lifecycle=agent.update
        or observe_update(git_target(spec), obj, now=now or datetime.fromtimestamp(0, UTC)),
    )


def meaning(summary: StatusSummary) -> str:
    """A key that changes exactly when the written status would change in substance.

    It leaves out heartbeats: when the last cycle ran and how long it took, and the newest
    git revision seen, because cvsync's own status commits move that revision and counting
    it would make every status commit cause the next one."""
    return json.dumps(document(summary, heartbeat=False), sort_keys=True, separators=(",", ":"))


def transition(previous: StatusSummary | None, current: StatusSummary) -> Transition | None:
    """The update-state change from `previous` to `current` that deserves its own commit:
    an update failed, completed, started, or git's target moved to another lifecycle state
    (in that precedence), else None."""
    if previous is None:
        return None
    before, now = previous.update, current.update
    if now.state is UpdateState.FAILING and before.state is not UpdateState.FAILING:
        return Transition.FAILED
    # A new latest Completed entry, also when the whole update happened between two looks.
    if (
        not now.updating
        and current.current is not None
        and _completed_key(previous) != _completed_key(current)
    ):
        return Transition.COMPLETED
    if now.updating and (not before.updating or _target(previous) != _target(current)):
        return Transition.STARTED
    if _lifecycle_key(previous) != _lifecycle_key(current):
        # Every step of git's target (requested, accepted, progressing…) is its own commit.
        return Transition.MOVED
    return None


def _lifecycle_key(summary: StatusSummary) -> tuple[str, str] | None:
    found = summary.lifecycle
    return None if found is None else (found.state.value, found.target)


def drift_entries(
    items: Iterable[DriftItem], corrected: Iterable[str] = ()
) -> tuple[DriftEntry, ...]:
    """Pair drift items with what cvsync did: corrected for the paths it applied over."""
    fixed = set(corrected)
    return tuple(
        DriftEntry(item, DriftAction.CORRECTED if item.path in fixed else DriftAction.REPORTED)
        for item in items
    )


# --- reading the object -----------------------------------------------------------------


def _unwrap(live: Mapping[str, Any]) -> Mapping[str, Any]:
    """`oc get clusterversion -o yaml` gives a List holding the one object."""
    items = live.get("items")
    if live.get("kind") in LIST_KINDS and isinstance(items, list) and items:
        return mapping(items[0])
    return live


def _redacted(url: str | None) -> str | None:
    """Credentials never reach a report: drop every user-info part (`user:token@`), wherever
    it is, so that a malformed URL cannot carry one through either."""
    return _USERINFO.sub("", url) if url else url


def _conditions(raw: Any) -> tuple[ConditionSummary, ...]:
    seen: dict[str, ConditionSummary] = {}
    for entry in mappings(raw):
        kind = text(entry.get("type"))
        if not kind or kind in seen:  # the first of a duplicated type is the one oc shows
            continue
        seen[kind] = ConditionSummary(
            type=kind,
            status=text(entry.get("status")) or "Unknown",
            reason=text_or_none(entry.get("reason")) or None,
            message=text_or_none(entry.get("message")) or None,
            since=text_or_none(entry.get("lastTransitionTime")),
        )
    return tuple(sorted(seen.values(), key=lambda c: (_KEY_RANK.get(c.type, 99), c.type)))


def _history_entry(entry: Mapping[str, Any]) -> HistoryEntry:
    started = text_or_none(entry.get("startedTime"))
    completed = text_or_none(entry.get("completionTime"))
    verified = entry.get("verified")
    return HistoryEntry(
        version=text(entry.get("version")),
        image=text(entry.get("image")),
        state=text(entry.get("state")) or "Unknown",
        started=started,
        completed=completed,
        duration_seconds=_seconds_between(started, completed),
        verified=verified if isinstance(verified, bool) else None,
        accepted_risks=text_or_none(entry.get("acceptedRisks")) or None,
    )


def _seconds_between(start: str | None, end: str | None) -> int | None:
    if not start or not end:
        return None
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (ValueError, TypeError):  # TypeError: one side has a zone, the other not
        return None
    return int(seconds) if seconds >= 0 else None


def _desired(raw: Any, request: Any, conditions: Mapping[str, ConditionSummary]) -> Desired | None:
    if not isinstance(raw, Mapping):
        return None
    architecture = text(raw.get("architecture")) or None
    accepted = conditions.get("ReleaseAccepted")
    if architecture is None and accepted is not None and accepted.message:
        match = _ARCHITECTURE.search(accepted.message)
        architecture = match.group(1) if match and match.group(1) else None
    requested = isinstance(request, Mapping)
    wanted = mapping(request)
    return Desired(
        version=text(raw.get("version")),
        image=text(raw.get("image")),
        url=text_or_none(raw.get("url")) or None,
        channels=texts(raw.get("channels")),
        architecture=architecture,
        requested=requested,
        request_fields=tuple(
            k for k in ("version", "image", "architecture") if text(wanted.get(k))
        ),
        request_values=tuple(
            (k, text(wanted.get(k)))
            for k in ("version", "image", "architecture")
            if text(wanted.get(k))
        ),
        forced=wanted.get("force") is True,
        accept_risks=tuple(text(r.get("name")) for r in mappings(wanted.get("acceptRisks"))),
    )


def _update_status(
    conditions: Mapping[str, ConditionSummary], history: list[HistoryEntry]
) -> UpdateStatus:
    progressing = conditions.get("Progressing")
    failing = conditions.get("Failing")
    if progressing is not None:
        updating = progressing.status == "True"
    else:
        # No Progressing condition (an operator still starting): a Partial entry on top of
        # the history is the update being applied.
        updating = bool(history) and history[0].state == "Partial"
    is_failing = failing is not None and failing.status == "True"
    state = (
        UpdateState.FAILING
        if is_failing
        else UpdateState.PROGRESSING
        if updating
        else UpdateState.IDLE
    )
    message = progressing.message if progressing else None
    failure = None
    if is_failing and failing is not None:
        failure = failing.message or failing.reason or "Failing=True"
    return UpdateStatus(
        state=state,
        updating=updating,
        percent=_percent(message) if updating else None,
        message=message,
        failure=failure,
    )


def _percent(message: str | None) -> int | None:
    if not message:
        return None
    match = _PERCENT.search(message)
    if match:
        return min(int(match.group(1)), 100)
    match = _DONE_OF.search(message)
    if match and int(match.group(2)) > 0:
        return min(int(match.group(1)) * 100 // int(match.group(2)), 100)
    return None


# --- spec-side facts --------------------------------------------------------------------


def _capabilities(status_caps: Any, spec_caps: Any) -> Capabilities | None:
    if not isinstance(status_caps, Mapping) and not isinstance(spec_caps, Mapping):
        return None
    live, wanted = mapping(status_caps), mapping(spec_caps)
    return Capabilities(
        baseline=text_or_none(wanted.get("baselineCapabilitySet")),
        additional=tuple(sorted(set(texts(wanted.get("additionalEnabledCapabilities"))))),
        enabled=tuple(sorted(set(texts(live.get("enabledCapabilities"))))),
        known=tuple(sorted(set(texts(live.get("knownCapabilities"))))),
    )


def _overrides(raw: Any) -> tuple[Override, ...]:
    """Keyed like the API keys the list (kind, group, namespace, name), sorted by that key."""
    keyed = {
        tuple(text(entry.get(key)) for key in OVERRIDE_KEYS): entry for entry in mappings(raw)
    }  # a repeated key (the API server rejects it) keeps its last entry, as a map would
    return tuple(
        Override(
            kind=text(entry.get("kind")),
            group=text(entry.get("group")),
            namespace=text(entry.get("namespace")),
            name=text(entry.get("name")),
            unmanaged=entry.get("unmanaged") is True,
        )
        for _, entry in sorted(keyed.items())
    )


# --- transitions ------------------------------------------------------------------------


def _completed_key(summary: StatusSummary) -> tuple[str, str] | None:
    entry = summary.current
    return (entry.version, entry.image) if entry else None


def _target(summary: StatusSummary) -> tuple[str, str] | None:
    desired = summary.desired
    return (desired.version, desired.image) if desired else None
