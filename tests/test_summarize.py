"""The status summary of real ClusterVersion objects: every corpus object summarizes and renders
in every format, exact facts for the odd ones, golden files, and property tests on generated
status dicts (nulls, absent fields, random versions).

Live objects are the corpus in ../shared/corpus (skipped when absent), changed in memory
where a case needs it. Set CVSYNC_UPDATE_GOLDEN=1 to rewrite the golden files, then read them.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, corpus_path
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from agent.model.drift import Drift, DriftItem, DriftKind
from agent.model.policy import Policy
from agent.model.revision import Revision
from agent.model.status import (
    AgentState,
    DriftAction,
    DriftEntry,
    FieldConflict,
    StatusSummary,
    Transition,
    UpdateState,
    UpdateTarget,
)
from agent.model.versions import version_key
from agent.report.status_document import document
from agent.report.status_render import (
    render_drift_report_markdown,
    render_json,
    render_markdown,
    render_text,
    render_yaml,
)
from agent.report.summarize import drift_entries, meaning, summarize, transition
from agent.spec.normalize import desired_spec, desired_state
from agent.spec.parse import parse_text
from agent.sync.diff import diff as diff_of_normalized
from agent.upgrade.decision import check_upgrade

GOLDEN = Path(__file__).parent / "golden"
CLUSTER_VERSIONS = sorted((CORPUS / "clusterversions").glob("*.yaml"))

LONGEST_RECOMMENDED = "4.12.16-idle-72-available-69-conditional.yaml"
LONGEST_NOT_RECOMMENDED = "4.12.16-idle-24-available-69-conditional-stale-observedgeneration.yaml"
IDLE_NULL = "4.14.1-idle-completed-availableupdates-null.yaml"
AT_16 = "4.14.1-progressing-16pct-partial-conditional-recommended.yaml"
AT_85 = "4.14.1-progressing-85pct-partial-conditional-recommended.yaml"
FAILING = "4.14.1-progressing-failing-etcd-kas-degraded.yaml"
HISTORY_70 = "4.15.0-ec.2-progressing-70-history-generation-112.yaml"
FORCED_TAG = "4.15.0-ec.2-progressing-forced-tag-image-custom-upstream.yaml"
TWO_PARTIAL = "4.15.0-ec.2-progressing-version-only-desiredupdate-46-history.yaml"
OC_LIST = "4.16.0-ec.3-failing-mco-degraded-74-history-oc-get-list.yaml"
IDLE_FAILING = "4.16.27-idle-failing-monitoring-unavailable.yaml"
IMAGE_ONLY = "4.17.0-ec.0-progressing-image-only-nochannel-compact.yaml"
TO_MULTI = "4.18.0-ec.3-progressing-to-multi-arch-same-version.yaml"
MULTI_DONE = "4.18.0-ec.3-idle-multi-arch-completed-duplicate-history-version.yaml"
OKD_STALE = "4.19.0-okd-scos.16-idle-okd-stale-observedgeneration.yaml"
MANAGED_FIELDS = "4.20.0-nightly-progressing-forced-unverified-managedfields.yaml"
OVERRIDES = "4.22.0-nightly-idle-overrides-unmanaged-nochannel.yaml"
NO_CHANNEL_4_4 = "4.4.16-idle-nochannel-anonymized-upstream.yaml"

SHA_A = "3f1c2a9d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
SHA_B = "9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a"


def diff(spec: Mapping[str, Any], live: Mapping[str, Any] | None, **options: Any) -> Drift:
    """The diff of a spec written by hand, normalized first as a cycle does once."""
    return diff_of_normalized(desired_spec({"spec": spec}), live, **options)


class _TextTimestamps(SafeConstructor):
    """Timestamps stay the text written, as the API server sends them (JSON strings)."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def load(name: str) -> dict[str, Any]:
    """A corpus file as written: the List-wrapped one stays a List."""
    yaml = YAML(typ="safe")
    yaml.Constructor = _TextTimestamps
    loaded: dict[str, Any] = yaml.load(corpus_path("clusterversions", name).read_text("utf-8"))
    return loaded


def agent(**fields: Any) -> AgentState:
    return AgentState(cluster=fields.pop("cluster", "prod-east"), **fields)


def summary_of(name: str, state: AgentState | None = None, **options: Any) -> StatusSummary:
    return summarize(load(name), state or agent(), **options)


def same_release(a: UpdateTarget, b: UpdateTarget) -> bool:
    """The rule stated independently: the image names a release; the version does when
    either side has no image."""
    if a.image and b.image:
        return a.image == b.image
    return bool(a.version) and a.version == b.version


