"""meta.k8s.io/v1 Table responses, so `kubectl get` prints what it prints against a real
server: ClusterVersion's printer columns from its CRD, NAME and AGE for other kinds.

Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, ResourceType

JsonObject = dict[str, Any]
Column = tuple[str, str, str, Callable[[JsonObject], Any]]  # name, type, format, cell


def _condition(obj: JsonObject, kind: str, field: str) -> Any:
    for condition in obj.get("status", {}).get("conditions") or ():
        if condition.get("type") == kind:
            return condition.get(field)
    return None


def _completed_version(obj: JsonObject) -> Any:
    for entry in obj.get("status", {}).get("history") or ():
        if entry.get("state") == "Completed":
            return entry.get("version")
    return None


_NAME: Column = ("Name", "string", "name", lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "date", "", lambda o: o["metadata"].get("creationTimestamp"))
_CLUSTER_VERSION_COLUMNS: tuple[Column, ...] = (
    _NAME,
    ("Version", "string", "", _completed_version),
    ("Available", "string", "", lambda o: _condition(o, "Available", "status")),
    ("Progressing", "string", "", lambda o: _condition(o, "Progressing", "status")),
    ("Since", "date", "", lambda o: _condition(o, "Progressing", "lastTransitionTime")),
    ("Status", "string", "", lambda o: _condition(o, "Progressing", "message")),
)


def human_duration(seconds: float) -> str:
    """Ages the way kubectl shows them (apimachinery's HumanDuration): 45s, 5m3s, 3h, 12d."""
    if seconds < -1:
        return "<invalid>"
    total = max(int(seconds), 0)
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        rest = total % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years, rest_days = days // 365, days % 365
    if hours < 24 * 365 * 8:
        return f"{years}y{rest_days}d" if rest_days else f"{years}y"
    return f"{years}y"


def _age(timestamp: Any) -> Any:
    if not isinstance(timestamp, str):
        return None
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    return human_duration((datetime.now(UTC) - then).total_seconds())


def _columns(rt: ResourceType) -> tuple[Column, ...]:
    return _CLUSTER_VERSION_COLUMNS if rt is CLUSTER_VERSIONS else (_NAME, _AGE)


def wants_table(accept: str) -> bool:
    first = accept.split(",", maxsplit=1)[0]
    return "as=Table" in first


def table(
    rt: ResourceType, objects: Iterable[JsonObject], resource_version: str, include: str
) -> JsonObject:
    columns = _columns(rt)
    rows = []
    for obj in objects:
        row: JsonObject = {
            "cells": [
                _age(cell(obj)) if kind == "date" else cell(obj) for _, kind, _, cell in columns
            ]
        }
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": name, "type": kind, "format": fmt, "description": "", "priority": 0}
            for name, kind, fmt, _ in columns
        ],
        "rows": rows,
    }
