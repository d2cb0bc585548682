"""`cvsync plan --pr` as a real process: offline against saved live objects (the real ones
in the corpus, and cvsync's own status files), against the sandbox cluster, with update
graph data; plus the fleet example and the CI jobs that run it."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from conftest import CORPUS, REPO_ROOT, corpus_path
from ruamel.yaml import YAML
from sandbox_support import sandbox_thread

from agent.cli.cvsync import cvsync
from agent.cli.plan_command import graph_path
from agent.model.status import AgentState
from agent.report.status_render import render_yaml
from agent.report.summarize import summarize
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.crd_schema import FEATURE_SETS, FeatureSet
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.operator.builtin_graph import builtin_graph
from agent.sandbox.server import SandboxOptions
from agent.upgrade.graph import UpdateGraph

FLEET = REPO_ROOT / "examples" / "05-fleet"
FRIDAY_EVENING = "2026-12-04T20:00:00Z"
IDLE_4_12 = "4.12.16-idle-72-available-69-conditional.yaml"
POLICY_HEAD = "apiVersion: cvsync.io/v1alpha1\nkind: UpgradePolicy\nspec:\n"


def cvsync_plan(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "plan", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def write_spec(root: Path, cluster_id: str, channel: str, version: str) -> Path:
    path = root / "clusters" / "c" / "clusterversion.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata: {name: version}\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: {channel}\n"
        f"  desiredUpdate:\n    version: {version}\n"
    )
    return path


# The fleet example, exactly as the README shows it.
@pytest.mark.parametrize(("cluster", "exit_code"), [("prod-east", 1), ("staging", 0)])
def test_the_fleet_example_plans_exactly_as_recorded(cluster: str, exit_code: int) -> None:
    run = cvsync_plan(
        "--pr", "--cluster", cluster, "--live", f"status/{cluster}.yaml", "--at", FRIDAY_EVENING,
        cwd=FLEET,
    )  # fmt: skip
    assert run.stderr == ""
    assert run.stdout == (FLEET / f"expected-plan-{cluster}.md").read_text()
    assert run.returncode == exit_code


def test_the_fleet_target_applies_once_the_saturday_window_opens() -> None:
    inside = "2026-12-05T01:30:00Z"  # 02:30 in Berlin
    run = cvsync_plan(
        "--pr", "--cluster", "prod-east", "--live", "status/prod-east.yaml", "--at", inside,
        cwd=FLEET,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout
    assert "applies on merge" in run.stdout
    frozen = "2026-12-26T01:30:00Z"  # a Saturday inside the year-end blackout
    held = cvsync_plan(
        "--pr", "--cluster", "prod-east", "--live", "status/prod-east.yaml", "--at", frozen,
        cwd=FLEET,
    )  # fmt: skip
    assert held.returncode == 1
    assert "blackout 2026-12-21 to 2027-01-03 (year-end change freeze)" in held.stdout


def _cvsync_commands(script: str) -> list[list[str]]:
    """Every `cvsync …` command line in a CI script, with shell variables filled in."""
    commands = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line.split("||")[0].split(">")[0], comments=True)
        if words[:1] == ["cvsync"]:
            commands.append([w.replace("$", "x") for w in words[1:]])
    return commands


@pytest.mark.parametrize(
    ("ci_file", "expected"),
    [
        (".github/workflows/cvsync-plan.yml", ["validate", "plan"]),
        (".github/workflows/cvsync-wait.yml", ["status"]),
        (".gitlab-ci.yml", ["validate", "plan", "status"]),
    ],
)
def test_the_ci_jobs_run_validate_plan_and_wait_with_options_cvsync_has(
    ci_file: str, expected: list[str]
) -> None:
    document = YAML(typ="safe").load((FLEET / ci_file).read_text())
    scripts: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script") and isinstance(value, str):
                    scripts.append(value)
                elif key == "script" and isinstance(value, list):
                    scripts.extend(str(line) for line in value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(document)
    commands = [c for script in scripts for c in _cvsync_commands(script)]
    assert [c[0] for c in commands] == expected
    for args in commands:
        # The real command line parses them: a renamed or removed option fails here.
        with cvsync.make_context("cvsync", list(args), resilient_parsing=False) as context:
            sub = cvsync.get_command(context, args[0])
            assert isinstance(sub, click.Command)
            sub.make_context(args[0], args[1:], parent=context)
    for args in commands:
        if args[0] == "plan":
            assert "--pr" in args
            assert "--live" in args
        if args[0] == "status":
            assert "--wait" in args
            assert "--timeout" in args


# Offline, against the real objects in the corpus.
@pytest.mark.skipif(CORPUS is None, reason="the shared corpus is not present")
def test_real_4_12_objects_get_the_verdict_their_recommended_conditions_imply(
    tmp_path: Path,
) -> None:
    live_file = corpus_path("clusterversions", IDLE_4_12)
    live = YAML(typ="safe").load(live_file.read_text())
    cluster_id, channel = live["spec"]["clusterID"], live["spec"]["channel"]
    status = live["status"]
    available = [u["version"] for u in status["availableUpdates"]]
    conditional = {
        c["release"]["version"]: c
        for c in status["conditionalUpdates"]
        if next(x for x in c["conditions"] if x["type"] == "Recommended")["status"] != "True"
    }
    z_stream = next(v for v in available if v.startswith("4.12."))
    # Upgradeable=False (AdminAckRequired) holds back every 4.13 target on this cluster:
    # a z-stream target is the one that shows what Recommended alone implies.
    spec = write_spec(tmp_path, cluster_id, channel, z_stream)
    run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live", str(live_file),
                      cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "applies on merge" in run.stdout
    assert f"{z_stream} is in availableUpdates" in run.stdout

    version, entry = next(iter(conditional.items()))
    risks = [risk["name"] for risk in entry["risks"]]
    write_spec(tmp_path, cluster_id, channel, version)
    blocked = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                          str(live_file), "-o", "json", cwd=tmp_path)  # fmt: skip
    assert blocked.returncode == 1
    plan = json.loads(blocked.stdout)
    assert plan["verdict"] == "block"
    reasons = {row["gate"]: row["reason"] for row in plan["upgrade"]["gates"]}
    assert reasons["recommended"] == "RisksNotAccepted"
    for name in risks:
        assert name in plan["upgrade"]["suggestion"]

    missing = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                          str(live_file), "-o", "json", cwd=tmp_path)  # fmt: skip
    assert json.loads(missing.stdout)["upgrade"]["target"] == version
    write_spec(tmp_path, cluster_id, channel, "4.12.999")
    absent = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                         str(live_file), "-o", "json", cwd=tmp_path)  # fmt: skip
    assert absent.returncode == 1
    gates = json.loads(absent.stdout)["upgrade"]["gates"]
    assert {k: v for k, v in gates[0].items() if k != "evidence"} == {
        "gate": "recommended",
        "verdict": "block",
        "reason": "NotRecommended",
    }


@pytest.mark.skipif(CORPUS is None, reason="the shared corpus is not present")
def test_accepting_each_risk_by_name_turns_a_blocked_4_14_target_into_an_apply(
    tmp_path: Path,
) -> None:
    live_file = corpus_path("clusterversions", IDLE_4_12)
    live = YAML(typ="safe").load(live_file.read_text())
    status = live["status"]
    entry = next(
        c
        for c in status["conditionalUpdates"]
        if c["release"]["version"].startswith("4.12.")
        and next(x for x in c["conditions"] if x["type"] == "Recommended")["status"] == "False"
    )
    version = entry["release"]["version"]
    spec = write_spec(tmp_path, live["spec"]["clusterID"], live["spec"]["channel"], version)
    policy = tmp_path / "clusters" / "c" / "policy.yaml"
    accepted = "".join(
        f"    - {{name: {r['name']}, reason: reviewed, approvedBy: sre, expires: 2099-01-01}}\n"
        for r in entry["risks"]
    )
    policy.write_text(POLICY_HEAD + "  acceptedRisks:\n" + accepted)
    run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live", str(live_file),
                      cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "RisksAccepted" in run.stdout
    assert entry["release"]["image"] in run.stdout  # applied as version + digest
    assert "clusters/c/policy.yaml</sub>" in run.stdout


@pytest.mark.skipif(CORPUS is None, reason="the shared corpus is not present")
def test_the_graph_data_gives_the_path_to_the_target(tmp_path: Path) -> None:
    live_file = corpus_path("clusterversions", "4.14.1-idle-completed-availableupdates-null.yaml")
    live = YAML(typ="safe").load(live_file.read_text())
    spec = write_spec(tmp_path, live["spec"]["clusterID"], "stable-4.15", "4.15.59")
    run = cvsync_plan(
        "--pr", "--cluster", "c", "--file", str(spec), "--live", str(live_file),
        "--graph", str(corpus_path("graph")), "-o", "json", cwd=tmp_path,
    )  # fmt: skip
    plan = json.loads(run.stdout)
    assert plan["upgrade"]["path"] == ["4.14.1", "4.15.59"]
    # availableUpdates is null on this cluster: the operator offers nothing to verify against.
    assert plan["verdict"] == "block"
    assert run.returncode == 1


def test_the_shortest_path_takes_one_minor_version_per_hop() -> None:
    builtin = builtin_graph()
    every = sorted({v for versions in builtin.channels.values() for v in versions})
    graph = UpdateGraph.from_data({"all": every}, builtin.blocked_edges)
    path = graph_path(graph, "all", "4.15.10", "4.17.4")
    # Two hops at least (the operator refuses more than one minor at a time), newest first.
    assert path == ("4.15.10", "4.16.6", "4.17.4")
    assert graph_path(graph, "all", "4.17.4", "4.15.10") == ()  # never backwards
    assert graph_path(graph, "other", "4.15.10", "4.16.6") == ()


# cvsync's own status file stands in for the live object.
def test_a_committed_status_file_plans_like_the_object_it_was_written_from(
    tmp_path: Path,
) -> None:
    saved = tmp_path / "live.json"
    with sandbox_thread(SandboxOptions(scenario="idle-4.15", tls=False)) as running:
        live = running.call(
            lambda: running.sandbox.store.get(
                running.sandbox.api.key(CLUSTER_VERSIONS, "", "version")
            )
        )
    assert live is not None
    saved.write_text(json.dumps(live))
    target = live["status"]["availableUpdates"][0]["version"]
    spec = write_spec(tmp_path, live["spec"]["clusterID"], live["spec"]["channel"], target)
    from_object = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                              str(saved), "-o", "json", cwd=tmp_path)  # fmt: skip
    from_status = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                              str(FLEET / "status" / "staging.yaml"), "-o", "json",
                              cwd=tmp_path)  # fmt: skip
    assert from_object.returncode == from_status.returncode == 0
    first, second = json.loads(from_object.stdout), json.loads(from_status.stdout)
    for plan in (first, second):
        del plan["live"]
        del plan["evaluatedAt"]
    # The example's status file is of a cluster with another clusterID: compare the upgrade.
    assert first["upgrade"] == second["upgrade"]


def test_a_forced_target_after_allow_force_ended_is_blocked_as_expired(tmp_path: Path) -> None:
    staging = FLEET / "clusters" / "staging" / "clusterversion.yaml"
    spec = tmp_path / "clusters" / "c" / "clusterversion.yaml"
    spec.parent.mkdir(parents=True)
    spec.write_text(staging.read_text() + "    force: true\n")
    (spec.parent / "policy.yaml").write_text(
        POLICY_HEAD + "  allowForce: {until: 2026-12-01, reason: signature store outage}\n"
    )
    run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                      str(FLEET / "status" / "staging.yaml"), "--at", FRIDAY_EVENING,
                      cwd=tmp_path)  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "is **blocked** (ForceAllowanceExpired)" in run.stdout
    evidence = "allowForce has expired: the policy allowed force until 2026-12-01"
    assert f"| `force` | **block** | ForceAllowanceExpired | {evidence} |" in run.stdout
    assert "Next: to force again, set a new allowForce.until" in run.stdout
    assert "ForceNotAllowed" not in run.stdout


# Against the sandbox cluster: a server-side dry run gives the changes.
def test_against_the_sandbox_cluster_the_dry_run_lists_the_changes(tmp_path: Path) -> None:
    with sandbox_thread(SandboxOptions(scenario="idle-4.15")) as running:
        running.grant("ci", FULL_ACCESS)
        kubeconfig = running.kubeconfig(tmp_path / "kubeconfig", user="ci")
        live = running.call(
            lambda: running.sandbox.store.get(
                running.sandbox.api.key(CLUSTER_VERSIONS, "", "version")
            )
        )
        assert live is not None
        target = live["status"]["availableUpdates"][0]
        spec = write_spec(tmp_path, live["spec"]["clusterID"], "fast-4.15", target["version"])
        run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--kubeconfig",
                          str(kubeconfig), "-o", "json", cwd=tmp_path)  # fmt: skip
        after = running.call(
            lambda: running.sandbox.store.get(
                running.sandbox.api.key(CLUSTER_VERSIONS, "", "version")
            )
        )
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    changed = {change["path"]: change["after"] for change in plan["changes"]}
    assert changed[".spec.channel"] == "fast-4.15"
    assert changed[".spec.desiredUpdate"]["image"] == target["image"]
    assert changed[".spec.desiredUpdate"]["version"] == target["version"]
    assert after == live  # a dry run changes nothing, not even the resourceVersion


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_the_plan_against_a_cluster_writes_accept_risks_only_where_its_crd_has_them(
    tmp_path: Path, feature_set: FeatureSet
) -> None:
    options = SandboxOptions(scenario="accept-risks-techpreview", feature_set=feature_set)
    with sandbox_thread(options) as running:
        running.grant("ci", FULL_ACCESS)
        kubeconfig = running.kubeconfig(tmp_path / "kubeconfig", user="ci")
        live = running.call(
            lambda: running.sandbox.store.get(
                running.sandbox.api.key(CLUSTER_VERSIONS, "", "version")
            )
        )
        assert live is not None
        spec = write_spec(tmp_path, live["spec"]["clusterID"], "fast-4.16", "4.15.14")
        (spec.parent / "policy.yaml").write_text(
            POLICY_HEAD + "  acceptedRisks:\n    - {name: EtcdDefragStall, reason: small etcd, "
            "approvedBy: sre, expires: 2099-12-31}\n"
        )
        run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--kubeconfig",
                          str(kubeconfig), "-o", "json", cwd=tmp_path)  # fmt: skip
        saved = tmp_path / "status.yaml"
        saved.write_text(render_yaml(summarize(live, AgentState(cluster="c"))))
        offline = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live",
                              str(saved), "-o", "json", cwd=tmp_path)  # fmt: skip
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    for answer in (run, offline):
        assert answer.returncode == 0, answer.stderr
        plan = json.loads(answer.stdout)
        changes = {change["path"]: change["after"] for change in plan["changes"]}
        update = changes[".spec.desiredUpdate"]
        assert update["version"] == "4.15.14"
        # Live, the server-side dry run took the body: on Default no undeclared field was
        # sent. From the status file, its risks' Applies conditions show the CRD has them.
        if tech_preview:
            assert update["acceptRisks"] == [{"name": "EtcdDefragStall"}]
        else:
            assert "acceptRisks" not in update


# Bad input: a clear error naming the file, exit 2, never a traceback.
@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no-live", "no such file"),
        ("wrong-kind", "live.yaml"),
        ("bad-policy", "policy.yaml:4:"),
        ("bad-spec", "holds no valid ClusterVersion"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, setup: str, expected: str) -> None:
    spec = write_spec(tmp_path, "0d8a4b6e-2f3c-4e19-b7a5-91c6e2d4f803", "fast-4.16", "4.16.3")
    live = tmp_path / "live.yaml"
    live.write_text((FLEET / "status" / "prod-east.yaml").read_text())
    if setup == "no-live":
        live.unlink()
    elif setup == "wrong-kind":
        live.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    elif setup == "bad-policy":
        (spec.parent / "policy.yaml").write_text(POLICY_HEAD + "  allowMinr: true\n")
    elif setup == "bad-spec":
        spec.write_text(spec.read_text().replace("channel:", "chanel:"))
    run = cvsync_plan("--pr", "--cluster", "c", "--file", str(spec), "--live", str(live),
                      cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2
    assert expected in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
