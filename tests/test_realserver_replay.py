"""The sandbox answers as a real kube-apiserver did: the 48 requests in
../shared/realserver/raw-api-steps.json (answered by kube-apiserver v1.36.2 with the real
Default ClusterVersion CRD and the chart's RBAC for the agent) are replayed against a sandbox
set up the same way, and each answer must be identical after the recording's normalization.
Skipped when ../shared/realserver is absent (set CVSYNC_REALSERVER to its folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from realserver_replay import STEPS_FILE, StepOutcome, describe, load_steps, replay

# Steps the sandbox answers differently on purpose, with the reason; the README's "where the
# sandbox differs, knowingly" list names each of them.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _step_names() -> list[str]:
    if not STEPS_FILE.exists():
        return []
    return [step["name"] for step in load_steps()["steps"]]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StepOutcome]:
    if not STEPS_FILE.exists():
        pytest.skip(
            f"the real server's recording is not present at {STEPS_FILE}; point "
            "CVSYNC_REALSERVER at its directory"
        )
    directory: Path = tmp_path_factory.mktemp("replay")
    return {outcome.name: outcome for outcome in replay(load_steps(), directory)}


def test_the_recording_holds_48_steps() -> None:
    if not STEPS_FILE.exists():
        pytest.skip(
            f"the real server's recording is not present at {STEPS_FILE}; point "
            "CVSYNC_REALSERVER at its directory"
        )
    assert len(_step_names()) == 48


@pytest.mark.parametrize("name", _step_names())
def test_the_sandbox_answers_the_step_as_the_real_server_did(
    name: str, outcomes: dict[str, StepOutcome]
) -> None:
    outcome = outcomes[name]
    if name in KNOWN_DIFFERENCES:
        assert not outcome.identical, f"{name} now matches: drop it from KNOWN_DIFFERENCES"
        return
    assert outcome.identical, describe(outcome)


def test_every_known_difference_names_a_recorded_step() -> None:
    names = set(_step_names()) or set(KNOWN_DIFFERENCES)
    assert set(KNOWN_DIFFERENCES) <= names
