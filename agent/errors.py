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