def table_shapes(markdown: str) -> list[tuple[int, int]]:
    """(header cells, row cells) for every table row, splitting as GFM does: a backslash
    escapes the next character, an unescaped pipe separates cells."""

    def cells(line: str) -> int:
        count, escaped = 0, False
        for char in line:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "|":
                count += 1
        return count - 1

    shapes: list[tuple[int, int]] = []
    header, fence = 0, ""
    lines = markdown.split("\n")
    for number, line in enumerate(lines):
        if fence:  # inside a fenced code block nothing is a table
            fence = "" if line == fence else fence
            continue
        if line.startswith("```"):
            fence = "`" * (len(line) - len(line.lstrip("`")))
            continue
        if not line.startswith("|"):
            header = 0
            continue
        if not header:
            header = cells(line)
            assert re.fullmatch(r"\|(---\|)+", lines[number + 1]), lines[number + 1]
        shapes.append((header, cells(line)))
    return shapes


def assert_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CVSYNC_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8") if path.exists() else ""
    if text != expected:
        delta = difflib.unified_diff(
            expected.splitlines(keepends=True),
            text.splitlines(keepends=True),
            f"tests/golden/{name} (expected)",
            f"{name} (rendered now)",
        )
        shown = "".join(list(delta)[:150])
        pytest.fail(
            f"{name} differs from its golden file; if the change is intended, rerun with "
            f"CVSYNC_UPDATE_GOLDEN=1 and read the new file before committing it:\n{shown}",
            pytrace=False,
        )


# --- every object --------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("path", CLUSTER_VERSIONS, ids=lambda p: p.name)
def test_every_corpus_object_summarizes_and_renders_in_every_format(path: Path) -> None:
    summary = summary_of(path.name)
    text_yaml = render_yaml(summary)
    assert text_yaml.startswith(
        "# Generated by cvsync from the live ClusterVersion; do not edit.\n"
        "# cluster: prod-east; revision: none read yet\n"
    )
    # The YAML says exactly what the document says, and so does the JSON.
    expected = json.loads(json.dumps(document(summary)))
    assert YAML(typ="safe").load(text_yaml) == expected
    assert json.loads(render_json(summary)) == expected
    markdown = render_markdown(summary)
    assert markdown.startswith("<!-- Generated by cvsync from the live ClusterVersion")
    assert all(header == row for header, row in table_shapes(markdown))
    assert render_text(summary).startswith("prod-east: ")
    assert "matches git" in render_drift_report_markdown(summary)
    assert summary.current is not None
    assert summary.current.state == "Completed"
    assert render_yaml(summarize(load(path.name), agent())) == text_yaml  # deterministic


# --- exact facts ---------------------------------------------------------------------------


@pytest.mark.corpus
def test_recommended_conditional_updates_are_counted_once_with_the_available_ones() -> None:
    summary = summary_of(LONGEST_RECOMMENDED)
    assert (summary.current_version, summary.update.state) == ("4.12.16", UpdateState.IDLE)
    assert (len(summary.available), len(summary.conditional)) == (72, 69)
    assert summary.recommended_conditional == 49
    assert len(summary.not_recommended) == 20
    assert summary.targets == 92  # 72 + 69 - 49: the 49 in both lists count once
    assert {c.recommended for c in summary.conditional if c.available} == {"True"}
    assert {c.recommended for c in summary.not_recommended} == {"False"}
    counts = document(summary)["updates"]["counts"]
    assert counts == {
        "available": 72,
        "conditional": 69,
        "recommendedConditional": 49,
        "notRecommended": 20,
        "targets": 92,
    }
    markdown = render_markdown(summary)
    assert "72 available (49 of them conditional" in markdown
    assert "20 conditional not recommended: 92 update targets in all." in markdown
    assert markdown.count("<summary>72 available updates</summary>") == 1
    # The Upgradeable=False(AdminAckRequired) condition is among the first ones shown.
    upgradeable = summary.condition("Upgradeable")
    assert upgradeable is not None
    assert upgradeable.reason == "AdminAckRequired"
    assert summary.capabilities is not None
    assert len(summary.capabilities.enabled) == 7


@pytest.mark.corpus
def test_the_stale_capture_of_the_same_cluster_has_one_recommended_conditional_update() -> None:
    summary = summary_of(LONGEST_NOT_RECOMMENDED)
    assert (len(summary.available), len(summary.conditional)) == (24, 69)
    assert (summary.recommended_conditional, len(summary.not_recommended)) == (1, 68)
    assert summary.targets == 92
    assert Counter((c.recommended, c.reason) for c in summary.conditional) == {
        ("Unknown", "EvaluationFailed"): 49,
        ("False", "MultipleReasons"): 17,
        ("False", "RHELKernelHighLoadIOWait"): 2,
        ("True", "AsExpected"): 1,
    }
    assert (summary.generation, summary.observed_generation, summary.stale) == (3, 2, True)
    assert "> **Stale status:** the operator has observed generation 2 of 3" in render_markdown(
        summary
    )
    assert max(len(c.risks) for c in summary.conditional) == 5
    # The throttling timings in EvaluationFailed messages never reach the written files.
    assert "client-side throttling" not in render_yaml(summary)


