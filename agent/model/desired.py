"""The desired state of one cycle: the git document and its spec, normalized once when the
spec is taken from git, then handed to diff, plan, drift policy and gates unchanged.

Pure data, built by `spec.normalize.desired_state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.model.documents import ManifestDocument


@dataclass(frozen=True, slots=True)
class DesiredState:
    document: ManifestDocument  # where each field stands in git, for messages
    spec: Mapping[str, Any]  # as git declares it, nulls dropped (the apply fills desiredUpdate)
    metadata: Mapping[str, Any]  # the labels and annotations git declares

    @property
    def annotations(self) -> Mapping[str, str]:
        found = self.metadata.get("annotations")
        return found if isinstance(found, Mapping) else {}
