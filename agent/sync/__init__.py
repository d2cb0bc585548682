"""Desired against live, pure: the diff keyed the way the API keys its lists, who owns each
field (metadata.managedFields), the policy's drift actions, and the apply plan: the
server-side apply body a cycle sends, or why it sends nothing.
"""
