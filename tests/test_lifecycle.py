"""The update lifecycle read from real ClusterVersion objects: each transition of git's target
(requested, accepted, progressing, stalled, failing, refused, completed) as the
cluster-version operator reports it.

Live objects are the corpus in ../shared/corpus (skipped when absent). Where a state has no
captured object (requested, refused), the captured object is changed in memory the way the
operator changes it, and the test says which words it uses.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import corpus_path
from ruamel.yaml import YAML

from agent.model.gates import GateDecision, UpgradeCheck, WindowState
from agent.model.lifecycle import LifecycleState, RecordedProgress, UpdateLifecycle
from agent.upgrade.lifecycle import (
    Target,
    git_target,
    observe_update,
    resume_progress,
    stall_deadline,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PROGRESSING_16 = "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
PROGRESSING_85 = "4.14.1-progressing-85pct-partial-conditional-recommended.yaml"
FAILING_UPDATE = "4.14.1-progressing-failing-etcd-kas-degraded.yaml"
COMPLETED = "4.14.1-idle-completed-availableupdates-null.yaml"
FAILING_AT_TARGET = "4.16.0-ec.3-failing-mco-degraded-74-history-oc-get-list.yaml"
VERSION_ONLY = "4.15.0-ec.2-progressing-version-only-desiredupdate-46-history.yaml"


def captured(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(
        corpus_path("clusterversions", name).read_text("utf-8")
    )
    if loaded.get("kind") == "List":
        item: dict[str, Any] = loaded["items"][0]
        return item
    return loaded


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in obj["status"]["conditions"] if c["type"] == kind)
    return found


def observe(obj: dict[str, Any], target: Target | None, **kwargs: Any) -> UpdateLifecycle:
    kwargs.setdefault("now", NOW)
    return observe_update(target, obj, **kwargs)


@pytest.mark.corpus
def test_an_update_under_way_is_progressing_with_the_operators_percent_and_what_it_waits_on() -> (
    None
):
    found = observe(captured(PROGRESSING_16), Target("4.14.1", ""))
    assert found.state is LifecycleState.PROGRESSING
    assert (found.target, found.percent, found.waiting_on) == ("4.14.1", 16, "kube-scheduler")
    assert found.message == (
        "Working towards 4.14.1: 139 of 859 done (16% complete), waiting on kube-scheduler"
    )
    assert found.reason == "ClusterOperatorUpdating"


@pytest.mark.corpus
def test_a_version_only_request_matches_the_history_entry_the_operator_wrote() -> None:
    obj = captured(VERSION_ONLY)
    found = observe(obj, git_target(obj["spec"]))
    assert (found.state, found.target, found.percent) == (
        LifecycleState.PROGRESSING,
        "4.15.0-ec.2",
        12,
    )
    assert found.waiting_on == "etcd, kube-apiserver"


@pytest.mark.corpus
def test_failing_while_updating_carries_the_failing_conditions_reason_and_message() -> None:
    found = observe(captured(FAILING_UPDATE), Target("4.14.1", ""))
    assert found.state is LifecycleState.FAILING
    assert found.trouble
    assert found.reason == "ClusterOperatorsDegraded"
    assert found.message == "Cluster operators etcd, kube-apiserver are degraded"


@pytest.mark.corpus
def test_a_completed_target_is_completed_with_how_long_it_took() -> None:
    obj = captured(COMPLETED)
    entry = obj["status"]["history"][0]
    found = observe(obj, Target(entry["version"], ""))
    started = datetime.fromisoformat(entry["startedTime"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(entry["completionTime"].replace("Z", "+00:00"))
    assert found.state is LifecycleState.COMPLETED
    assert found.duration_seconds == int((ended - started).total_seconds())
    assert "in " in found.describe()


@pytest.mark.corpus
def test_reaching_the_target_with_failing_true_is_failing_not_completed() -> None:
    found = observe(captured(FAILING_AT_TARGET), Target("4.16.0-ec.3", ""))
    assert found.state is LifecycleState.FAILING
    assert found.message == "Cluster operator machine-config is degraded"


@pytest.mark.corpus
def test_no_progress_for_stall_after_is_stalled_and_progress_clears_it() -> None:
    obj = captured(PROGRESSING_85)
    target = Target("4.14.1", "")
    first = observe(obj, target, stall_after=timedelta(seconds=20))
    assert first.state is LifecycleState.PROGRESSING
    assert stall_deadline(first, timedelta(seconds=20)) == NOW + timedelta(seconds=20)
    still = observe(
        obj, target, now=NOW + timedelta(seconds=19), stall_after=timedelta(seconds=20),
        previous=first,
    )  # fmt: skip
    assert still.state is LifecycleState.PROGRESSING
    stalled = observe(
        obj, target, now=NOW + timedelta(seconds=20), stall_after=timedelta(seconds=20),
        previous=still,
    )  # fmt: skip
    assert stalled.state is LifecycleState.STALLED
    assert stalled.trouble
    assert stalled.waiting_on == found_waiting_on(obj)
    assert "no progress since 2026-12-05T12:00:00Z" in (stalled.message or "")
    moved = copy.deepcopy(obj)
    progressing = condition(moved, "Progressing")
    progressing["message"] = progressing["message"].replace("85% complete", "86% complete")
    resumed = observe(
        moved, target, now=NOW + timedelta(seconds=30), stall_after=timedelta(seconds=20),
        previous=stalled,
    )  # fmt: skip
    assert resumed.state is LifecycleState.PROGRESSING
    assert resumed.progress_at == NOW + timedelta(seconds=30)


@pytest.mark.corpus
def test_after_a_restart_the_recorded_progress_time_counts_while_the_operator_says_the_same() -> (
    None
):
    obj, target, stall_after = captured(PROGRESSING_85), Target("4.14.1", ""), timedelta(minutes=90)
    message = condition(obj, "Progressing")["message"]
    before = NOW - timedelta(minutes=80)  # when the agent that wrote the status file saw it
    restarted = observe(obj, target, stall_after=stall_after)
    assert restarted.progress_at == NOW
    resumed = resume_progress(restarted, RecordedProgress("4.14.1", message, before))
    assert resumed is not None
    assert resumed.progress_at == before
    assert stall_deadline(resumed, stall_after) == before + stall_after
    later = NOW + timedelta(minutes=10)
    stalled = observe(obj, target, now=later, stall_after=stall_after, previous=resumed)
    assert stalled.state is LifecycleState.STALLED
    assert "no progress since 2026-12-05T10:40:00Z" in (stalled.message or "")
    # Without the record, the restart would have put the stall off to NOW + 90 minutes.
    fresh = observe(obj, target, now=later, stall_after=stall_after, previous=restarted)
    assert fresh.state is LifecycleState.PROGRESSING


@pytest.mark.corpus
@pytest.mark.parametrize(
    "recorded",
    [
        RecordedProgress("4.14.1", "Working towards 4.14.1: 1 of 2 done", NOW),  # it moved since
        RecordedProgress("4.14.2", "", NOW),  # another target
        RecordedProgress("4.14.1", "", NOW + timedelta(minutes=1)),  # not earlier
    ],
    ids=["moved", "other-target", "later"],
)
def test_a_record_of_other_progress_changes_nothing(recorded: RecordedProgress) -> None:
    obj = captured(PROGRESSING_85)
    restarted = observe(obj, Target("4.14.1", ""))
    if recorded.message == "":
        recorded = RecordedProgress(
            recorded.target, condition(obj, "Progressing")["message"], recorded.progress_at
        )
    assert resume_progress(restarted, recorded) is restarted
    completed = observe(captured(COMPLETED), Target("4.14.1", ""))
    assert resume_progress(completed, recorded) is completed
    assert resume_progress(None, recorded) is None


def found_waiting_on(obj: dict[str, Any]) -> str:
    message: str = condition(obj, "Progressing")["message"]
    return message.rsplit("waiting on ", 1)[1]


@pytest.mark.corpus
def test_a_state_keeps_the_time_it_began_while_it_lasts() -> None:
    obj = captured(PROGRESSING_16)
    first = observe(obj, Target("4.14.1", ""))
    later = observe(obj, Target("4.14.1", ""), now=NOW + timedelta(minutes=5), previous=first)
    assert later.since == NOW
    assert later.same_answer(first)


@pytest.mark.corpus
def test_a_target_applied_but_not_yet_answered_is_requested() -> None:
    # The object as it is just after the apply: the operator still reports the last release.
    obj = captured(COMPLETED)
    obj["spec"]["desiredUpdate"] = {"version": "4.14.2", "image": "", "force": False}
    found = observe(obj, Target("4.14.2", ""))
    assert found.state is LifecycleState.REQUESTED
    assert not found.trouble


@pytest.mark.corpus
def test_a_started_update_with_no_manifest_done_is_accepted() -> None:
    # The operator's first Progressing message for a new payload: "Working towards <version>".
    obj = captured(PROGRESSING_16)
    condition(obj, "Progressing")["message"] = "Working towards 4.14.1"
    found = observe(obj, Target("4.14.1", ""))
    assert found.state is LifecycleState.ACCEPTED


@pytest.mark.corpus
def test_a_payload_the_operator_refuses_is_refused_with_its_reason_and_message() -> None:
    # ReleaseAccepted=False names the payload it judged: version="…" image="…" (the CVO's
    # "Retrieving payload failed version=… image=… failure=…" wording).
    obj = captured(COMPLETED)
    obj["spec"]["desiredUpdate"] = {"version": "4.14.2", "image": "quay.io/x@sha256:" + "a" * 64}
    accepted = condition(obj, "ReleaseAccepted")
    accepted.update(
        status="False",
        reason="RetrievePayload",
        message=f'Retrieving payload failed version="4.14.2" image="quay.io/x@sha256:{"a" * 64}" '
        "failure=The update cannot be verified: unable to verify sha256:aaa against keyrings",
    )
    found = observe(obj, Target("4.14.2", ""))
    assert found.state is LifecycleState.REFUSED
    assert found.reason == "RetrievePayload"
    assert "cannot be verified" in (found.message or "")
    # A refusal of another payload says nothing about this target.
    assert observe(obj, Target("4.14.3", "")).state is LifecycleState.PENDING


@pytest.mark.corpus
def test_a_target_the_gates_hold_is_pending_with_the_gate() -> None:
    obj = captured(COMPLETED)
    held = UpgradeCheck(
        GateDecision(action="wait", rows=(), suggestion="wait for Sat 02:00"),
        WindowState(open=False, note="outside every window"),
        target="4.14.2",
    )
    found = observe(obj, Target("4.14.2", ""), held=held)
    assert (found.state, found.reason) == (LifecycleState.PENDING, "UpgradeWaiting")


@pytest.mark.corpus
def test_without_a_target_an_idle_cluster_is_idle_and_an_update_under_way_is_followed() -> None:
    assert observe(captured(COMPLETED), None).state is LifecycleState.IDLE
    followed = observe(captured(PROGRESSING_16), None)
    assert (followed.state, followed.target) == (LifecycleState.PROGRESSING, "4.14.1")


@pytest.mark.corpus
def test_git_target_reads_the_version_else_the_image_and_none_without_a_request() -> None:
    assert git_target({"desiredUpdate": {"version": "4.16.3"}}) == Target("4.16.3", "")
    assert git_target({"desiredUpdate": {"image": "q/r@sha256:1"}}) == Target("", "q/r@sha256:1")
    assert git_target({"channel": "stable-4.16"}) is None
