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


async def apply_taking_back(
    cluster: Cluster,
    body: dict[str, Any],
    *,
    force: bool,
    dry_run: bool,
    live: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], tuple[tuple[str, str], ...]]:
    """Apply `body`; when only imperative writers (oc patch, the console) hold conflicting
    fields, that is the drift git must win over, so take them back with a forced apply.
    Returns the result and the (field, previous owner) pairs taken; raises when another
    applier owns a field (a declared intent cvsync reports instead of overriding).

    With `live` (the object the body was planned on), its managedFields say in advance
    whether the apply takes fields only from imperative writers: then one forced apply,
    pinned to that object's resourceVersion, does it, and is refused if the object changed
    since; without it, or when refused so, the server is asked first (a refusal, then a
    forced apply)."""
    if not force and live is not None:
        takeover = predict_takeover(body, live, FIELD_MANAGER)
        version = (live.get("metadata") or {}).get("resourceVersion")
        if takeover.only_imperative and version:
            metadata = {**(body.get("metadata") or {}), "resourceVersion": version}
            try:
                applied = await cluster.apply(
                    {**body, "metadata": metadata}, force=True, dry_run=dry_run
                )
                return applied, takeover.taken()
            except KubeError as exc:
                if exc.status != 409 or isinstance(exc, ApplyConflictError):
                    raise
                # The object changed since `live` was read: whatever changed it may have
                # been another applier, so the server decides, as without a prediction.
    try:
        return await cluster.apply(body, force=force, dry_run=dry_run), ()
    except ApplyConflictError as exc:
        if exc.appliers:
            raise
        return await cluster.apply(body, force=True, dry_run=dry_run), exc.conflicts
