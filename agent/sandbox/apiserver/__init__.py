"""The sandbox's Kubernetes API server for ClusterVersion, Lease, Event and Namespace: request
routing and authorization, the verbs over the store, server-side apply and field ownership,
admission and the CRD's schema, watches, discovery, TLS and credentials, fault injection.
"""
