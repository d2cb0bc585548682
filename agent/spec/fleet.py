"""Checks across files: one ClusterVersion per cluster directory, one file per clusterID.

Pure: the validated documents of a whole run in, findings out.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from agent.model import findings as rules
from agent.model.documents import ManifestDocument
from agent.model.findings import Finding
from agent.spec import formats


def _cluster_directory(doc: ManifestDocument) -> str:
    return posixpath.dirname(doc.file.replace("\\", "/")) or "."


def check_fleet(documents: Sequence[ManifestDocument]) -> list[Finding]:
    out: list[Finding] = []
    by_directory: dict[str, ManifestDocument] = {}
    by_cluster_id: dict[str, ManifestDocument] = {}
    for doc in documents:
        directory = _cluster_directory(doc)
        earlier = by_directory.setdefault(directory, doc)
        if earlier is not doc:
            first = earlier.at_value(())
            out.append(
                rules.FLEET_DUPLICATE_CLUSTER.at(
                    doc.at_value(()),
                    f"{directory}/ already holds a ClusterVersion ({first}); a cluster "
                    "directory describes exactly one cluster",
                    "keep one ClusterVersion per cluster directory; move other clusters to "
                    "their own directories",
                )
            )
        spec = doc.body.get("spec")
        cluster_id = spec.get("clusterID") if isinstance(spec, dict) else None
        if not isinstance(cluster_id, str) or formats.uuid_problem(cluster_id) is not None:
            continue
        owner = by_cluster_id.setdefault(cluster_id.lower(), doc)
        if owner is not doc:
            first_use = owner.at_value(("spec", "clusterID"))
            out.append(
                rules.FLEET_DUPLICATE_CLUSTER_ID.at(
                    doc.at_value(("spec", "clusterID")),
                    f"clusterID {cluster_id} is also used by {first_use}",
                    "each cluster has its own clusterID; copy this cluster's ID from "
                    "oc get clusterversion version -o jsonpath='{.spec.clusterID}'",
                    ".spec.clusterID",
                )
            )
    return out
