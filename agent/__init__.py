"""cvsync: a GitOps agent that keeps OpenShift's ClusterVersion in line with git."""

__version__ = "0.1.0"
