"""Whose change a drifted field is, and the policy's drift actions on it: which drifted fields
are corrected and which only reported.

Pure. A field git changed is git's change, applied whoever set the value it replaces; any
other drifted field is a value someone changed away from what git had: drift. `report` on a
field means such a value is reported and left as it is; git's own changes to the field still
apply. `correct` takes the field back, as cvsync does without a policy. desiredUpdate
corrects forward only either way (the plan never rolls a cluster back on its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agent.model.drift import Drift, DriftItem
from agent.model.policy import DriftAction, DriftActions
from agent.spec.normalize import keyed_overrides, override_key
from agent.sync.diff import DESIRED_UPDATE, FIELD_MANAGER, OVERRIDES, diff, render_path
from agent.sync.owners import is_later, last_write

_POLICY_FIELDS = {
    "channel": "channel",
    "upstream": "upstream",
    "capabilities": "capabilities",
    DESIRED_UPDATE: "desired_update",
    OVERRIDES: "overrides",
}


def spec_field(path: str) -> str:
    """The top-level spec field of a drift path: `.spec.overrides[…].unmanaged` → overrides."""
    rest = path.removeprefix(".spec.")
    return rest.split(".", 1)[0].split("[", 1)[0]


def reported_by_policy(item: DriftItem, actions: DriftActions, field_manager: str) -> bool:
    """True when the policy says to report, not correct, this item: its field's action is
    `report`, another writer owns the live value, and the difference is not a change git
    made to the field (that one applies, whoever set the value it replaces)."""
    attribute = _POLICY_FIELDS.get(spec_field(item.path))
    if attribute is None or getattr(actions, attribute) is not DriftAction.REPORT:
        return False
    return not item.by_git and item.owner is not None and item.owner != field_manager


def keep_live_values(
    body_spec: dict[str, Any], live: Mapping[str, Any], held: tuple[DriftItem, ...]
) -> None:
    """Set each held item's field in `body_spec` to its live value: applying a value equal to
    the live one moves nothing and conflicts with no one, while leaving cvsync's other fields
    (and its share of an override entry) as they were."""
    for item in held:
        field = spec_field(item.path)
        if field == OVERRIDES:
            _keep_live_override(body_spec, live, item.path)
        elif field == "capabilities" and isinstance(body_spec.get(field), Mapping):
            sub = item.path.removeprefix(".spec.capabilities.").split(".", 1)[0]
            caps = dict(body_spec[field])
            _copy(caps, mapping(live.get(field)), sub)
            body_spec[field] = caps
        elif field != DESIRED_UPDATE:
            _copy(body_spec, live, field)


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _copy(target: dict[str, Any], live: Mapping[str, Any], key: str) -> None:
    if key in live:
        target[key] = live[key]
    else:
        target.pop(key, None)


def _keep_live_override(body_spec: dict[str, Any], live: Mapping[str, Any], path: str) -> None:
    entries = body_spec.get(OVERRIDES)
    if not isinstance(entries, list):
        return
    live_entries = keyed_overrides(live.get(OVERRIDES))
    kept = []
    for entry in entries:
        key = override_key(entry) if isinstance(entry, Mapping) else None
        prefix = render_path(("spec", OVERRIDES, dict(entry))) if key else ""
        if key is not None and path.startswith(prefix) and key in live_entries:
            kept.append(live_entries[key])
        else:
            kept.append(entry)
    body_spec[OVERRIDES] = kept


# --- whose change: git's or someone else's ----------------------------------------------


@dataclass(frozen=True, slots=True)
class GitChanges:
    """What cvsync remembers between cycles to tell git's changes from someone else's.

    `spec` is git's spec at the previous cycle (None before the first one); `pending` the
    paths git changed that no apply has carried out yet (held by a gate, refused, failed).
    A drifted path that git changed is git's change, whoever owns the live value; any other
    drifted path is a value someone changed away from what git had.
    """

    spec: Mapping[str, Any] | None = None
    pending: frozenset[str] = frozenset()

    def seen(
        self,
        spec: Mapping[str, Any],
        drift: Drift,
        live_obj: Mapping[str, Any] | None,
        *,
        field_manager: str = FIELD_MANAGER,
    ) -> GitChanges:
        """The changes as of this cycle, whose git spec is `spec` and drift `drift`."""
        if self.spec is None:
            # A fresh start knows no earlier spec: ask managedFields instead.
            fresh = (i.path for i in drift.items if not _set_since(i, live_obj, field_manager))
            return GitChanges(spec, frozenset(fresh))
        changed = diff(spec, {"spec": self.spec}, field_manager=field_manager).paths
        return GitChanges(spec, self.pending | frozenset(changed))

    def marked(self, drift: Drift) -> Drift:
        """`drift` with each item's `by_git` set."""
        return Drift(tuple(replace(i, by_git=_overlaps(i.path, self.pending)) for i in drift.items))

    def settled(self, drift: Drift, corrected: Iterable[str]) -> GitChanges:
        """After the cycle: git's changes that still drift and were not applied stay pending."""
        done = set(corrected)
        waiting = [item.path for item in drift.items if item.path not in done]
        pending = frozenset(p for p in self.pending if any(_overlaps(w, {p}) for w in waiting))
        return GitChanges(self.spec, pending)


def taken_back(conflicts: Iterable[tuple[str, str]], drift: Drift) -> tuple[tuple[str, str], ...]:
    """The (field, owner) conflicts a forced apply won that were drift: someone else's value
    under a spec field where some drifted item is not git's change. A field git changed
    belongs to git, whoever held it (the installer's `cluster-bootstrap`, say)."""
    drifted = {spec_field(item.path) for item in drift.items if not item.by_git}
    return tuple((field, owner) for field, owner in conflicts if spec_field(field) in drifted)


def _set_since(item: DriftItem, live_obj: Mapping[str, Any] | None, field_manager: str) -> bool:
    """Without git's previous spec: whether another manager set the live value after cvsync
    last wrote. When cvsync shares the value, never wrote, or the times cannot tell, there is
    no sign of a change away from git, and the difference is git's."""
    if item.owner is None or field_manager in item.owner.split(", "):
        return False
    return is_later(item.owner_since, last_write(live_obj, field_manager))


def _overlaps(path: str, paths: Iterable[str]) -> bool:
    """Whether `path` is one of `paths`, inside one, or holds one (`.spec.capabilities` and
    `.spec.capabilities.baselineCapabilitySet` overlap)."""
    return any(_within(path, other) or _within(other, path) for other in paths)


def _within(path: str, other: str) -> bool:
    return path == other or path.startswith((other + ".", other + "["))
