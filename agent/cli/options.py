"""What the commands share: exit codes, the options that name a spec, a cluster and an
output, addresses to listen on, and running a coroutine until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import errno
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agent.errors import UsageError
from agent.settings import DEFAULT_SPEC_PATH

if TYPE_CHECKING:
    import asyncio

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_BUG = 70  # sysexits' EX_SOFTWARE: not 1, which diff, drift and validate use for findings
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

MAX_PORT = 65535
PORT = click.IntRange(0, MAX_PORT)

# What a failed bind means for the person who chose the address.
_LISTEN_PROBLEMS = {
    errno.EADDRINUSE: "address already in use; stop what listens there or choose another port",
    errno.EADDRNOTAVAIL: "not an address of this machine; use one of its own, or 0.0.0.0",
    errno.EACCES: "permission denied (ports below 1024 need privileges); choose a higher port",
}


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class HostPort(click.ParamType[Address, Any]):
    """HOST:PORT to listen on (`[::1]:8080` for IPv6); an empty host is 127.0.0.1."""

    name = "HOST:PORT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Address:
        if isinstance(value, Address):
            return value
        text = str(value)
        host, colon, port = text.rpartition(":")
        if not colon or not port.isdigit():
            self.fail(f"{text!r} is not HOST:PORT, such as 127.0.0.1:8080 or 0.0.0.0:8080", param)
        if int(port) > MAX_PORT:
            self.fail(f"port {port} in {text!r} is out of range (0 to {MAX_PORT})", param)
        host = host.removeprefix("[").removesuffix("]") or "127.0.0.1"
        try:
            socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            self.fail(f"cannot resolve the host {host!r} in {text!r}", param)
        return Address(host, int(port))


def listen_failure(exc: OSError, address: str, flag: str) -> UsageError | None:
    """The one-line error for a listener that could not bind `address`, or None when `exc`
    is not a failed bind."""
    problem = _LISTEN_PROBLEMS.get(exc.errno or 0)
    if problem is None or "bind" not in str(exc):
        return None
    return UsageError(f"cannot listen on {address} ({flag}): {problem}")


def listen_problem(code: int | None) -> str | None:
    """What a bind that failed with errno `code` means, with what to do; None when unknown."""
    return _LISTEN_PROBLEMS.get(code or 0)


def target_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `diff`, `plan` and `drift` share: which spec, which cluster, which output."""
    # Imported here, when those commands are built: the renderers load the diff engine.
    from agent.report.drift_render import FORMATS  # noqa: PLC0415

    for option in reversed(
        [
            click.option(
                "--cluster",
                envvar="CVSYNC_CLUSTER",
                show_envvar=True,
                help="The cluster's directory name in git: reads clusters/<cluster>/"
                "clusterversion.yaml. Not needed with --file.",
            ),
            click.option(
                "--file",
                "spec_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The spec to compare (default: clusters/<cluster>/clusterversion.yaml).",
            ),
            kubeconfig_option,
            context_option,
            click.option(
                "-o",
                "--output",
                type=click.Choice(FORMATS),
                default="text",
                show_default=True,
                help="text for people; json or yaml for machines; markdown for a comment.",
            ),
        ]
    ):
        command = option(command)
    return command


kubeconfig_option = click.option(
    "--kubeconfig",
    type=click.Path(path_type=Path),
    envvar="KUBECONFIG",
    show_envvar=True,
    help="The kubeconfig to reach the API server with (default: ~/.kube/config).",
)
context_option = click.option(
    "--context",
    envvar="CVSYNC_CONTEXT",
    show_envvar=True,
    help="The kubeconfig context to use (default: its current-context).",
)


def spec_file_of(options: dict[str, Any]) -> Path:
    """--file, else the cluster's spec in the checkout; one of the two is required."""
    if options["spec_file"] is not None:
        return Path(options["spec_file"])
    if not options["cluster"]:
        raise click.UsageError(
            "give --cluster NAME (reads clusters/NAME/clusterversion.yaml) or --file PATH"
        )
    return Path(DEFAULT_SPEC_PATH.format(cluster=options["cluster"]))


async def until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> int | None:
    """Run `body` until it returns; SIGINT and SIGTERM set its stop event. Returns the signal
    that stopped it, if one did."""
    import asyncio  # noqa: PLC0415 - only the commands that run a loop pay for it

    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    await body(stop)
    return received[0] if received else None
