"""The stages of a reconcile cycle, in the order they run: parse, validate, and later more.

Pure functions over plain data; they never import an adapter.
"""
