"""Entry point for `python -m agent`, the same command as `cvsync`."""

from agent.cli import main

main()
