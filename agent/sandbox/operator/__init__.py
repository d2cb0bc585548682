"""The sandbox's simulated cluster-version operator: the update graph and its risks, payload
loading and preconditions, progress through an update, the status it writes, and the
ready-made scenarios (scenarios/*.yaml) with their knobs.
"""
