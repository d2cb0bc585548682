"""The wire side of one request: the query options and body a write carries, the verb its
method serves, label selectors, and the JSON answer with its Warning headers.

Pure apart from reading the request's body.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.sandbox.apiserver import statuses
from agent.sandbox.apiserver.admission import warning_header
from agent.sandbox.apiserver.handlers import APPLY_PATCH, WriteOptions, WriteResult
from agent.sandbox.apiserver.resources import ResourceType
from agent.sandbox.apiserver.routing import Target

_DRY_RUN_VALUES = ("", "All")
_FIELD_VALIDATION_VALUES = ("", "Strict", "Warn", "Ignore")


def list_body(
    rt: ResourceType, items: list[dict[str, Any]], resource_version: str
) -> dict[str, Any]:
    metadata = {"resourceVersion": resource_version}
    if rt.validated_by_schema:
        # A custom resource's list is unstructured, and setting its continue token writes the
        # key even when empty; built-in lists leave the empty token out (omitempty).
        metadata = {"continue": "", **metadata}
    return {
        "apiVersion": rt.api_version,
        "kind": f"{rt.kind}List",
        "metadata": metadata,
        "items": items,
    }


def label_selector(selector: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for term in filter(None, selector.split(",")):
        key, equals, value = term.replace("==", "=").partition("=")
        if not equals or key.endswith("!"):
            raise statuses.bad_request(f"unable to parse requirement: {term!r} (only key=value)")
        labels[key.strip()] = value.strip()
    return labels


def resource_version_number(text: str) -> int:
    if not text.isdigit():
        raise statuses.bad_request(f'resourceVersion: Invalid value: "{text}": must be a number')
    return int(text)


def served_verb(method: str, verb: str, target: Target) -> str:
    """The request's verb, if the resource's route takes this method at this path."""
    if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        raise statuses.method_not_allowed(method)
    if method in ("POST", "PUT", "PATCH") and (method == "POST") == bool(target.name):
        raise statuses.method_not_allowed(method)
    if verb not in target.resource.verbs and verb not in ("get", "patch", "update"):
        raise statuses.method_not_allowed(method)
    return verb


def write_options(request: web.Request) -> WriteOptions:
    query = request.query
    dry_run = query.get("dryRun", "")
    if dry_run not in _DRY_RUN_VALUES:
        raise statuses.bad_request(
            f'dryRun: Unsupported value: "{dry_run}": supported values: "All"'
        )
    validation = query.get("fieldValidation", "")
    if validation not in _FIELD_VALIDATION_VALUES:
        raise statuses.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": supported values: '
            '"Ignore", "Strict", "Warn"'
        )
    manager = query.get("fieldManager", "")
    if not manager and request.content_type != APPLY_PATCH:  # apply must name its manager
        manager = manager_from_user_agent(request.headers.get("User-Agent", ""))
    return WriteOptions(
        manager=manager,
        dry_run=dry_run == "All",
        field_validation=validation,
        force=query.get("force", "") in ("true", "True", "1"),
    )


def manager_from_user_agent(user_agent: str) -> str:
    """The field manager a write without ?fieldManager gets: the user agent up to its first /."""
    return user_agent.split("/", maxsplit=1)[0][:128] or "unknown"


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if request.content_type == APPLY_PATCH:
        return raw  # the apply decodes its YAML itself, after checking its options
    try:
        return json.loads(raw) if raw else None
    except ValueError as exc:
        raise statuses.bad_request(f"the request body cannot be decoded: {exc}") from exc


def write_response(result: WriteResult) -> web.StreamResponse:
    response = json_response(result.object, 201 if result.created else 200)
    for text in result.warnings:
        response.headers.add("Warning", warning_header(text))
    return response


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )
