"""ClusterVersion status bookkeeping for the operator simulator: timestamps, conditions that keep
their lastTransitionTime until their status flips, and the update history.

Pure: plain dicts in and out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

PARTIAL = "Partial"
COMPLETED = "Completed"


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; naive datetimes are taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return as_utc(moment).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


def condition(
    type_: str, status: str, at: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    """A condition as the API shows it: empty reason and message are left out, keys sorted."""
    built: dict[str, Any] = {"lastTransitionTime": at}
    if message:
        built["message"] = message
    if reason:
        built["reason"] = reason
    built["status"] = status
    built["type"] = type_
    return built


# The order a freshly installed cluster's conditions appear in (compare the 4.14+ captures).
CONDITION_ORDER = (
    "RetrievedUpdates",
    "ImplicitlyEnabledCapabilities",
    "ReleaseAccepted",
    "Available",
    "Failing",
    "Progressing",
    "Upgradeable",
    "Invalid",
)


def _rank(type_: str) -> tuple[int, str]:
    if type_ in CONDITION_ORDER:
        return CONDITION_ORDER.index(type_), type_
    # Upgradeable* sub-conditions sit with Upgradeable, in name order as the CVO sorts them.
    if type_.startswith("Upgradeable"):
        return CONDITION_ORDER.index("Upgradeable"), type_
    return len(CONDITION_ORDER), type_


class Conditions:
    """status.conditions being rewritten: entries keep their place and new ones are appended,
    as the CVO's setter does; several new at once follow CONDITION_ORDER."""

    def __init__(self, existing: Iterable[Mapping[str, Any]]) -> None:
        self._items = [dict(item) for item in existing]
        self._original = [str(item.get("type")) for item in self._items]

    def get(self, type_: str) -> dict[str, Any] | None:
        return next((item for item in self._items if item.get("type") == type_), None)

    def is_status(self, type_: str, status: str) -> bool:
        found = self.get(type_)
        return found is not None and found.get("status") == status

    def set(self, type_: str, status: str, at: str, reason: str = "", message: str = "") -> None:
        """Kubernetes convention: lastTransitionTime moves only when the status changes."""
        old = self.get(type_)
        if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
            at = str(old["lastTransitionTime"])
        new = condition(type_, status, at, reason, message)
        if old is None:
            self._items.append(new)
        else:
            self._items[self._items.index(old)] = new

    def ensure(self, type_: str, status: str, at: str, reason: str = "", message: str = "") -> None:
        if self.get(type_) is None:
            self.set(type_, status, at, reason, message)

    def remove(self, type_: str) -> None:
        self._items = [item for item in self._items if item.get("type") != type_]

    def types(self) -> list[str]:
        return [str(item.get("type")) for item in self._items]

    def as_list(self) -> list[dict[str, Any]]:
        kept = [item for item in self._items if item.get("type") in self._original]
        added = [item for item in self._items if item.get("type") not in self._original]
        added.sort(key=lambda item: _rank(str(item.get("type"))))
        return [dict(item) for item in [*kept, *added]]


def in_flight(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The update being applied: the newest entry while it is Partial and not superseded."""
    if history and history[0].get("state") == PARTIAL and not history[0].get("completionTime"):
        return history[0]
    return None


def last_completed_version(history: Iterable[Mapping[str, Any]]) -> str:
    """The cluster's current version as the CVO reads it: the newest Completed entry, else the
    oldest entry (the install)."""
    entries = list(history)
    for entry in entries:
        if entry.get("state") == COMPLETED:
            return str(entry.get("version", ""))
    return str(entries[-1].get("version", "")) if entries else ""


def start_entry(
    history: list[dict[str, Any]],
    version: str,
    image: str,
    at: str,
    accepted_risks: str | None,
    *,
    verified: bool = True,
) -> None:
    """A new Partial entry at the front; an unfinished one before it is closed at `at`."""
    current = in_flight(history)
    if current is not None:
        current["completionTime"] = at
    entry: dict[str, Any] = {}
    if accepted_risks:
        entry["acceptedRisks"] = accepted_risks
    entry |= {
        "completionTime": None,
        "image": image,
        "startedTime": at,
        "state": PARTIAL,
        "verified": verified,
        "version": version,
    }
    history.insert(0, entry)


def complete_entry(entry: dict[str, Any], at: str) -> None:
    entry["state"] = COMPLETED
    entry["completionTime"] = at


def payload_loaded_message(version: str, image: str) -> str:
    return f'Payload loaded version="{version}" image="{image}" architecture="amd64"'
