"""`cvsync demo`: the whole loop in under a minute; the script itself is demo_script."""

from __future__ import annotations

import asyncio
import sys

import click


@click.command()
def demo() -> None:
    """Show the whole loop in under a minute against the built-in sandbox cluster."""
    from agent.cli.demo_script import run_demo  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    sys.exit(asyncio.run(run_demo(click.echo)))
