"""cvsync against the ClusterVersion CRD's own test suite (openshift/api, AAA_ungated.yaml).

Every case of the suite that concerns `spec` is validated offline: where the CRD rejects the
object, cvsync must report an error under the rule for the CRD's message; where the CRD
accepts it, cvsync must report no error, apart from the places where cvsync is stricter on
purpose, each named below with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from conftest import corpus_path
from ruamel.yaml import YAML

from agent.model import findings as rules
from agent.model.findings import Finding, Severity
from agent.spec.parse import parse_text
from agent.spec.validate import validate_document

pytestmark = pytest.mark.corpus

SUITE = ("crd", "tests", "AAA_ungated.yaml")

# The harness writes `clusterID: foo`; cvsync requires an RFC 4122 UUID on purpose.
IGNORED_RULES: dict[str, str] = {
    rules.CLUSTER_ID_FORMAT.id: (
        "the openshift/api harness uses clusterID 'foo'; the CRD only asks for a string, but "
        "cvsync requires the RFC 4122 UUID the cluster-version operator generates, on purpose"
    ),
}

# Cases the CRD accepts and cvsync rejects on purpose: case name -> (rule id, reason).
STRICTER_ON_PURPOSE: dict[str, tuple[str, str]] = {
    "Should be able to add the marketplace capability with a ClusterVersion with base "
    "capability None, and implicitly enabled OperatorLifecycleManager": (
        rules.CAPABILITY_REQUIRES.id,
        "the CRD accepts marketplace here only because the live status shows "
        "OperatorLifecycleManager enabled implicitly; cvsync validates desired specs offline "
        "and requires OperatorLifecycleManager in the spec explicitly",
    ),
}

# A fragment of the CRD's validation message -> the cvsync rule that reports it.
RULE_FOR_CRD_MESSAGE: dict[str, str] = {
    "cannot set both Architecture and Image": rules.DESIRED_UPDATE_IMAGE_AND_ARCHITECTURE.id,
    "Version must be set if Architecture is set": (
        rules.DESIRED_UPDATE_ARCHITECTURE_NEEDS_VERSION.id
    ),
    "the `marketplace` capability requires the `OperatorLifecycleManager` capability": (
        rules.CAPABILITY_REQUIRES.id
    ),
}


@dataclass(frozen=True, slots=True)
class SuiteCase:
    """One case of the suite: the object the API server validates and its verdict."""

    name: str
    phase: str
    text: str
    expected_error: str | None

    @property
    def crd_rejects(self) -> bool:
        return self.expected_error is not None


def _load_suite() -> dict[str, Any] | None:
    try:
        path = corpus_path(*SUITE)
    except pytest.skip.Exception:
        return None
    loaded: dict[str, Any] = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return loaded


def _concerns_spec(text: str) -> bool:
    body = YAML(typ="safe").load(text)
    return isinstance(body, dict) and "spec" in body


def _suite_cases() -> list[SuiteCase]:
    suite = _load_suite()
    if suite is None:
        return []
    cases: list[SuiteCase] = []
    for phase, field in (("onCreate", "initial"), ("onUpdate", "updated")):
        for case in suite["tests"].get(phase, []):
            text = case[field]
            if _concerns_spec(text):
                cases.append(SuiteCase(case["name"], phase, text, case.get("expectedError")))
    return cases


CASES = _suite_cases()


def _params(cases: list[SuiteCase]) -> list[Any]:
    if not cases:
        # Collected without the corpus: one placeholder that skips through corpus_path.
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(case, id=case.name) for case in cases]


def _case_or_skip(case: SuiteCase | None) -> SuiteCase:
    if case is None:
        corpus_path(*SUITE)
        pytest.fail("the corpus is present but no case was collected from it")
    return case


def _with_object_name(text: str) -> str:
    """The harness names objects itself; a desired spec names the only ClusterVersion."""
    assert not any(line.startswith("metadata:") for line in text.splitlines())
    return "metadata: {name: version}\n" + text


def _cvsync_errors(text: str) -> list[Finding]:
    parsed = parse_text(_with_object_name(text), "case.yaml")
    assert len(parsed.documents) == 1, parsed.findings
    found = list(parsed.findings)
    for doc in parsed.documents:
        found.extend(validate_document(doc))
    return [f for f in found if f.severity is Severity.ERROR and f.rule not in IGNORED_RULES]


def _rule_for(expected_error: str) -> str:
    matches = [rule for part, rule in RULE_FOR_CRD_MESSAGE.items() if part in expected_error]
    assert len(matches) == 1, f"no cvsync rule is mapped to the CRD message {expected_error!r}"
    return matches[0]


@pytest.mark.parametrize("case", _params(CASES))
def test_every_ungated_case_gets_the_crds_answer(case: SuiteCase | None) -> None:
    case = _case_or_skip(case)
    errors = _cvsync_errors(case.text)
    shown = [(f.rule, f.message) for f in errors]
    if case.name in STRICTER_ON_PURPOSE:
        rule, reason = STRICTER_ON_PURPOSE[case.name]
        assert not case.crd_rejects, f"the CRD now rejects this case too; drop it: {reason}"
        assert [f.rule for f in errors] == [rule], shown
    elif case.crd_rejects:
        assert errors, f"the CRD rejects this object ({case.expected_error}); cvsync does not"
    else:
        assert errors == [], f"the CRD accepts this object; cvsync reports {shown}"


@pytest.mark.parametrize("case", _params([c for c in CASES if c.crd_rejects]))
def test_every_rejection_is_reported_under_the_rule_for_the_crds_message(
    case: SuiteCase | None,
) -> None:
    case = _case_or_skip(case)
    assert case.expected_error is not None
    expected_rule = _rule_for(case.expected_error)
    errors = _cvsync_errors(case.text)
    assert {f.rule for f in errors} == {expected_rule}, [(f.rule, f.message) for f in errors]


def test_every_case_named_as_stricter_on_purpose_is_still_in_the_suite() -> None:
    corpus_path(*SUITE)
    names = {case.name for case in CASES}
    assert set(STRICTER_ON_PURPOSE) <= names
    assert len(names) == len(CASES), "two cases share a name, so their ids would collide"


def test_the_suite_exercises_both_verdicts_and_every_mapped_message() -> None:
    corpus_path(*SUITE)
    assert any(case.crd_rejects for case in CASES)
    assert any(not case.crd_rejects for case in CASES)
    messages = {case.expected_error for case in CASES if case.expected_error is not None}
    for part in RULE_FOR_CRD_MESSAGE:
        assert any(part in message for message in messages), part
