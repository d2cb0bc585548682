"""The sandbox's own small update graph: 4.15.x, 4.16.x and 4.17.x on candidate, fast, stable and
eus channels, with conditional risks in the shape of cincinnati-graph-data's blocked-edges.

Pure data written for the sandbox; versions, risks and URLs are made up (.invalid hosts).
"""

from __future__ import annotations

from agent.upgrade.graph import BlockedEdge, MatchingRule, Risk, UpdateGraph


def _z(minor: int, first: int, last: int) -> list[str]:
    return [f"4.{minor}.{z}" for z in range(first, last + 1)]


# As in graph-data, a channel also lists the previous minor's releases that may update into it,
# and stable trails fast, which trails candidate.
BUILTIN_CHANNELS: dict[str, list[str]] = {
    "candidate-4.15": _z(15, 10, 16),
    "fast-4.15": _z(15, 10, 16),
    "stable-4.15": _z(15, 10, 15),
    "candidate-4.16": [*_z(15, 10, 16), "4.16.0-rc.4", *_z(16, 0, 6)],
    "fast-4.16": [*_z(15, 10, 16), *_z(16, 0, 6)],
    "stable-4.16": [*_z(15, 10, 15), *_z(16, 2, 5)],
    "eus-4.16": [*_z(15, 12, 15), *_z(16, 2, 5)],
    "candidate-4.17": [*_z(16, 0, 6), "4.17.0-rc.2", *_z(17, 0, 4)],
    "fast-4.17": [*_z(16, 0, 6), *_z(17, 0, 4)],
    "stable-4.17": [*_z(16, 2, 6), *_z(17, 1, 3)],
}

ETCD_DEFRAG_STALL = Risk(
    name="EtcdDefragStall",
    message=(
        "Clusters updating into this release may see etcd defragmentation stall on large "
        "databases, leaving the Kubernetes API unavailable for several minutes."
    ),
    url="https://issues.sandbox.invalid/browse/SANDBOX-101",
    matching_rules=(MatchingRule("Always"),),
)

AZURE_NODE_BOOT_DELAY = Risk(
    name="AzureNodeBootDelay",
    message=(
        "Azure clusters may see new nodes take more than 20 minutes to become Ready after the "
        "update, delaying machine scale-up."
    ),
    url="https://issues.sandbox.invalid/browse/SANDBOX-102",
    matching_rules=(
        MatchingRule(
            "PromQL",
            'group(cluster_infrastructure_provider{_id="",type="Azure"})\n'
            "or\n"
            '0 * group(cluster_infrastructure_provider{_id=""})\n',
        ),
    ),
)

METALLB_SPEAKER_RESTART = Risk(
    name="MetalLBSpeakerRestart",
    message=(
        "Clusters running MetalLB in layer 2 mode may stop announcing service IPs while speaker "
        "pods restart during the update."
    ),
    url="https://issues.sandbox.invalid/browse/SANDBOX-103",
    matching_rules=(
        MatchingRule(
            "PromQL",
            'group(csv_succeeded{_id="",name=~"metallb-operator[.].*"})\n'
            "or\n"
            '0 * group(csv_count{_id=""})\n',
        ),
    ),
)

PRE_RELEASE = Risk(
    name="PreRelease",
    message=(
        "This is a pre-release version, and you should update to a general availability "
        "release instead."
    ),
    url="https://issues.sandbox.invalid/browse/SANDBOX-104",
    matching_rules=(MatchingRule("Always"),),
)

FROM_4_15 = r"4[.]15[.].*"

BUILTIN_BLOCKED_EDGES: tuple[BlockedEdge, ...] = (
    BlockedEdge("4.15.14", FROM_4_15, ETCD_DEFRAG_STALL),
    BlockedEdge("4.16.3", FROM_4_15, AZURE_NODE_BOOT_DELAY),
    BlockedEdge("4.16.4", FROM_4_15, AZURE_NODE_BOOT_DELAY),
    BlockedEdge("4.16.4", FROM_4_15, METALLB_SPEAKER_RESTART),
    BlockedEdge("4.16.0-rc.4", r".*", PRE_RELEASE),
    BlockedEdge("4.17.0-rc.2", r".*", PRE_RELEASE),
    # A legacy entry (only `to` and `from`): the oldest 4.15s may not go straight to 4.16.0.
    BlockedEdge("4.16.0", r"4[.]15[.]1[0-2]"),
)


def builtin_graph() -> UpdateGraph:
    """Our own small graph: 4.15.x-4.17.x on candidate/fast/stable/eus, with a few risks."""
    return UpdateGraph.from_data(BUILTIN_CHANNELS, BUILTIN_BLOCKED_EDGES)
