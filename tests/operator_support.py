"""Helpers for the operator simulator's tests: a scenario's cluster and a simulator for it,
reconciling at explicit times, requesting a target as `oc adm upgrade` does, and reading
conditions."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.sandbox.operator.knobs import ScenarioKnobs
from agent.sandbox.operator.releases import release_image
from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.operator.simulator import OperatorSimulator
from agent.sandbox.operator.update_service import UpdateService

GRAPH = UpdateService.builtin()
T0 = datetime(2025, 1, 10, 9, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=30)
ADMIN_ACK = (
    "Kubernetes 1.29 and therefore OpenShift 4.16 remove several APIs which require admin "
    "consideration. Please see the knowledge article https://access.redhat.com/articles/7031404 "
    "for details and instructions."
)
OVERRIDES = (
    "Disabling ownership via cluster version overrides prevents upgrades. "
    "Please remove overrides before continuing."
)
ETCD_RISK = (
    "Clusters updating into this release may see etcd defragmentation stall on large databases, "
    "leaving the Kubernetes API unavailable for several minutes. "
    "https://issues.sandbox.invalid/browse/SANDBOX-101"
)


def cluster(
    name: str, knobs: ScenarioKnobs | None = None, time_scale: float = 1.0
) -> tuple[OperatorSimulator, dict[str, Any]]:
    """A scenario's ClusterVersion and an operator simulator for it, on its feature set."""
    scenario = load_scenario(name)
    simulator = OperatorSimulator(
        GRAPH,
        knobs=knobs or scenario.knobs,
        time_scale=time_scale,
        feature_set=scenario.feature_set,
    )
    return simulator, scenario.cluster_version


def reconciled(simulator: OperatorSimulator, obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    status = simulator.reconcile(obj, now)
    if status is not None:
        obj["status"] = status
    return obj


def request(obj: dict[str, Any], **update: Any) -> dict[str, Any]:
    """What `oc adm upgrade` or the agent does: set spec.desiredUpdate, bumping generation."""
    obj["spec"]["desiredUpdate"] = update
    obj["metadata"]["generation"] += 1
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    return next((c for c in obj["status"]["conditions"] if c["type"] == type_), None)


def must(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    found = condition(obj, type_)
    assert found is not None, f"no {type_} condition"
    return found


def image(version: str) -> str:
    return release_image(version)


def walk(
    simulator: OperatorSimulator, obj: dict[str, Any], start: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """Every status the update goes through, reconciling exactly when next_change says."""
    seen = []
    moment: datetime | None = start
    while moment is not None:
        reconciled(simulator, obj, moment)
        seen.append((moment, copy.deepcopy(obj["status"])))
        moment = simulator.next_change(obj, moment)
        assert len(seen) < 200, "the update never settles"
    return seen


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal(obj: dict[str, Any]) -> str:
    accepted = must(obj, "ReleaseAccepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "PreconditionChecks")
    return str(accepted["message"])
