"""What one reconcile cycle will write: the server-side apply body, or why it writes nothing.

Pure data produced by `sync.plan` and read by the reconciler and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from agent.model.gates import UpgradeCheck

# Set on the git document, equal to spec.desiredUpdate.version, to roll back on purpose.
ALLOW_ROLLBACK_ANNOTATION = "cvsync.io/allow-rollback-to"
# Set by every apply cvsync makes to the revision it applies: its record of what it applied last.
APPLIED_REVISION_ANNOTATION = "cvsync.io/applied-revision"


class PlanReason(StrEnum):
    """CamelCase reasons, as Kubernetes conditions spell them."""

    CLUSTER_ID_MISMATCH = "ClusterIDMismatch"  # stalls: the git file is for another cluster
    CLUSTER_VERSION_NOT_FOUND = "ClusterVersionNotFound"  # stalls: the installer creates it
    ROLLBACK_REFUSED = "RollbackRefused"  # the cluster is ahead of git; desiredUpdate is kept
    ROLLBACK_ALLOWED = "RollbackAllowed"  # the same, with the explicit rollback annotation
    DESIRED_UPDATE_KEPT = "DesiredUpdateKept"  # git dropped desiredUpdate; the target stays


@dataclass(frozen=True, slots=True)
class ApplyPlan:
    """The apply body (None when nothing is written), a stall reason when the cycle must not
    write at all, a human message, and which drifted paths are corrected or only reported."""

    body: dict[str, Any] | None
    stalled: str | None
    message: str
    corrected: tuple[str, ...] = ()
    reported: tuple[str, ...] = ()


PlanVerdict = Literal["apply", "none", "wait", "block"]


@dataclass(frozen=True, slots=True)
class PullRequestPlan:
    """What merging a pull request does to one cluster: the spec changes, the gates' verdict
    on its target, the path there, and where each input came from (for the comment's footer).
    `changes` are leaf changes `{path, before, after}`, from a server-side dry run when the
    cluster was reachable, else worked out from the saved live object."""

    cluster: str
    spec_label: str
    live_label: str
    policy_label: str
    evaluated_at: str
    verdict: PlanVerdict
    stalled: str | None
    message: str
    changes: list[dict[str, Any]]
    reported: tuple[str, ...] = ()
    held: list[dict[str, Any]] = field(default_factory=list)  # {path, before, after, why}
    upgrade: UpgradeCheck | None = None
    path: tuple[str, ...] = ()
    path_source: str = ""
    findings: tuple[str, ...] = ()
