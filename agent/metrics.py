"""cvsync's Prometheus metrics, in a registry of its own (never the process-global one).

Pure bookkeeping; adapters/http.py serves them.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.cycles = Counter(
            "cvsync_cycles", "Reconcile cycles by result.", ["result"], registry=self.registry
        )
        self.drifted_fields = Gauge(
            "cvsync_drifted_fields", "Fields that differ from git now.", registry=self.registry
        )
        self.applies = Counter(
            "cvsync_applies", "Server-side applies sent to the cluster.", registry=self.registry
        )
        self.conflicts = Counter(
            "cvsync_apply_conflicts", "Applies refused by field ownership.", registry=self.registry
        )
        self.last_applied = Info(
            "cvsync_last_applied_revision", "The git revision last applied.", registry=self.registry
        )
        self.cycle_seconds = Histogram(
            "cvsync_cycle_duration_seconds",
            "Duration of reconcile cycles.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "cvsync_git_fetch_duration_seconds",
            "Duration of git fetches (or work-tree reads).",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.upgrade_held = Gauge(
            "cvsync_upgrade_held",
            "1 while git's desiredUpdate is held back by the upgrade gates, by state.",
            ["state"],
            registry=self.registry,
        )
        self.update_state = Gauge(
            "cvsync_update_state",
            "1 for the lifecycle state git's update target is in, 0 for the others.",
            ["state"],
            registry=self.registry,
        )
        self.watch_restarts = Gauge(
            "cvsync_watch_restarts", "Restarts of the ClusterVersion watch.", registry=self.registry
        )
        self.leader = Gauge(
            "cvsync_leader",
            "1 while this replica may act (the leader, or leader election is off), else 0.",
            registry=self.registry,
        )
        self.leader.set(1)
