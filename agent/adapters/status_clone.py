"""The write-back clone's own settings and upkeep: the environment its git calls run with, and
when and how its .git/shallow is cut back.

Helpers of the write side of the git adapter (git_writer.StatusWriter); no git calls.
"""

from __future__ import annotations

import os
from pathlib import Path

from agent.adapters.git import GitCredentials

# A depth-limited fetch adds a line to .git/shallow, and git sends every line with every
# fetch: past this many, the clone is compacted (StatusWriter._compact).
SHALLOW_LINES = 8
# Publishes in a row built on the commit pushed last, without a fetch; the fetch after them
# cuts the chain of its own commits the clone holds (its depth makes the tip shallow).
OWN_TIP_PUBLISHES = 16


def writer_environment(credentials: GitCredentials) -> dict[str, str]:
    """The read side's variables (names of secrets, never values) plus settings that keep the
    clone ours alone: no hooks from a machine-wide template, and housekeeping in the foreground
    (a detached gc would still be running, holding locks, when the next attempt starts)."""
    env = credentials.environment()
    extra = {"core.hooksPath": os.devnull, "gc.autoDetach": "false"}
    extra["maintenance.autoDetach"] = "false"
    count = int(env["GIT_CONFIG_COUNT"])
    for number, (key, value) in enumerate(extra.items(), start=count):
        env[f"GIT_CONFIG_KEY_{number}"], env[f"GIT_CONFIG_VALUE_{number}"] = key, value
    env["GIT_CONFIG_COUNT"] = str(count + len(extra))
    return env


def shallow_due(git_dir: str | os.PathLike[str]) -> bool:
    """Whether .git/shallow has grown past SHALLOW_LINES."""
    try:
        with Path(git_dir, "shallow").open("rb") as lines:
            return sum(1 for _ in lines) > SHALLOW_LINES
    except FileNotFoundError:
        return False


def compaction(publish_ref: str, tip: str, tracking: str) -> bytes:
    """`git update-ref --stdin` commands that leave `publish_ref` at `tip` and delete the
    remote-tracking refs `git for-each-ref --format='delete %(refname)'` listed: a push
    updates them, and their reflogs would keep every commit reachable."""
    lines = [f"update {publish_ref} {tip}", *filter(None, tracking.split("\n"))]
    return ("\n".join(lines) + "\n").encode()
