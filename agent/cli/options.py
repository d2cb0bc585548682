"""What the commands share: exit codes, the options that name a spec, a cluster and an
output, and running a coroutine until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from agent.report.drift_render import FORMATS

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `diff` and `plan` share: which spec, which cluster, which output."""
    for option in reversed(
        [
            click.option("--cluster", required=True, envvar="CVSYNC_CLUSTER"),
            click.option(
                "--file",
                "spec_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The spec to compare (default: clusters/<cluster>/clusterversion.yaml).",
            ),
            click.option("--kubeconfig", type=click.Path(path_type=Path), envvar="KUBECONFIG"),
            click.option("--context", envvar="CVSYNC_CONTEXT"),
            click.option(
                "-o", "--output", type=click.Choice(FORMATS), default="text", show_default=True
            ),
        ]
    ):
        command = option(command)
    return command


async def until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await body(stop)
