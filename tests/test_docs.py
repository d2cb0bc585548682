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


def test_the_module_map_names_every_package_and_module_of_the_agent() -> None:
    """The README's module map matches the tree: every package folder and every module of the
    pure packages, the engine and the command line is named there."""
    section = README[README.index("## Development") :]
    agent = REPO_ROOT / "agent"
    for package in sorted(p for p in agent.iterdir() if (p / "__init__.py").exists()):
        assert f"{package.name}/" in section, package.name
        if package.name in ("spec", "sync", "upgrade", "report", "model", "engine", "cli"):
            for module in sorted(package.glob("*.py")):
                if module.stem != "__init__":
                    assert f"`{module.stem}`" in section, f"{package.name}/{module.name}"
