"""The README is the contract: it documents every rule, and CI runs its test command."""

from __future__ import annotations

from conftest import REPO_ROOT

from agent.model import findings, policy_rules

README = (REPO_ROOT / "README.md").read_text()


def test_every_rule_in_the_catalogue_is_documented_with_its_severity() -> None:
    catalogue = [rule for rule in vars(findings).values() if isinstance(rule, findings.Rule)]
    assert len(catalogue) >= 40
    for rule in catalogue:
        assert f"| `{rule.id}` | {rule.severity} |" in README, rule.id


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "\nmake check\n" in ci
    assert "\nmake check\n" in README


def test_every_policy_rule_is_documented() -> None:
    catalogue = [rule for rule in vars(policy_rules).values() if isinstance(rule, findings.Rule)]
    assert len(catalogue) >= 15
    for rule in catalogue:
        assert f"`{rule.id}`" in README, rule.id
