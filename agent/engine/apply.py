"""Applying a planned body as cvsync, taking fields back from imperative writers: decided in
advance from the live object's managedFields when they can tell, else from the server's answer.

Async only where it awaits the Cluster port; the prediction is the pure `sync.takeover`.
"""

from __future__ import annotations

from typing import Any

from agent.engine.ports import Cluster
from agent.errors import ApplyConflictError, KubeError
from agent.sync.diff import FIELD_MANAGER
from agent.sync.takeover import predict_takeover

Taken = tuple[tuple[str, str], ...]
# How long a takeover waits for the operator to answer the edit it takes back; only while
# the operator has been seen answering edits at all (an operator that stops is not waited on).
OPERATOR_ANSWER_WAIT = 1.0


async def apply_taking_back(
    cluster: Cluster,
    body: dict[str, Any],
    *,
    force: bool,
    dry_run: bool,
    live: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Taken]:
    """Apply `body`; when only imperative writers (oc patch, the console) hold conflicting
    fields, that is the drift git must win over, so take them back with a forced apply.
    Returns the result and the (field, previous owner) pairs taken; raises when another
    applier owns a field (a declared intent cvsync reports instead of overriding).

    With `live` (the object the body was planned on), its managedFields say in advance
    whether the apply takes fields only from imperative writers: then one forced apply,
    pinned to that object's resourceVersion, does it; the server refuses it if the object
    changed since (it is sent once more, pinned to the newer version, when only the status
    changed). Without `live`, or when refused so, the server is asked first (a refusal,
    then a forced apply)."""
    if not force and live is not None:
        done = await _forced_as_predicted(cluster, body, live, dry_run)
        if done is not None:
            return done
    try:
        return await cluster.apply(body, force=force, dry_run=dry_run), ()
    except ApplyConflictError as exc:
        if exc.appliers:
            raise
        return await cluster.apply(body, force=True, dry_run=dry_run), exc.conflicts


async def _forced_as_predicted(
    cluster: Cluster, body: dict[str, Any], live: dict[str, Any], dry_run: bool
) -> tuple[dict[str, Any], Taken] | None:
    """The forced apply `live`'s managedFields call for, pinned to its resourceVersion; None
    when they call for none, or the object changed since in a way that may matter."""
    for attempt in range(2):
        takeover = predict_takeover(body, live, FIELD_MANAGER)
        version = _version(live)
        if not takeover.only_imperative or not version:
            return None
        if not attempt and not dry_run:
            # The operator answers an edit of the spec with a status write of its own, which
            # would refuse an apply pinned to the edit's version: let it answer first.
            answered = await cluster.answered(live, OPERATOR_ANSWER_WAIT)
            if answered is not live and _same_intent(live, answered) and _version(answered):
                live, version = answered, _version(answered)
        metadata = {**(body.get("metadata") or {}), "resourceVersion": version}
        try:
            pinned = {**body, "metadata": metadata}
            return await cluster.apply(pinned, force=True, dry_run=dry_run), takeover.taken()
        except KubeError as exc:
            if exc.status != 409 or isinstance(exc, ApplyConflictError):
                raise
        if attempt:
            return None
        # Refused: the object changed since `live`. Often only its status did (the operator
        # answering the very edit being taken back): then the same apply, pinned to the
        # newer version, decides the same. A spec or ownership change may have been another
        # applier's, so the server decides then.
        newer = await cluster.live()
        if newer is None or _version(newer) == version or not _same_intent(live, newer):
            return None
        live = newer
    return None


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _same_intent(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Equal spec and equal ownership of it (status writers and write times aside)."""

    def intent(obj: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
        entries = (obj.get("metadata") or {}).get("managedFields") or ()
        owners = [
            {key: value for key, value in entry.items() if key != "time"}
            for entry in entries
            if entry.get("subresource") != "status"
        ]
        return obj.get("spec"), owners

    return intent(first) == intent(second)