@pytest.mark.corpus
def test_available_updates_are_sorted_newest_semantic_version_first() -> None:
    summary = summary_of(LONGEST_RECOMMENDED)
    keys = [version_key(t.version) for t in summary.available]
    assert None not in keys
    assert keys == sorted(keys, reverse=True)  # type: ignore[type-var]
    assert [t.version for t in summary.available[:3]] == ["4.13.50", "4.13.49", "4.13.48"]
    assert summary.available[-1].version == "4.12.17"


@pytest.mark.corpus
def test_an_update_in_progress_has_its_percent_and_a_progress_bar() -> None:
    early, late = summary_of(AT_16), summary_of(AT_85)
    assert (early.update.state, early.update.updating, early.update.percent) == (
        UpdateState.PROGRESSING,
        True,
        16,
    )
    assert late.update.percent == 85
    assert (early.current_version, early.desired and early.desired.version) == ("4.14.0", "4.14.1")
    assert early.history[0].completed is None
    assert early.history[0].duration_seconds is None
    assert early.history[1].duration_seconds == 18 * 60
    assert "`[###.................] 16%` Working towards 4.14.1" in render_markdown(early)
    assert "[#################...] 85%" in render_text(late)
    assert (len(early.available), len(early.conditional), early.targets) == (10, 8, 10)
    # A status-only change of the same update: no transition, but the meaning changed.
    assert transition(early, late) is None
    assert meaning(early) != meaning(late)


@pytest.mark.corpus
def test_a_failing_update_is_failing_while_still_updating() -> None:
    summary = summary_of(FAILING)
    update = summary.update
    assert (update.state, update.updating, update.percent) == (UpdateState.FAILING, True, None)
    assert update.failure == "Cluster operators etcd, kube-apiserver are degraded"
    assert summary.current_version == "4.14.0-rc.3"
    assert summary.available_null
    assert summary.conditional_absent
    markdown = render_markdown(summary)
    assert "# prod-east: failing while updating 4.14.0-rc.3 → 4.14.1" in markdown
    assert "> **Failing:** Cluster operators etcd, kube-apiserver are degraded" in markdown
    # The multi-line Upgradeable message stays in its table row.
    [row] = [line for line in markdown.split("\n") if line.startswith("| Upgradeable |")]
    assert "minor versions:<br>* Cluster operator control-plane-machine-set" in row


@pytest.mark.corpus
def test_an_idle_cluster_can_be_failing_without_updating() -> None:
    summary = summary_of(IDLE_FAILING)
    assert (summary.update.state, summary.update.updating) == (UpdateState.FAILING, False)
    assert summary.desired is not None
    assert not summary.desired.requested
    assert summary.conditional_absent
    assert not summary.available_null
    assert [t.version for t in summary.available] == ["4.16.32", "4.16.30", "4.16.29", "4.16.28"]
    assert render_text(summary).startswith("prod-east: failing at 4.16.27\n")


@pytest.mark.corpus
def test_the_same_version_twice_in_history_is_kept_as_two_entries() -> None:
    summary = summary_of(MULTI_DONE)
    assert [(e.version, e.state) for e in summary.history] == [
        ("4.18.0-ec.3", "Completed"),
        ("4.18.0-ec.3", "Completed"),
    ]
    assert summary.history[0].image != summary.history[1].image
    assert summary.current == summary.history[0]
    assert summary.desired is not None
    assert summary.desired.architecture == "Multi"
    assert summary.desired.request_fields == ("version", "architecture")
    assert summary.update.state is UpdateState.IDLE


@pytest.mark.corpus
def test_a_move_to_multi_at_the_same_version_says_so() -> None:
    summary = summary_of(TO_MULTI)
    assert summary.current_version == summary.desired.version == "4.18.0-ec.3"  # type: ignore[union-attr]
    assert summary.update.percent == 85
    assert "updating 4.18.0-ec.3 → 4.18.0-ec.3 (Multi architecture)" in render_markdown(summary)
    assert transition(summary_of(MULTI_DONE), summary) is Transition.STARTED
    # The Completed entry changed from the single-arch image to the Multi one.
    assert transition(summary, summary_of(MULTI_DONE)) is Transition.COMPLETED


