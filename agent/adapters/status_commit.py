"""What one status commit is made of: the paths a publish may write, the branch it may go to,
its message, and the fast-import stream that builds it on the branch's tip.

Pure helpers of the write side of the git adapter (git_writer.StatusWriter); no git calls.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping

from agent.errors import SourceError

_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\\]")
# git check-ref-format: no space, ~ ^ : ? * [ or backslash, no "..", "@{", "//", no component
# that starts with "." or ends with ".lock", no "/" or "." at the end, not "@" alone.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|(^|/)\.|\.lock(/|$)|[/.]$|^/|^@$")


class StatusPathRefusedError(SourceError):
    """A write outside the status prefix: cvsync never writes the specs people edit."""

    reason = "StatusPathRefused"
    retryable = False


def status_commit_message(
    cluster: str, version: str, state: str, cluster_id: str, source_revision: str
) -> str:
    """`status(<cluster>): <version> <state>` plus the Cluster-ID and Source-Revision trailers."""
    subject = f"status({_one_line(cluster)}): {_one_line(version)} {_one_line(state)}"
    trailers = f"Cluster-ID: {_one_line(cluster_id)}\nSource-Revision: {_one_line(source_revision)}"
    return f"{subject}\n\n{trailers}\n"


def _one_line(value: str) -> str:
    # A newline inside a value would start a new paragraph or forge a trailer.
    return " ".join(value.split()) or "unknown"


def branch_problem(branch: str) -> str | None:
    """Why `branch` cannot be a branch name (git check-ref-format's rules), or None."""
    if not branch or branch.startswith("-") or _BAD_REF.search(branch):
        return f"{branch!r} is not a valid branch name"
    return None


def checked_paths(files: Mapping[str, bytes], allowed_prefix: str) -> dict[str, bytes]:
    """`files` as bytes, once every path is a plain file path under `allowed_prefix`."""
    if not files:
        raise StatusPathRefusedError("nothing to publish: no files given")
    checked: dict[str, bytes] = {}
    for path, data in files.items():
        parts = path.split("/")
        if (
            path != posixpath.normpath(path)
            or not path.startswith(allowed_prefix)
            or _UNSAFE_CHARS.search(path)
            or any(part.lower() in ("", ".", "..", ".git") for part in parts)
        ):
            raise StatusPathRefusedError(
                f"refusing to write {path!r}: cvsync writes only under {allowed_prefix}"
            )
        checked[path] = bytes(data)
    return checked


def blob_ids(files: Mapping[str, bytes], like: str) -> dict[str, str]:
    """The object ids git gives these contents, in the repository's hash (as long as `like`)."""
    digest = hashlib.sha256 if len(like) == 64 else hashlib.sha1
    return {p: digest(b"blob %d\0" % len(d) + d).hexdigest() for p, d in files.items()}


def fast_import_stream(
    ref: str,
    message: str,
    tip: str | None,
    files: Mapping[str, bytes],
    *,
    author: bytes,
    when: int,
) -> bytes:
    """The fast-import commands for one commit on `ref`: `tip`'s tree with only `files`
    replaced (an orphan holding only `files` when tip is None), printing the commit's id."""
    signature = [role + author + b" %d +0000" % when for role in (b"author ", b"committer ")]
    stream = [b"reset " + ref.encode(), b"commit " + ref.encode(), b"mark :1", *signature]
    stream += _data(message.encode())
    stream += [f"from {tip}".encode()] if tip is not None else []
    for path, data in files.items():
        stream += [f"M 100644 inline {path}".encode(), *_data(data)]
    stream += [b"", b"get-mark :1", b"done", b""]
    return b"\n".join(stream)


def _data(payload: bytes) -> list[bytes]:
    # fast-import's exact-length data block: no escaping, any bytes.
    return [f"data {len(payload)}".encode(), payload]
