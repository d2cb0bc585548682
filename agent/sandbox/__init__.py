"""A simulated OpenShift control plane on 127.0.0.1: API server for ClusterVersion, Lease and
Event, and a cluster-version-operator simulator. Never imports the agent's spec, sync or report.
"""