@pytest.mark.corpus
def test_an_image_only_update_takes_its_version_from_the_payload() -> None:
    summary = summary_of(IMAGE_ONLY)
    desired = summary.desired
    assert desired is not None
    assert desired.image_only
    assert (desired.request_fields, desired.version) == (("image",), "4.17.0-ec.0")
    assert summary.update.percent == 79
    assert summary.channel is None
    assert summary.upstream is None
    retrieved = summary.condition("RetrievedUpdates")
    assert retrieved is not None
    assert retrieved.reason == "NoChannel"
    assert summary.history[0].accepted_risks is not None
    assert "| Request | spec.desiredUpdate by image only |" in render_markdown(summary)


@pytest.mark.corpus
def test_a_forced_tag_image_update_shows_its_unverified_entry_and_accepted_risks() -> None:
    summary = summary_of(FORCED_TAG)
    assert summary.desired is not None
    assert summary.desired.forced
    entry = summary.history[0]
    assert (entry.verified, entry.state) == (False, "Partial")
    assert entry.accepted_risks is not None
    assert len(entry.accepted_risks) == 710
    markdown = render_markdown(summary)
    assert "**forced** (signature and upgradeable checks skipped)" in markdown
    assert '```text\nTarget release version=""' in markdown
    assert summary.upstream is not None
    assert summary.upstream.endswith("?cachebust=9322")


@pytest.mark.corpus
def test_available_updates_null_and_conditions_without_reason_or_message() -> None:
    summary = summary_of(IDLE_NULL)
    assert summary.available_null
    assert summary.conditional_absent
    assert (summary.available, summary.conditional, summary.targets) == ((), (), 0)
    retrieved = summary.condition("RetrievedUpdates")
    assert retrieved is not None
    assert (retrieved.status, retrieved.reason, retrieved.message) == ("True", None, None)
    assert "The operator lists no available updates (`availableUpdates: null`)." in (
        render_markdown(summary)
    )
    updates = YAML(typ="safe").load(render_yaml(summary))["updates"]
    assert (updates["availableUpdatesNull"], updates["available"]) == (True, [])


@pytest.mark.corpus
def test_an_object_from_oc_get_is_unwrapped_from_its_list() -> None:
    raw = load(OC_LIST)
    assert raw["kind"] == "List"
    summary = summarize(raw, agent())
    assert (summary.current_version, summary.update.state) == ("4.16.0-ec.3", UpdateState.FAILING)
    assert (summary.history_total, len(summary.history)) == (74, 10)
    assert summary.generation == summary.observed_generation == 118


@pytest.mark.corpus
def test_history_is_cut_to_the_limit_and_keeps_its_total() -> None:
    summary = summary_of(HISTORY_70, history_limit=3)
    assert (len(summary.history), summary.history_total) == (3, 70)
    assert summary_of(HISTORY_70, history_limit=0).history == ()
    assert "## History (3 of 70)" in render_markdown(summary)


@pytest.mark.corpus
def test_the_current_version_is_the_latest_completed_entry_not_a_partial_one() -> None:
    # oc's developers turned the second entry into Partial: the current version is the third.
    summary = summary_of(TWO_PARTIAL)
    assert [e.state for e in summary.history[:3]] == ["Partial", "Partial", "Completed"]
    assert summary.current_version == "4.14.0-rc.7"


@pytest.mark.corpus
def test_old_objects_without_capabilities_or_upgradeable_summarize() -> None:
    summary = summary_of(NO_CHANNEL_4_4)
    assert summary.capabilities is None
    assert [c.type for c in summary.conditions] == [
        "Available",
        "Progressing",
        "Failing",
        "RetrievedUpdates",
    ]
    assert summary.upstream == "xxxxx://xxx.xxxxxxxxx.xxx/xxx/xxxxxxxxxxxxx/xx/xxxxx"


@pytest.mark.corpus
def test_okd_updates_without_url_or_channels_and_overrides_keyed() -> None:
    okd = summary_of(OKD_STALE)
    assert [(t.url, t.channels) for t in okd.available] == [(None, ()), (None, ())]
    assert okd.stale
    overrides = summary_of(OVERRIDES).overrides
    assert [(o.kind, o.group, o.namespace, o.name, o.unmanaged) for o in overrides] == [
        ("ClusterImagePolicy", "config.openshift.io", "", "openshift", True)
    ]


@pytest.mark.corpus
def test_credentials_in_the_upstream_url_never_reach_a_report() -> None:
    live = load(AT_16)
    live["spec"]["upstream"] = "https://robot:s3cr3t-t0ken@updates.example.com/graph?x=1"
    summary = summarize(live, agent())
    assert summary.upstream == "https://updates.example.com/graph?x=1"
    for rendered in (render_yaml, render_json, render_markdown, render_text):
        assert "s3cr3t" not in rendered(summary)


# --- cvsync's own state, drift and meaning ---------------------------------------------------


