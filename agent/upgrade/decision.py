"""Put the policy and the gates together for one document: what happens to git's target, and
the risks the policy accepts as the cluster's own spec.desiredUpdate.acceptRisks.

Pure: the git document, the live ClusterVersion, the cluster's Policy and `now` in; an
UpgradeCheck (or the desired state the cluster is sent) out, read by the reconciler and by
`cvsync plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from agent.model.clusterversion_api import ACCEPT_RISKS
from agent.model.desired import DesiredState
from agent.model.gates import GateSettings, RiskVerdict, UpgradeCheck
from agent.model.policy import Policy
from agent.sync.diff import DESIRED_UPDATE
from agent.upgrade.gates import evaluate_gates
from agent.upgrade.status_read import available_updates, conditional_updates, mapping
from agent.upgrade.windows import window_state


def gate_settings(policy: Policy) -> GateSettings:
    """What the gates read from the policy; an expiry date counts to the end of that day, UTC."""
    force = policy.allow_force
    return GateSettings(
        allow_not_recommended=policy.allow_not_recommended,
        accepted_risks={risk.name: _instant(risk.expires) for risk in policy.accepted_risks},
        allow_force_until=_instant(force.until) if force is not None else None,
        allow_force_written=force.written if force is not None else "",
        require_digest=policy.require_digest,
        allow_minor=policy.allow_minor,
        allow_major=policy.allow_major,
        allow_retarget_while_progressing=policy.allow_retarget_while_progressing,
    )


def accepted_risk_names(policy: Policy, now: datetime) -> tuple[str, ...]:
    """The risks the policy accepts at `now` (their acceptance not yet expired), by name."""
    accepted = gate_settings(policy).accepted_risks
    return tuple(sorted(name for name, until in accepted.items() if _in_force(until, now)))


def with_accepted_risks(desired: DesiredState, names: tuple[str, ...]) -> DesiredState:
    """git's desired state with `names` as spec.desiredUpdate.acceptRisks, for a cluster whose
    CRD declares the field (ClusterUpdateAcceptRisks): the operator then judges a conditional
    update with the risks the policy accepts. Only where git declares desiredUpdate; with no
    names the field stays out (the CRD allows no empty list)."""
    update = desired.spec.get(DESIRED_UPDATE)
    if not isinstance(update, Mapping) or not names:
        return desired
    accept = [{"name": name} for name in names]
    spec = {**desired.spec, DESIRED_UPDATE: {**update, ACCEPT_RISKS: accept}}
    return replace(desired, spec=spec)


def check_upgrade(
    desired: DesiredState, live: Mapping[str, Any], policy: Policy, now: datetime
) -> UpgradeCheck:
    """Gate git's spec.desiredUpdate against the live object under `policy` at `now`."""
    window = window_state(policy, now)
    annotations = desired.annotations
    wanted = desired.spec.get(DESIRED_UPDATE)
    decision = evaluate_gates(
        wanted,
        live,
        gate_settings(policy),
        now=now,
        window_open=window.open,
        window_note=window.note,
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
    target = ""
    if isinstance(wanted, Mapping):
        target = str(wanted.get("version") or wanted.get("image") or "")
    return UpgradeCheck(decision, window, target, _risks(wanted, live, policy, now))


def _risks(
    wanted: Any, live: Mapping[str, Any], policy: Policy, now: datetime
) -> tuple[RiskVerdict, ...]:
    """The risks of the conditional update git targets, each marked accepted or not."""
    if not isinstance(wanted, Mapping):
        return ()
    image, version = str(wanted.get("image") or ""), str(wanted.get("version") or "")
    status = mapping(live.get("status"))
    listed = conditional_updates(
        status.get("conditionalUpdates"),
        available_updates(status.get("availableUpdates")),
        status.get("conditionalUpdateRisks"),
    )
    found = next(
        (
            c
            for c in listed
            if (c.release.image == image if image else c.release.version == version)
        ),
        None,
    )
    if found is None or found.recommended == "True":
        return ()
    accepted = gate_settings(policy).accepted_risks
    return tuple(
        RiskVerdict(
            risk.name,
            risk.message,
            risk.url,
            risk.name in accepted and _in_force(accepted[risk.name], now),
        )
        for risk in found.risks
    )


def _in_force(until: datetime | None, now: datetime) -> bool:
    """An acceptance counts before its end (the gates judge it the same way)."""
    return until is None or until > now


def _instant(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment + timedelta(days=1), time(), UTC)
