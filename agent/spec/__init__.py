"""The git side, pure: the YAML of a ClusterVersion file with the position of every field,
the API's validation rules and their suggestions, fleet-wide checks across files, release
version ordering, and normalization of the spec git declares into the one desired state a
reconcile cycle works on. No I/O: bytes in, values and findings out.
"""
