"""What cvsync tells people, pure: status summaries and the status documents committed to
git (YAML and Markdown), drift reports and plans, pull-request comments, validation reports,
and Markdown that reads the same on GitHub and GitLab.
"""
