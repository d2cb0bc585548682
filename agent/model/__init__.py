"""Pure data shared by every stage: locations, documents, findings and API tables.

Imports nothing from the rest of `agent`.
"""