@pytest.mark.corpus
def test_drift_from_a_real_diff_names_the_owner_and_what_cvsync_did() -> None:
    live = load(MANAGED_FIELDS)
    want = desired_spec(copy.deepcopy(live))
    want["channel"] = "candidate-4.20"
    want["desiredUpdate"] = {"version": "4.20.0-0.nightly-2025-08-12-153542"}
    found = diff(want, live)
    entries = drift_entries(found.items, corrected=[".spec.channel"])
    actions = {e.item.path: e.action for e in entries}
    assert actions == {
        ".spec.channel": DriftAction.CORRECTED,
        ".spec.desiredUpdate": DriftAction.REPORTED,
    }
    summary = summarize(live, agent(drift=entries, last_result="DriftReported"))
    report = render_drift_report_markdown(summary)
    assert "2 drifted fields at none read yet: 1 corrected by cvsync, 1 only reported." in report
    [row] = [line for line in report.split("\n") if line.startswith("| `.spec.desiredUpdate`")]
    assert "| openshift-tests | 2025-08-19T19:32:58Z | reported |" in row
    assert all(header == cells for header, cells in table_shapes(report))
    drift = json.loads(render_json(summary))["cvsync"]["drift"]
    assert {(d["path"], d["action"], d["owner"]) for d in drift} == {
        (".spec.desiredUpdate", "reported", "openshift-tests"),
        (".spec.channel", "corrected", None),
    }


@pytest.mark.corpus
def test_meaning_ignores_heartbeats_and_the_newest_revision_seen() -> None:
    live = load(AT_16)
    first = summarize(
        live,
        agent(
            last_attempted=Revision("main", SHA_A),
            last_cycle_at="2025-01-01T00:00:00Z",
            last_cycle_seconds=0.4,
        ),
    )
    later = summarize(
        live,
        agent(
            last_attempted=Revision("main", SHA_B),  # cvsync's own status commit moved HEAD
            last_cycle_at="2025-01-01T00:05:00Z",
            last_cycle_seconds=0.7,
        ),
    )
    assert meaning(first) == meaning(later)
    assert render_yaml(first) != render_yaml(later)
    applied = summarize(live, agent(last_applied=Revision("main", SHA_B)))
    assert meaning(applied) != meaning(first)
    stalled = summarize(live, agent(last_result="Stalled", last_reason="ApplyConflict"))
    assert meaning(stalled) != meaning(summarize(live, agent()))


@pytest.mark.corpus
def test_transitions_name_started_completed_and_failed() -> None:
    idle, updating, failing = summary_of(MULTI_DONE), summary_of(TO_MULTI), summary_of(FAILING)
    assert transition(None, updating) is None
    assert transition(idle, idle) is None
    assert transition(idle, updating) is Transition.STARTED
    assert transition(summary_of(AT_16), failing) is Transition.FAILED
    assert transition(failing, failing) is None
    assert transition(updating, idle) is Transition.COMPLETED


# --- golden files --------------------------------------------------------------------------

_APPLIED = Revision("main", SHA_A)
_NEWER = Revision("main", SHA_B)
GOLDEN_CASES = {
    "idle-overrides": (
        OVERRIDES,
        agent(
            cluster="lab-nightly",
            last_attempted=_APPLIED,
            last_applied=_APPLIED,
            last_result="InSync",
            last_reason="InSync",
            last_message="the cluster matches git",
            last_cycle_at="2026-03-11T07:00:00Z",
            last_cycle_seconds=0.25,
        ),
    ),
    "progressing": (
        AT_16,
        agent(
            last_attempted=_NEWER,
            last_applied=_NEWER,
            last_result="Applied",
            last_reason="DriftCorrected",
            last_message='took back .spec.channel from "oc"',
            last_cycle_at="2024-02-07T16:40:00Z",
            last_cycle_seconds=1.5,
            drift=(
                DriftEntry(
                    DriftItem(
                        ".spec.channel",
                        "candidate-4.14",
                        "fast-4.14",
                        DriftKind.CHANGED,
                        "oc",
                        "2024-02-07T16:35:12Z",
                    ),
                    DriftAction.CORRECTED,
                ),
            ),
        ),
    ),
    "failing": (
        FAILING,
        agent(
            last_attempted=_NEWER,
            last_applied=_APPLIED,
            last_result="DriftReported",
            last_reason="DriftReported",
            last_message="the cluster is ahead of git: forward drift is reported, not reverted",
            drift=(
                DriftEntry(
                    DriftItem(
                        ".spec.desiredUpdate",
                        {"architecture": "", "force": False, "image": "", "version": "4.14.0-rc.3"},
                        {
                            "architecture": "",
                            "force": False,
                            "image": "quay.io/openshift-release-dev/ocp-release@sha256:"
                            "05ba8e63f8a76e568afe87f182334504a01d47342b6ad5b4c3ff83a2463018bd",
                            "version": "4.14.1",
                        },
                        DriftKind.FORWARD,
                        None,
                        None,
                        "git asks for 4.14.0-rc.3; the cluster is updating to 4.14.1",
                    ),
                    DriftAction.REPORTED,
                ),
            ),
        ),
    ),
    "conditional-risks": (
        LONGEST_RECOMMENDED,
        agent(
            cluster="prod-west",
            last_attempted=_NEWER,
            last_applied=_APPLIED,
            last_result="Stalled",
            last_reason="ApplyConflict",
            last_message='.spec.channel is owned by "argocd-controller"',
            conflicts=(FieldConflict(".spec.channel", "argocd-controller"),),
        ),
    ),
    "multi-arch": (TO_MULTI, agent(cluster="edge-multi")),
}


