"""The cluster-version operator simulator: from a stored ClusterVersion and the time, the status
the CVO would have written by then (updates retrieved, preconditions checked, progress, history).

Pure: no clock, no I/O; the Partial entry's startedTime drives progress, so replays agree.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agent.model.versions import parse_version
from agent.sandbox.apiserver.crd_schema import FeatureSet
from agent.sandbox.operator.knobs import ScenarioKnobs, UpgradeableBlock
from agent.sandbox.operator.payload import Invalid, Payload, Refusal, load
from agent.sandbox.operator.preconditions import (
    check_giant_hop,
    check_recommended,
    check_rollback,
    check_upgradeable,
    set_upgradeable,
    summarize,
    upgradeable_checks,
)
from agent.sandbox.operator.progress import (
    COMPLETED,
    FAIL_AFTER,
    FAILED,
    STALL_AT,
    Clock,
    Plan,
    failing,
    progressing,
)
from agent.sandbox.operator.releases import manifest_count, version_hash
from agent.sandbox.operator.status import (
    Conditions,
    as_utc,
    complete_entry,
    format_time,
    in_flight,
    last_completed_version,
    parse_time,
    payload_loaded_message,
    start_entry,
)
from agent.sandbox.operator.update_service import AcceptRisks, Recommendations, UpdateService

__all__ = ["OperatorSimulator", "ScenarioKnobs", "UpgradeableBlock"]

DEFAULT_UPSTREAM = "https://api.openshift.com/api/upgrades_info/v1/graph"
INVALID = "Invalid"
INVALID_REASON = "InvalidClusterVersion"
RELEASE_ACCEPTED = "ReleaseAccepted"


@dataclass(frozen=True, slots=True)
class _Retrieved:
    """The RetrievedUpdates condition and what came with it."""

    status: str
    reason: str
    message: str
    recommendations: Recommendations


class OperatorSimulator:
    def __init__(
        self,
        graph: UpdateService,
        *,
        knobs: ScenarioKnobs | None = None,
        time_scale: float = 1.0,
        feature_set: FeatureSet = "Default",
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.graph = graph
        self.knobs = knobs or ScenarioKnobs()
        self.time_scale = time_scale
        # The cluster's feature set, as the operator reads it from the cluster; the sandbox's
        # operator loop sets it from the API server's.
        self.feature_set: FeatureSet = feature_set

    @property
    def accepts_risks(self) -> bool:
        """ClusterUpdateAcceptRisks is enabled: TechPreviewNoUpgrade, whose CRD carries
        spec.desiredUpdate.acceptRisks and status.conditionalUpdateRisks."""
        return self.feature_set == "TechPreviewNoUpgrade"

    def reconcile(self, obj: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
        """The complete new status, or None when the stored one is already right."""
        status = self.status_at(obj, now)
        return None if status == (obj.get("status") or {}) else status

    def next_change(self, obj: Mapping[str, Any], now: datetime) -> datetime | None:
        """When the status changes next by itself: `now` if a reconcile is due already, the next
        step of an update under way, or None when nothing will happen without a spec change."""
        now = as_utc(now)
        status = self.status_at(obj, now)
        if status != (obj.get("status") or {}):
            return now
        entry = in_flight(status.get("history") or [])
        if entry is None:
            return None
        clock, plan = self._schedule(entry)
        tick = plan.next_change(clock.tick_at(now))
        return None if tick is None else clock.time_at(tick)

    def status_at(self, obj: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """The status the CVO would show at `now` (a new dict; `obj` is not modified)."""
        now = as_utc(now)
        status: dict[str, Any] = copy.deepcopy(dict(obj.get("status") or {}))
        desired = status.get("desired") or {}
        if not desired.get("version") or not desired.get("image"):
            return status  # nothing installed that the simulator could reason about
        spec: Mapping[str, Any] = obj.get("spec") or {}
        stamp = format_time(now)
        history: list[dict[str, Any]] = status.setdefault("history", [])
        conditions = Conditions(status.get("conditions") or ())
        previous = list(status.get("conditionalUpdates") or ())

        self._finish_due_update(history, now)
        retrieved = self._retrieve(spec, status, str(desired["version"]), stamp, previous)
        set_upgradeable(conditions, upgradeable_checks(spec, history, self.knobs), stamp)
        started = self._take_target(spec, status, conditions, retrieved, stamp)
        if started:
            version = str(status["desired"]["version"])
            retrieved = self._retrieve(spec, status, version, stamp, previous)

        conditions.set(
            "RetrievedUpdates", retrieved.status, stamp, retrieved.reason, retrieved.message
        )
        conditions.ensure(
            "ImplicitlyEnabledCapabilities",
            "False",
            stamp,
            "AsExpected",
            "Capabilities match configured spec",
        )
        self._set_progress(status, conditions, now, just_started=started)
        status["availableUpdates"] = retrieved.recommendations.available
        status["conditionalUpdates"] = retrieved.recommendations.conditional
        if not status["conditionalUpdates"]:
            del status["conditionalUpdates"]
        status["conditionalUpdateRisks"] = list(retrieved.recommendations.risks)
        if not status["conditionalUpdateRisks"]:
            del status["conditionalUpdateRisks"]
        status["conditions"] = conditions.as_list()
        generation = (obj.get("metadata") or {}).get("generation")
        if generation is not None:
            status["observedGeneration"] = generation
        return dict(sorted(status.items()))

    def _schedule(self, entry: Mapping[str, Any]) -> tuple[Clock, Plan]:
        version = str(entry.get("version", ""))
        clock = Clock.for_update(parse_time(str(entry["startedTime"])), self.time_scale)
        plan = Plan(
            manifest_count(version),
            slow_pools=self.knobs.slow_worker_pools,
            failing=self.knobs.fails(version),
        )
        return clock, plan

    def _finish_due_update(self, history: list[dict[str, Any]], now: datetime) -> None:
        entry = in_flight(history)
        if entry is None:
            return
        clock, plan = self._schedule(entry)
        if plan.at(clock.tick_at(now)).phase == COMPLETED:
            complete_entry(entry, format_time(clock.time_at(plan.last_tick)))

    def _retrieve(
        self,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        version: str,
        stamp: str,
        previous: list[dict[str, Any]],
    ) -> _Retrieved:
        """What the update service would answer for the version being reconciled, judged with
        the cluster's facts (and, with ClusterUpdateAcceptRisks, the risks accepted in spec)."""
        none = Recommendations(None, [])
        channel = str(spec.get("channel") or "")
        if not channel:
            return _Retrieved(
                "False", "NoChannel", "The update channel has not been configured.", none
            )
        if self.knobs.update_service_unreachable:
            return _Retrieved("False", "RemoteFailed", _remote_failed(spec, version), none)
        if not self.graph.in_channel(channel, version):
            return _Retrieved(
                "False",
                "VersionNotFound",
                "Unable to retrieve available updates: currently reconciling cluster version "
                f'{version} not found in the "{channel}" channel',
                none,
            )
        accept_risks = None
        if self.accepts_risks:
            named = ((spec.get("desiredUpdate") or {}).get("acceptRisks")) or ()
            accept_risks = AcceptRisks(
                frozenset(str(risk.get("name")) for risk in named),
                tuple(status.get("conditionalUpdateRisks") or ()),
            )
        found = self.graph.recommend(
            version,
            channel,
            self.knobs.facts,
            now=stamp,
            previous=previous,
            accept_risks=accept_risks,
        )
        return _Retrieved("True", "", "", found)

    def _take_target(
        self,
        spec: Mapping[str, Any],
        status: dict[str, Any],
        conditions: Conditions,
        retrieved: _Retrieved,
        stamp: str,
    ) -> bool:
        """Acts on spec.desiredUpdate as the sync worker does: load the payload, run the
        preconditions, and start the update; True when it started one."""
        desired = status["desired"]
        available = retrieved.recommendations.available
        pending = load(spec, status, available, self.graph, self.knobs)
        if isinstance(pending, Invalid):
            # The CVO ignores an invalid desiredUpdate and keeps reconciling what it has.
            conditions.set(INVALID, "True", stamp, INVALID_REASON, pending.message)
            pending = None
        else:
            conditions.remove(INVALID)
        if pending is None:
            loaded = payload_loaded_message(desired["version"], desired["image"])
            conditions.set(RELEASE_ACCEPTED, "True", stamp, "PayloadLoaded", loaded)
            return False
        if isinstance(pending, Refusal):
            conditions.set(RELEASE_ACCEPTED, "False", stamp, pending.reason, pending.message)
            return False
        release = pending.release
        refused, message = self._preconditions(spec, status, conditions, retrieved, pending)
        if refused:
            detail = (
                f'Preconditions failed for payload loaded version="{release.version}" '
                f'image="{pending.image}": {message}'
            )
            conditions.set(RELEASE_ACCEPTED, "False", stamp, "PreconditionChecks", detail)
            return False
        # acceptedRisks: the forced-past signature failure, then the precondition warnings.
        risks = "\n".join(text for text in (pending.unverified, message) if text)
        history = status["history"]
        start_entry(
            history, release.version, pending.image, stamp, risks, verified=pending.verified
        )
        status["desired"] = release.as_status()
        status["versionHash"] = version_hash(pending.image)
        loaded = payload_loaded_message(release.version, pending.image)
        conditions.set(RELEASE_ACCEPTED, "True", stamp, "PayloadLoaded", loaded)
        return True

    def _preconditions(
        self,
        spec: Mapping[str, Any],
        status: Mapping[str, Any],
        conditions: Conditions,
        retrieved: _Retrieved,
        target: Payload,
    ) -> tuple[bool, str | None]:
        desired = status["desired"]
        current, wanted = parse_version(desired["version"]), parse_version(target.release.version)
        failures = []
        if current is not None and wanted is not None:
            failures += [
                check_rollback(current, wanted, desired["image"], status["history"]),
                check_giant_hop(current, wanted),
                check_upgradeable(current, wanted, conditions, spec),
            ]
        failures.append(
            check_recommended(
                desired["version"],
                target.release.version,
                retrieved.recommendations,
                retrieved={"status": retrieved.status, "reason": retrieved.reason},
                spec=spec,
                block_conditional=self.accepts_risks and self.knobs.block_unaccepted_risks,
            )
        )
        return summarize([f for f in failures if f is not None], target.force)

    def _set_progress(
        self,
        status: dict[str, Any],
        conditions: Conditions,
        now: datetime,
        *,
        just_started: bool = False,
    ) -> None:
        """Available, Failing and Progressing for the update under way, or for an idle cluster.
        The status that starts an update has nothing done yet ("Working towards X"), also when
        the whole-second startedTime makes the clock say a tick has passed."""
        history = status["history"]
        version = str(status["desired"]["version"])
        invalid = conditions.get(INVALID) is not None
        stamp = format_time(now)
        entry = in_flight(history)
        if entry is None:
            since = str(history[0].get("completionTime") or stamp) if history else stamp
            conditions.set("Failing", "False", since)
            if invalid:
                message = f"Stopped at {version}: the cluster version is invalid"
                conditions.set("Progressing", "False", since, INVALID_REASON, message)
            else:
                conditions.set(
                    "Progressing", "False", since, message=f"Cluster version is {version}"
                )
        else:
            started = str(entry["startedTime"])
            clock, plan = self._schedule(entry)
            progress = plan.at(0 if just_started else clock.tick_at(now))
            operator = self.knobs.failing_operator
            if progress.phase == FAILED:
                failed_at = format_time(clock.time_at(STALL_AT + FAIL_AFTER))
                conditions.set("Failing", "True", failed_at, *failing(operator))
            else:
                conditions.set("Failing", "False", started)
            reason, message = progressing(version, progress, operator)
            if invalid and progress.phase != FAILED:
                reason = INVALID_REASON
                message = f"Reconciling {version}: the cluster version is invalid"
            conditions.set("Progressing", "True", started, reason, message)
        done = f"Done applying {last_completed_version(history) or version}"
        conditions.set("Available", "True", stamp, message=done)


def _remote_failed(spec: Mapping[str, Any], version: str) -> str:
    """The Go HTTP client's error for an update service whose name does not resolve."""
    upstream = urlsplit(str(spec.get("upstream") or DEFAULT_UPSTREAM))
    query = [
        *parse_qsl(upstream.query),
        ("arch", "amd64"),
        ("channel", str(spec.get("channel", ""))),
        ("id", str(spec.get("clusterID", ""))),
        ("version", version),
    ]
    url = urlunsplit(upstream._replace(query=urlencode(sorted(query))))
    return (
        f'Unable to retrieve available updates: Get "{url}": dial tcp: lookup '
        f"{upstream.hostname} on 172.30.0.10:53: no such host"
    )
