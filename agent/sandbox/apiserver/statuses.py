"""metav1.Status bodies for every refusal, worded as kube-apiserver words them.

Pure.
"""

from __future__ import annotations

from typing import Any

from agent.sandbox.apiserver.resources import ResourceType


class ApiError(Exception):
    """A refusal carried to the HTTP layer: status code plus the Status body."""

    def __init__(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.body = body
        self.code = int(body["code"])
        self.headers = headers or {}


def status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
    }
    if reason:  # an error the server did not classify has no reason (StatusReasonUnknown)
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class PageNotFoundError(Exception):
    """A path no handler claims: the API server's last resort answers in plain text."""

    body = "404 page not found\n"


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    return _resource_details(rt.group, rt.plural, name)


def _resource_details(group: str, resource: str, name: str) -> dict[str, Any]:
    # metav1.StatusDetails' fields are all omitempty.
    details = {"name": name, "group": group, "kind": resource}
    return {key: value for key, value in details.items() if value}


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(404, "NotFound", f'{rt.qualified_plural} "{name}" not found', _details(rt, name))
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(
            409,
            "AlreadyExists",
            f'{rt.qualified_plural} "{name}" already exists',
            _details(rt, name),
        )
    )


def conflict(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        status(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {rt.qualified_plural} "{name}": the object has '
            "been modified; please apply your changes to the latest version and try again",
            _details(rt, name),
        )
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, "BadRequest", message))


def unauthorized() -> ApiError:
    return ApiError(status(401, "Unauthorized", "Unauthorized"))


def forbidden(group: str, resource: str, name: str, reason_text: str) -> ApiError:
    """errors.NewForbidden for a resource the request names, whether the server serves it
    or not: authorization runs before any routing."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    return ApiError(
        status(
            403,
            "Forbidden",
            f"{subject} is forbidden: {reason_text}",
            _resource_details(group, resource, name),
        )
    )


def no_route() -> ApiError:
    """What the built-in API groups' router (go-restful) answers for a path it has no route
    for, such as an unknown resource under /api/v1 (k8s.io/apiserver server/handler.go)."""
    cause = {"reason": "UnexpectedServerResponse", "message": "404: Page Not Found"}
    return ApiError(
        status(
            404, "NotFound", "the server could not find the requested resource", {"causes": [cause]}
        )
    )


def namespace_not_found(namespace: str) -> ApiError:
    """The NamespaceLifecycle admission plugin's answer to a write into a missing namespace."""
    return ApiError(
        status(
            404,
            "NotFound",
            f'namespaces "{namespace}" not found',
            _resource_details("", "namespaces", namespace),
        )
    )


def method_not_allowed(method: str) -> ApiError:
    return ApiError(
        status(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method})",
        )
    )


def unsupported_media_type(content_type: str, accepted: tuple[str, ...]) -> ApiError:
    return ApiError(
        status(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(accepted)}",
        )
    )


def expired(requested: int, oldest: int) -> dict[str, Any]:
    return status(410, "Expired", f"too old resource version: {requested} ({oldest})")


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return ApiError(
        status(
            504,
            "Timeout",
            f"Too large resource version: {requested}, current: {current}",
            {
                "causes": [
                    {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                ],
                "retryAfterSeconds": 1,
            },
        ),
        {"Retry-After": "1"},
    )


def injected(code: int, retry_after: int | None) -> ApiError:
    reasons = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}
    reason = reasons.get(code, "InternalError")
    message = {
        429: "Too many requests, please try again later.",
        503: "the server is currently unable to handle the request",
    }.get(
        code, 'an error on the server ("injected fault") has prevented the request from succeeding'
    )
    details = {"retryAfterSeconds": retry_after} if retry_after is not None else None
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(status(code, reason, message, details), headers)