@pytest.mark.corpus
@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden_markdown_and_yaml(case: str) -> None:
    name, state = GOLDEN_CASES[case]
    summary = summary_of(name, state)
    assert_golden(f"{case}.md", render_markdown(summary))
    assert_golden(f"{case}.yaml", render_yaml(summary))


@pytest.mark.corpus
def test_golden_drift_report() -> None:
    live = load(MANAGED_FIELDS)
    entries = (
        DriftEntry(
            DriftItem(
                ".spec.desiredUpdate",
                {
                    "architecture": "",
                    "force": False,
                    "image": "",
                    "version": "4.20.0-0.nightly-2025-08-12-153542",
                },
                live["spec"]["desiredUpdate"],
                DriftKind.FORWARD,
                "openshift-tests",
                "2025-08-19T19:32:58Z",
                "git asks for 4.20.0-0.nightly-2025-08-12-153542; the cluster is updating to "
                "4.20.0-0.nightly-2025-08-19-180353",
            ),
            DriftAction.REPORTED,
        ),
        DriftEntry(
            DriftItem(".spec.channel", "candidate-4.20", None, DriftKind.MISSING),
            DriftAction.CORRECTED,
        ),
        DriftEntry(
            DriftItem(
                ".spec.overrides[kind=Deployment,group=apps,namespace=openshift-monitoring,"
                "name=cluster-monitoring-operator]",
                None,
                {"unmanaged": True},
                DriftKind.EXTRA,
                "cvsync",
                "2025-08-19T19:40:00Z",
                "git no longer declares it and cvsync alone owns it: the next apply removes it",
            ),
            DriftAction.CORRECTED,
        ),
    )
    state = agent(cluster="ci-nightly", last_attempted=_NEWER, drift=entries)
    assert_golden("drift-report.md", render_drift_report_markdown(summarize(live, state)))


# --- properties on generated status dicts ----------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_MAYBE_TEXT = st.one_of(st.none(), _TEXT, st.integers(), st.booleans())
_SEMVER = st.builds(
    lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
    st.integers(0, 5),
    st.integers(0, 20),
    st.integers(0, 60),
    st.sampled_from(
        ["", "-ec.1", "-ec.2", "-rc.0", "-rc.10", "-0.nightly-2024-08-01-082745", "-a"]
    ),
)
_VERSION = st.one_of(_SEMVER, _SEMVER, _TEXT, st.none(), st.integers())
_IMAGES = st.sampled_from([f"quay.io/ocp-release@sha256:{n:064x}" for n in range(12)] + [""])


def _maybe(draw: st.DrawFn, key: str, value: st.SearchStrategy[Any], out: dict[str, Any]) -> None:
    """Set the key, set it to null, or leave it absent."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return
    out[key] = None if choice == 1 else draw(value)


@st.composite
def _release(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _maybe(draw, "version", _VERSION, out)
    _maybe(draw, "image", _IMAGES, out)
    _maybe(draw, "url", _TEXT, out)
    _maybe(draw, "channels", st.lists(_MAYBE_TEXT, max_size=3), out)
    return out


@st.composite
def _conditional(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"release": draw(st.one_of(_release(), st.none()))}
    risk = st.fixed_dictionaries(
        {},
        optional={
            "name": _MAYBE_TEXT,
            "message": _MAYBE_TEXT,
            "url": _MAYBE_TEXT,
            "matchingRules": st.lists(st.fixed_dictionaries({"type": _MAYBE_TEXT}), max_size=2),
        },
    )
    _maybe(draw, "risks", st.lists(risk, max_size=3), out)
    condition = st.fixed_dictionaries(
        {"type": st.sampled_from(["Recommended", "Other"])},
        optional={"status": st.sampled_from(["True", "False", "Unknown"]), "reason": _MAYBE_TEXT},
    )
    _maybe(draw, "conditions", st.lists(condition, max_size=2), out)
    return out


@st.composite
def _condition(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    types = st.sampled_from(["Available", "Progressing", "Failing", "Upgradeable"]) | _TEXT
    _maybe(draw, "type", types, out)
    _maybe(draw, "status", st.sampled_from(["True", "False", "Unknown"]) | _MAYBE_TEXT, out)
    _maybe(draw, "reason", _MAYBE_TEXT, out)
    _maybe(
        draw,
        "message",
        st.one_of(
            _TEXT, st.builds(lambda p: f"Working towards x: ({p}% complete)", st.integers(0, 150))
        ),
        out,
    )
    _maybe(draw, "lastTransitionTime", st.sampled_from(["2024-01-01T00:00:00Z", "bad"]), out)
    return out


@st.composite
def _history(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    times = st.sampled_from(
        ["2024-01-01T00:00:00Z", "2024-01-01T01:02:03Z", "2024-01-01T00:00:00", "x"]
    )
    _maybe(draw, "state", st.sampled_from(["Completed", "Partial"]) | _MAYBE_TEXT, out)
    _maybe(draw, "version", _VERSION, out)
    _maybe(draw, "image", _IMAGES, out)
    _maybe(draw, "startedTime", times, out)
    _maybe(draw, "completionTime", times, out)
    _maybe(draw, "verified", st.booleans() | _MAYBE_TEXT, out)
    _maybe(draw, "acceptedRisks", _TEXT, out)
    return out


@st.composite
def live_objects(draw: st.DrawFn) -> dict[str, Any]:
    status: dict[str, Any] = {}
    _maybe(draw, "availableUpdates", st.lists(_release(), max_size=8), status)
    _maybe(draw, "conditionalUpdates", st.lists(_conditional(), max_size=6), status)
    _maybe(draw, "conditions", st.lists(_condition(), max_size=6), status)
    _maybe(draw, "history", st.lists(_history(), max_size=5), status)
    _maybe(draw, "desired", _release(), status)
    _maybe(draw, "observedGeneration", st.integers(0, 5) | _MAYBE_TEXT, status)
    _maybe(
        draw,
        "capabilities",
        st.fixed_dictionaries(
            {},
            optional={
                "enabledCapabilities": st.lists(_MAYBE_TEXT),
                "knownCapabilities": st.lists(_MAYBE_TEXT),
            },
        ),
        status,
    )
    spec: dict[str, Any] = {}
    _maybe(draw, "channel", _MAYBE_TEXT, spec)
    _maybe(draw, "upstream", _MAYBE_TEXT, spec)
    _maybe(
        draw,
        "desiredUpdate",
        st.fixed_dictionaries(
            {}, optional={"version": _MAYBE_TEXT, "image": _MAYBE_TEXT, "force": _MAYBE_TEXT}
        ),
        spec,
    )
    override = st.fixed_dictionaries(
        {}, optional=dict.fromkeys(("kind", "group", "namespace", "name", "unmanaged"), _MAYBE_TEXT)
    )
    _maybe(draw, "overrides", st.lists(override, max_size=3), spec)
    obj: dict[str, Any] = {"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion"}
    _maybe(
        draw,
        "metadata",
        st.fixed_dictionaries({}, optional={"generation": st.integers(0, 5) | _MAYBE_TEXT}),
        obj,
    )
    _maybe(draw, "spec", st.just(spec), obj)
    _maybe(draw, "status", st.just(status), obj)
    return obj


_PROPERTY = settings(
    max_examples=int(os.environ.get("CVSYNC_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_PROPERTY
@given(live_objects(), _TEXT)
def test_any_status_summarizes_and_renders_without_error(live: dict[str, Any], name: str) -> None:
    summary = summarize(live, agent(cluster=name or "c", last_message=name))
    expected = json.loads(json.dumps(document(summary)))
    assert YAML(typ="safe").load(render_yaml(summary)) == expected
    assert json.loads(render_json(summary)) == expected
    for markdown in (render_markdown(summary), render_drift_report_markdown(summary)):
        assert all(header == cells for header, cells in table_shapes(markdown))
        # The two header comments stay comments whatever the cluster is called.
        assert [line.count("--") for line in markdown.split("\n")[:2]] == [2, 2]
    render_text(summary)
    meaning(summary)
    percent = summary.update.percent
    assert percent is None or 0 <= percent <= 100


@_PROPERTY
@given(live_objects())
def test_available_updates_come_newest_semantic_version_first(live: dict[str, Any]) -> None:
    versions = [t.version for t in summarize(live, agent()).available]
    keys = [version_key(v) for v in versions]
    semver = [k for k in keys if k is not None]
    assert keys[: len(semver)] == semver, "semantic versions come before the others"
    assert semver == sorted(semver, reverse=True)


@_PROPERTY
@given(live_objects())
def test_no_release_is_counted_twice(live: dict[str, Any]) -> None:
    summary = summarize(live, agent())
    available = summary.available
    for i, target in enumerate(available):
        assert not any(same_release(target, other) for other in available[i + 1 :])
    releases = [c.release for c in summary.conditional]
    for i, release in enumerate(releases):
        assert not any(same_release(release, other) for other in releases[i + 1 :])
    for conditional in summary.conditional:
        assert conditional.available == any(same_release(conditional.release, a) for a in available)
    assert summary.targets == len(available) + sum(
        1 for c in summary.conditional if not c.available
    )


@st.composite
def _distinct_releases(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Releases that are all different (each its own image): order is all that varies."""
    versions = draw(st.lists(_SEMVER | _TEXT, max_size=8))
    images = draw(st.permutations(range(12)))
    return [
        {"version": v, "image": f"quay.io/ocp-release@sha256:{images[i]:064x}"}
        for i, v in enumerate(versions[:12])
    ]


