"""The upgrade rules, pure: upgrade policy files, what the gates read from the live object,
the gates themselves, maintenance windows and their cron expressions, and the decision of
what happens to git's target; reading a live status's update lists without trusting its
shape; the update graph of cincinnati-graph-data and the SemVer order of release versions.
"""
