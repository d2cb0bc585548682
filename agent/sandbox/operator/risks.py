"""How the cluster-version operator judges conditional-update risks: the facts a cluster's
PromQL rules would report, the Recommended condition of each conditional update and, with
ClusterUpdateAcceptRisks, each risk's Applies condition; risks in the ClusterVersion shape.

Pure: risks, the cluster's facts and the accepted risk names in, condition dicts out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.upgrade.graph import ALWAYS, PROMQL, MatchingRule, Risk

RECOMMENDED = "Recommended"
APPLIES = "Applies"
NOT_EXPOSED_REASON = "AsExpected"
NOT_EXPOSED_MESSAGE = (
    "The update is recommended, because none of the conditional update risks apply to this cluster."
)
ALL_ACCEPTED_REASON = "AllExposedRisksAccepted"
ALL_ACCEPTED_MESSAGE = (
    "The update is recommended, because either risk does not apply to this cluster or it is "
    "accepted by cluster admins."
)
MULTIPLE_REASONS = "MultipleReasons"
EVALUATION_FAILED = "EvaluationFailed"
# Risk names become condition reasons only when they are valid reasons; the CVO then says this.
_EXPOSED_REASON = "ExposedToRisks"
_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
# False beats Unknown beats True.
_SEVERITY = {"True": 0, "Unknown": 1, "False": 2}


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    """What the cluster's PromQL rules would return: risk name -> matches, or an evaluation error.

    Risks absent from both tables do not match; Always rules match regardless.
    """

    matches: Mapping[str, bool] = field(default_factory=dict)
    failures: Mapping[str, str] = field(default_factory=dict)

    def exposure(self, risk: Risk) -> bool | None:
        """True when the risk applies, False when not, None when evaluating it failed."""
        if any(rule.type == ALWAYS for rule in risk.matching_rules):
            return True
        if risk.name in self.failures:
            return None
        return bool(self.matches.get(risk.name, False))


def risk_status(risk: Risk) -> dict[str, Any]:
    """A risk as status.conditionalUpdates[].risks lists it."""
    return {
        "matchingRules": [_rule_status(rule) for rule in risk.matching_rules],
        "message": risk.message,
        "name": risk.name,
        "url": risk.url,
    }


def _rule_status(rule: MatchingRule) -> dict[str, Any]:
    if rule.type == PROMQL:
        return {"promql": {"promql": rule.promql}, "type": PROMQL}
    return {"type": rule.type}


def _worse(now: str, want: str) -> str:
    return now if _SEVERITY[now] >= _SEVERITY[want] else want


def _merged_reason(now: str, want: str) -> str:
    """The reasons of several risks fold into one; two different ones make MultipleReasons."""
    if now in (NOT_EXPOSED_REASON, ALL_ACCEPTED_REASON) or now == want:
        return want
    return MULTIPLE_REASONS


def recommended_condition(
    risks: Sequence[Risk], facts: ClusterFacts, accepted: Iterable[str] = ()
) -> dict[str, Any]:
    """The Recommended condition of one conditional update. `accepted` names risks the admin
    accepted (spec.desiredUpdate.acceptRisks, read only with ClusterUpdateAcceptRisks): an
    accepted risk that applies no longer makes the update not recommended."""
    names = frozenset(accepted)
    status, reason, message = "True", NOT_EXPOSED_REASON, NOT_EXPOSED_MESSAGE
    problems: list[str] = []
    for risk in risks:
        exposure = facts.exposure(risk)
        if exposure is None:
            status = _worse(status, "Unknown")
            reason = _merged_reason(reason, EVALUATION_FAILED)
            problems.append(
                f"Exposure to {risk.name} is unknown due to an evaluation failure: "
                f"{facts.failures[risk.name]}\n{risk.message} {risk.url}"
            )
        elif exposure and risk.name in names:
            reason = _merged_reason(reason, ALL_ACCEPTED_REASON)
            message = ALL_ACCEPTED_MESSAGE
        elif exposure:
            status = _worse(status, "False")
            named = risk.name if _REASON.match(risk.name) else _EXPOSED_REASON
            reason = _merged_reason(reason, named)
            problems.append(f"{risk.message} {risk.url}")
    if problems:
        message = "\n\n".join(problems)
    return {"message": message, "reason": reason, "status": status, "type": RECOMMENDED}


def applies_condition(risk: Risk, facts: ClusterFacts) -> dict[str, Any]:
    """Whether a risk applies to this cluster, as a metav1.Condition (message always present)
    without its lastTransitionTime."""
    exposure = facts.exposure(risk)
    if exposure is None:
        failure = facts.failures[risk.name]
        message = (
            f"Could not evaluate exposure to update risk {risk.name} ({failure})\n"
            f"  {risk.name} description: {risk.message}\n"
            f"  {risk.name} URL: {risk.url}"
        )
        status, reason = "Unknown", EVALUATION_FAILED
        return {"message": message, "reason": reason, "status": status, "type": APPLIES}
    status, reason = ("True", "Match") if exposure else ("False", "NotMatch")
    return {"message": "", "reason": reason, "status": status, "type": APPLIES}


def risk_conditions(
    risks: Iterable[Risk],
    facts: ClusterFacts,
    *,
    now: str,
    previous: Sequence[Mapping[str, Any]] = (),
) -> dict[str, dict[str, Any]]:
    """Each risk's Applies condition by name; a lastTransitionTime survives from `previous`
    (the stored status.conditionalUpdateRisks) while the status holds."""
    kept = {
        str(risk.get("name")): condition
        for risk in previous
        for condition in risk.get("conditions") or ()
        if condition.get("type") == APPLIES
    }
    found = {}
    for risk in risks:
        condition = applies_condition(risk, facts)
        old = kept.get(risk.name)
        same = old is not None and old.get("status") == condition["status"]
        condition["lastTransitionTime"] = old["lastTransitionTime"] if same and old else now
        found[risk.name] = dict(sorted(condition.items()))
    return found
