"""The error tree: every failure cvsync reports carries a reason and whether a retry can help.

Library exceptions are converted into these at the adapters; messages never hold secrets.
"""

from __future__ import annotations


class CvsyncError(Exception):
    """Base of cvsync's own errors."""

    reason = "Error"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CvsyncError):
    """The command line names something that cannot be used (a missing path, say)."""

    reason = "UsageError"


class SourceError(CvsyncError):
    """Reading the desired state failed (files, git)."""

    reason = "SourceError"
    retryable = True


class SpecError(CvsyncError):
    """The desired state in git is unusable (parse or validation errors, wrong cluster)."""

    reason = "InvalidSpec"


class KubeError(CvsyncError):
    """A request to the Kubernetes API failed; `status` is the HTTP code when there was one."""

    reason = "KubeError"

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class ApplyConflictError(KubeError):
    """Server-side apply refused: fields cvsync applies are owned by other field managers."""

    reason = "ApplyConflict"

    def __init__(
        self,
        message: str,
        conflicts: tuple[tuple[str, str], ...],
        appliers: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(message, status=409, retryable=False)
        self.conflicts = conflicts  # (field path such as ".spec.channel", owning manager)
        # Owners that hold their fields by their own server-side apply (a declared intent),
        # as opposed to an imperative write such as `oc patch` or the console.
        self.appliers = appliers


class UnauthorizedError(KubeError):
    """The API server did not accept the credentials (401). Worth a retry: credentials rotate,
    and the client re-reads them before trying again."""

    reason = "Unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, status=401, retryable=True)


class ForbiddenError(KubeError):
    """The API server's authorizer refused the request (RBAC)."""

    reason = "Forbidden"

    def __init__(self, message: str) -> None:
        super().__init__(message, status=403, retryable=False)


class InvalidObjectError(KubeError):
    """The API server refused the object as invalid (422), with one cause per field."""

    reason = "Invalid"

    def __init__(self, message: str, causes: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message, status=422, retryable=False)
        self.causes = causes  # (field, message)
