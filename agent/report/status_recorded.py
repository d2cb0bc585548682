"""What a status file cvsync committed says about the agent that wrote it: the revision it
last applied, and when git's target last made progress. Read by the next agent after a
restart or a change of leader, and by `cvsync status --wait` in a checkout.

Pure: bytes in, a RecordedStatus out; anything unreadable reads as nothing recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from agent.model.lifecycle import RecordedProgress
from agent.model.revision import Revision


def status_path(cluster: str) -> str:
    """Where a cluster's status file sits in the repository (on its status branch)."""
    return f"status/{cluster}.yaml"


@dataclass(frozen=True, slots=True)
class RecordedStatus:
    """What the status file cvsync wrote before (a restart, another leader) says."""

    last_applied: Revision | None = None
    progress: RecordedProgress | None = None


# The lifecycle states of git's target whose progress time a status file carries over.
_MOVING_STATES = frozenset({"accepted", "progressing", "stalled"})


def recorded_in(data: bytes | None) -> RecordedStatus:
    """cvsync.lastApplied and the update's progress of a status file cvsync wrote; empty
    when absent or unreadable."""
    if not data:
        return RecordedStatus()
    try:
        document = YAML(typ="safe").load(data)
    except YAMLError:
        return RecordedStatus()
    if not isinstance(document, dict):
        return RecordedStatus()
    agent, update = document.get("cvsync"), document.get("update")
    text = agent.get("lastApplied") if isinstance(agent, dict) else None
    last_applied = Revision.parse(text) if isinstance(text, str) else None
    return RecordedStatus(last_applied, _progress_in(update))


def _progress_in(update: Any) -> RecordedProgress | None:
    if not isinstance(update, dict) or update.get("state") not in _MOVING_STATES:
        return None
    target, message, moved = (update.get(key) for key in ("target", "message", "progressAt"))
    if not (isinstance(target, str) and isinstance(message, str) and isinstance(moved, str)):
        return None
    try:
        progress_at = datetime.fromisoformat(moved.replace("Z", "+00:00"))
    except ValueError:
        return None
    return RecordedProgress(target, message, progress_at)
