"""The catalogue of rules that check a policy file (`clusters/<name>/policy.yaml`).

Pure data. Ids are stable and all start with `policy-`; YAML-level problems (syntax,
duplicate keys, size, encoding) keep the ids of `agent.model.findings`.
"""

from __future__ import annotations

from agent.model.findings import Rule, Severity

E, W = Severity.ERROR, Severity.WARNING

POLICY_DOCUMENT = Rule(
    "policy-document", E, "the file does not hold exactly one UpgradePolicy mapping"
)
POLICY_API_VERSION = Rule("policy-api-version", E, "apiVersion must be cvsync.io/v1alpha1")
POLICY_UNKNOWN_FIELD = Rule("policy-unknown-field", E, "a field the policy does not define")
POLICY_FIELD_TYPE = Rule("policy-field-type", E, "a policy value of the wrong type or null")
POLICY_REQUIRED_FIELD = Rule("policy-required-field", E, "a required policy field is missing")
POLICY_RISK_INCOMPLETE = Rule(
    "policy-risk-incomplete", E, "an accepted risk lacks name, reason, approvedBy or expires"
)
POLICY_RISK_DATE = Rule("policy-risk-date", E, "an accepted risk's expires is not a date")
POLICY_RISK_DUPLICATE = Rule("policy-risk-duplicate", E, "a risk is accepted twice")
POLICY_RISK_EXPIRED = Rule(
    "policy-risk-expired", W, "an accepted risk has expired and no longer counts"
)
POLICY_FORCE_WINDOW = Rule(
    "policy-force-window", E, "allowForce lacks a valid until date or a reason"
)
POLICY_FORCE_EXPIRED = Rule(
    "policy-force-expired", W, "allowForce has expired and no longer allows force"
)
POLICY_CRON = Rule("policy-cron", E, "a maintenance window's cron expression is invalid")
POLICY_DURATION = Rule("policy-duration", E, "a maintenance window's duration is invalid")
POLICY_STALL_AFTER = Rule("policy-stall-after", E, "stallAfter is not a positive duration")
POLICY_TIME_ZONE = Rule("policy-time-zone", E, "a maintenance window's time zone is unknown")
POLICY_BLACKOUT = Rule("policy-blackout", E, "a blackout's dates are invalid")
POLICY_MODE = Rule("policy-mode", E, "mode is not enforce or observe")
POLICY_DRIFT_ACTION = Rule("policy-drift-action", E, "a drift action is not correct or report")
