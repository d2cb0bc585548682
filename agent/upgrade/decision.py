"""Put the policy and the gates together for one document: what happens to git's target.

Pure: the git document, the live ClusterVersion, the cluster's Policy and `now` in; an
UpgradeCheck out, read by the reconciler and by `cvsync plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

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
        status.get("conditionalUpdates"), available_updates(status.get("availableUpdates"))
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
            risk.name in accepted and (accepted[risk.name] or now) >= now,
        )
        for risk in found.risks
    )


def _instant(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime.combine(moment + timedelta(days=1), time(), UTC)
