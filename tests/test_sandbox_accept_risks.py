"""ClusterUpdateAcceptRisks on the simulated operator (TechPreviewNoUpgrade clusters): the Applies
condition of every risk, status.conditionalUpdateRisks and riskNames, risks accepted by name in
spec.desiredUpdate.acceptRisks, and the accept-risks-techpreview scenario's block.

Sources: openshift/cluster-version-operator pkg/cvo/availableupdates.go (loadRiskConditions,
evaluateConditionalUpdate, unknownExposureMessage) and pkg/cvo/status_test.go
(Test_conditionalUpdateRisks); the TechPreviewNoUpgrade ClusterVersion CRD of openshift/api
(spec.desiredUpdate.acceptRisks, status.conditionalUpdateRisks: "If all risks for a conditional
update are included in the spec.desiredUpdate.acceptRisks set, the conditional update can
proceed, otherwise it is blocked"). The operator's own RecommendedUpdate precondition
(pkg/payload/precondition/clusterversion/recommendedupdate.go) still only warns; the block is
the scenario's knob blockUnacceptedRisks, worded as the operator words any blocking failure.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from typing import Any

import aiohttp
from operator_support import ETCD_RISK, T0, cluster, image, must, reconciled, refusal, request

from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.operator.simulator import OperatorSimulator
from agent.sandbox.server import Sandbox, SandboxOptions

SCENARIO = "accept-risks-techpreview"
CURRENT = {"version": "4.15.13", "image": image("4.15.13")}
ETCD_NOT_RECOMMENDED = (
    'Precondition "ClusterVersionRecommendedUpdate" failed because of "EtcdDefragStall": '
    f"Update from 4.15.13 to 4.15.14 is not recommended:\n\n{ETCD_RISK}"
)
METALLB_FAILURE = (
    'executing PromQL query: Post "https://thanos-querier.openshift-monitoring.svc.cluster.local:'
    '9091/api/v1/query": dial tcp: lookup thanos-querier.openshift-monitoring.svc.cluster.local: '
    "no such host"
)


def accepting(*names: str) -> list[dict[str, str]]:
    return [{"name": name} for name in names]


def by_version(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["release"]["version"]: c for c in obj["status"]["conditionalUpdates"]}


def recommended(obj: dict[str, Any], version: str) -> dict[str, Any]:
    return dict(by_version(obj)[version]["conditions"][0])


def offered(obj: dict[str, Any]) -> list[str]:
    return [u["version"] for u in obj["status"]["availableUpdates"] or ()]


def test_the_techpreview_scenario_names_its_feature_set_and_the_others_the_default() -> None:
    assert load_scenario(SCENARIO).feature_set == "TechPreviewNoUpgrade"
    assert load_scenario("conditional-risks").feature_set == "Default"


def test_every_risk_carries_its_applies_condition_and_is_listed_once() -> None:
    simulator, obj = cluster(SCENARIO)
    del obj["status"]["conditionalUpdateRisks"]
    reconciled(simulator, obj, T0)
    risks = {risk["name"]: risk for risk in obj["status"]["conditionalUpdateRisks"]}
    assert list(risks) == ["AzureNodeBootDelay", "EtcdDefragStall", "MetalLBSpeakerRestart"]
    assert risks["AzureNodeBootDelay"]["conditions"] == [
        {
            "lastTransitionTime": "2025-01-10T09:00:00Z",
            "message": "",
            "reason": "Match",
            "status": "True",
            "type": "Applies",
        }
    ]
    assert risks["EtcdDefragStall"]["conditions"][0]["reason"] == "Match"  # an Always rule
    unknown = risks["MetalLBSpeakerRestart"]["conditions"][0]
    assert (unknown["status"], unknown["reason"]) == ("Unknown", "EvaluationFailed")
    assert unknown["message"] == (
        f"Could not evaluate exposure to update risk MetalLBSpeakerRestart ({METALLB_FAILURE})\n"
        "  MetalLBSpeakerRestart description: Clusters running MetalLB in layer 2 mode may stop "
        "announcing service IPs while speaker pods restart during the update.\n"
        "  MetalLBSpeakerRestart URL: https://issues.sandbox.invalid/browse/SANDBOX-103"
    )
    both = by_version(obj)["4.16.4"]
    assert both["riskNames"] == ["AzureNodeBootDelay", "MetalLBSpeakerRestart"]
    assert [r["conditions"] for r in both["risks"]] == [
        risks["AzureNodeBootDelay"]["conditions"],
        risks["MetalLBSpeakerRestart"]["conditions"],
    ]
    # The same cluster on the Default feature set publishes none of it.
    default = OperatorSimulator(simulator.graph, knobs=simulator.knobs)
    reconciled(default, obj, T0)
    assert "conditionalUpdateRisks" not in obj["status"]
    assert all("riskNames" not in c for c in obj["status"]["conditionalUpdates"])


def test_an_accepted_applying_risk_makes_its_update_recommended_and_offered() -> None:
    simulator, obj = cluster(SCENARIO)
    assert recommended(obj, "4.15.14")["status"] == "False"
    assert "4.15.14" not in offered(obj)
    reconciled(simulator, request(obj, **CURRENT, acceptRisks=accepting("EtcdDefragStall")), T0)
    assert recommended(obj, "4.15.14") == {
        "lastTransitionTime": "2025-01-10T09:00:00Z",
        "message": "The update is recommended, because either risk does not apply to this "
        "cluster or it is accepted by cluster admins.",
        "reason": "AllExposedRisksAccepted",
        "status": "True",
        "type": "Recommended",
    }
    assert "4.15.14" in offered(obj)
    # Offered, it is reachable by version alone and passes the preconditions: no warning.
    wanted = request(obj, version="4.15.14", acceptRisks=accepting("EtcdDefragStall"))
    reconciled(simulator, wanted, T0)
    entry = obj["status"]["history"][0]
    assert entry["version"] == "4.15.14"
    assert "acceptedRisks" not in entry


def test_accepting_a_risk_that_could_not_be_evaluated_leaves_it_unknown() -> None:
    simulator, obj = cluster(SCENARIO)
    names = accepting("AzureNodeBootDelay", "MetalLBSpeakerRestart")
    reconciled(simulator, request(obj, **CURRENT, acceptRisks=names), T0)
    assert recommended(obj, "4.16.3")["reason"] == "AllExposedRisksAccepted"
    unknown = recommended(obj, "4.16.4")
    assert (unknown["status"], unknown["reason"]) == ("Unknown", "EvaluationFailed")
    assert "4.16.4" not in offered(obj)


def test_an_unaccepted_applying_risk_is_refused_until_accepted_or_forced() -> None:
    simulator, obj = cluster(SCENARIO)
    target = {"version": "4.15.14", "image": image("4.15.14")}
    reconciled(simulator, request(obj, **target), T0)
    assert refusal(obj) == (
        f'Preconditions failed for payload loaded version="4.15.14" image="{image("4.15.14")}": '
        f"{ETCD_NOT_RECOMMENDED}"
    )
    assert obj["status"]["desired"]["version"] == "4.15.13"
    forced = copy.deepcopy(obj)
    reconciled(simulator, request(obj, **target, acceptRisks=accepting("EtcdDefragStall")), T0)
    assert must(obj, "ReleaseAccepted")["reason"] == "PayloadLoaded"
    assert "acceptedRisks" not in obj["status"]["history"][0]
    reconciled(simulator, request(forced, **target, force=True), T0)
    assert forced["status"]["history"][0]["acceptedRisks"] == (
        f"Forced through blocking failures: {ETCD_NOT_RECOMMENDED}"
    )


def test_without_the_block_an_unaccepted_risk_only_warns_as_the_operator_source_does() -> None:
    simulator, obj = cluster(SCENARIO)
    simulator.knobs = replace(simulator.knobs, block_unaccepted_risks=False)
    reconciled(simulator, request(obj, version="4.15.14", image=image("4.15.14")), T0)
    assert obj["status"]["history"][0]["acceptedRisks"] == ETCD_NOT_RECOMMENDED


def test_the_techpreview_feature_gates_hold_minor_updates() -> None:
    simulator, obj = cluster(SCENARIO)
    reconciled(simulator, request(obj, version="4.16.6"), T0)
    assert refusal(obj).endswith(
        'Precondition "ClusterVersionUpgradeable" failed because of '
        '"FeatureGates_RestrictedFeatureGates_TechPreviewNoUpgrade": Cluster operator '
        "config-operator should not be upgraded between minor or major versions: "
        'FeatureGatesUpgradeable: "TechPreviewNoUpgrade" does not allow updates'
    )


# --- the sandbox over HTTP ---------------------------------------------------------------------

CV = "/apis/config.openshift.io/v1/clusterversions/version"


async def patch_spec(session: aiohttp.ClientSession, sandbox: Sandbox, spec: Any) -> None:
    async with session.patch(
        sandbox.url + CV,
        json={"spec": spec},
        headers={
            "Authorization": f"Bearer {sandbox.admin_token}",
            "Content-Type": "application/merge-patch+json",
        },
    ) as reply:
        assert reply.status == 200, await reply.text()


async def served(session: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
    async with session.get(sandbox.url + CV, headers=headers) as reply:
        assert reply.status == 200
        found: dict[str, Any] = await reply.json()
        return found


async def until(
    session: aiohttp.ClientSession, sandbox: Sandbox, check: Any, timeout: float = 30
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        obj = await served(session, sandbox)
        if check(obj):
            return obj
        assert asyncio.get_running_loop().time() < deadline, obj["status"]
        await asyncio.sleep(0.05)


def accepted_reason(obj: dict[str, Any]) -> str:
    return str(
        next(c for c in obj["status"]["conditions"] if c["type"] == "ReleaseAccepted")["reason"]
    )


async def test_a_techpreview_sandbox_refuses_an_unaccepted_risk_then_runs_the_accepted_update() -> (
    None
):
    options = SandboxOptions(
        scenario=SCENARIO,
        feature_set=load_scenario(SCENARIO).feature_set,
        time_scale=3000,
        tls=False,
    )
    target = {"version": "4.15.14", "image": image("4.15.14")}
    async with Sandbox(options) as sandbox, aiohttp.ClientSession() as session:
        obj = await served(session, sandbox)
        names = [r["name"] for r in obj["status"]["conditionalUpdateRisks"]]
        assert names == ["AzureNodeBootDelay", "EtcdDefragStall", "MetalLBSpeakerRestart"]
        await patch_spec(session, sandbox, {"desiredUpdate": target})
        refused = await until(
            session, sandbox, lambda o: accepted_reason(o) == "PreconditionChecks"
        )
        assert refused["status"]["desired"]["version"] == "4.15.13"
        await patch_spec(
            session, sandbox, {"desiredUpdate": {"acceptRisks": accepting("EtcdDefragStall")}}
        )
        done = await until(
            session,
            sandbox,
            lambda o: (
                (o["status"]["history"][0]["version"], o["status"]["history"][0]["state"])
                == ("4.15.14", "Completed")
            ),
        )
        assert done["spec"]["desiredUpdate"]["acceptRisks"] == accepting("EtcdDefragStall")
        assert "acceptedRisks" not in done["status"]["history"][0]


async def test_on_the_default_feature_set_the_same_cluster_takes_the_update_with_a_warning() -> (
    None
):
    options = SandboxOptions(scenario=SCENARIO, time_scale=3000, tls=False)
    async with Sandbox(options) as sandbox, aiohttp.ClientSession() as session:
        obj = await served(session, sandbox)
        assert "conditionalUpdateRisks" not in obj["status"]
        # The fields the Default schema pruned are ones this operator does not write either:
        # it agrees with what is stored and stays quiet.
        await asyncio.sleep(0.5)
        quiet = await served(session, sandbox)
        assert quiet["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
        target = {"version": "4.15.14", "image": image("4.15.14")}
        await patch_spec(session, sandbox, {"desiredUpdate": target})
        started = await until(
            session, sandbox, lambda o: o["status"]["history"][0]["version"] == "4.15.14"
        )
        assert started["status"]["history"][0]["acceptedRisks"] == ETCD_NOT_RECOMMENDED
        assert "conditionalUpdateRisks" not in started["status"]