@_PROPERTY
@given(_distinct_releases(), st.randoms(use_true_random=False))
def test_the_order_of_the_lists_does_not_change_the_output(
    releases: list[dict[str, Any]], rng: Any
) -> None:
    conditional = [
        {"release": r, "risks": [{"name": "R", "message": "m", "url": "u"}]} for r in releases[::2]
    ]
    live = {"status": {"availableUpdates": releases[1::2], "conditionalUpdates": conditional}}
    shuffled = copy.deepcopy(live)
    for items in shuffled["status"].values():
        rng.shuffle(items)
    assert render_yaml(summarize(live, agent())) == render_yaml(summarize(shuffled, agent()))
    assert render_markdown(summarize(live, agent())) == render_markdown(
        summarize(shuffled, agent())
    )


def test_table_cells_keep_pipes_html_and_line_breaks_in_their_cell() -> None:
    live = {
        "spec": {"channel": "stable-4.16"},
        "status": {
            "conditions": [
                {
                    "type": "Upgradeable",
                    "status": "False",
                    "reason": "A|B",
                    "message": "line one | with a pipe\n<script>alert(1)</script>\n\\|escaped",
                }
            ],
            "history": [{"state": "Completed", "version": "4.16.1", "image": "x@sha256:a|b"}],
        },
    }
    summary = summarize(live, agent(cluster="a|b"))
    markdown = render_markdown(summary)
    assert "<script>" not in markdown
    assert all(header == cells for header, cells in table_shapes(markdown))
    [row] = [line for line in markdown.split("\n") if line.startswith("| Upgradeable |")]
    assert "line one \\| with a pipe<br>&lt;script&gt;" in row


def test_a_summary_of_nothing_is_still_a_summary() -> None:
    assert meaning(summarize(None, agent())) == meaning(summarize({}, agent()))
    summary = summarize({}, agent())
    assert (summary.current, summary.desired, summary.capabilities) == (None, None, None)
    assert summary.update.state is UpdateState.IDLE
    assert not summary.available_null
    assert summary.conditional_absent
    assert render_text(summary).startswith("prod-east: idle at (no completed version)")
    assert "# prod-east: no completed version, idle" in render_markdown(summary)


@pytest.mark.corpus
def test_a_held_back_target_is_in_the_status_file_with_every_gate_and_the_next_step() -> None:
    live = load(LONGEST_RECOMMENDED)
    body = {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": {**live["spec"], "desiredUpdate": {"version": "4.13.46"}},
    }
    [doc] = parse_text(json.dumps(body), "clusters/c/clusterversion.yaml").documents
    check = check_upgrade(desired_state(doc), live, Policy(), datetime(2026, 12, 1, tzinfo=UTC))
    assert check.pending
    summary = summarize(live, agent(upgrade=check))
    held = document(summary)["cvsync"]["upgrade"]
    assert held["target"] == "4.13.46"
    assert held["state"] == "blocked"
    assert held["reason"] == "UpgradeBlocked"
    reasons = {row["gate"]: row["reason"] for row in held["gates"]}
    assert reasons["recommended"] == "RisksNotAccepted"
    assert reasons["upgradeable"] == "NotUpgradeable"  # AdminAckRequired on this cluster
    assert "accept by name in the policy: " in held["next"]
    markdown = render_markdown(summary)
    assert "Upgrade held back: `4.13.46` is **blocked** (RisksNotAccepted, NotUpgradeable)" in (
        markdown
    )
    assert "| `recommended` | **block** | RisksNotAccepted |" in markdown
    assert "state: blocked" in render_yaml(summary)
    # Nothing held: no upgrade entry, and the meaning differs from the held one.
    assert document(summarize(live, agent()))["cvsync"]["upgrade"] is None
    assert meaning(summary) != meaning(summarize(live, agent()))
