"""Run the cluster-version-operator simulator against the sandbox's store: wake on every
ClusterVersion change and at the moment the status will next change by itself, and write
the new status through the /status subresource as the real operator's field manager.

I/O: an asyncio task inside the sandbox process.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from datetime import UTC, datetime

from agent.sandbox.apiserver.handlers import Api, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.apiserver.statuses import ApiError
from agent.sandbox.apiserver.store import Store
from agent.sandbox.operator.simulator import OperatorSimulator

OPERATOR_MANAGER = "cluster-version-operator"
_TARGET = Target(CLUSTER_VERSIONS, "", "version", "status")
_LOG = logging.getLogger(__name__)


async def run_operator(store: Store, api: Api, simulator: OperatorSimulator) -> None:
    """Reconcile until cancelled; never raises for a status the API refuses."""
    watcher = store.watch(
        CLUSTER_VERSIONS.id, "", "version", since=store.resource_version, internal=True
    )
    try:
        while True:
            wake = reconcile_once(store, api, simulator)
            timeout = None
            if wake is not None:
                timeout = max((wake - datetime.now(UTC)).total_seconds(), 0.0)
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the queue yields an event, and the sandbox would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await watcher.queue.get()
    finally:
        store.stop_watching(watcher)


def reconcile_once(store: Store, api: Api, simulator: OperatorSimulator) -> datetime | None:
    """Write the status the operator would have by now; return when it next changes."""
    # The operator learns the cluster's feature set from the cluster: here, the API server's.
    simulator.feature_set = api.feature_set
    live = store.get(api.key(CLUSTER_VERSIONS, "", "version"))
    if live is None:
        return None
    now = datetime.now(UTC)
    status = simulator.reconcile(live, now)
    if status is not None:
        body = copy.deepcopy(live)
        body["status"] = status
        try:
            result = api.replace(_TARGET, body, WriteOptions(manager=OPERATOR_MANAGER))
            live = result.object
        except ApiError as exc:
            _LOG.warning("the simulated operator's status was refused: %s", exc.body["message"])
    upcoming = simulator.next_change(live, now)
    if upcoming is not None and upcoming <= now:
        return now
    return upcoming
