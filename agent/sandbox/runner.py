"""`cvsync sandbox`: run the sandbox in the foreground until Ctrl-C or SIGTERM.

I/O: the listeners, a kubeconfig file, and a few lines on stdout for the user.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

from agent.sandbox.server import Sandbox, SandboxOptions


async def serve_until_stopped(
    options: SandboxOptions,
    kubeconfig_path: Path | None,
    say: Callable[[str], None],
    stop: asyncio.Event | None = None,
) -> int | None:
    """Serve until SIGINT/SIGTERM (or `stop` is set); every object survives in state_dir.
    Returns the signal that stopped it, if one did."""
    stop = stop or asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        async with Sandbox(options) as sandbox:
            path = sandbox.kubeconfig(kubeconfig_path)
            say(f"cvsync sandbox serving {sandbox.url}")
            if sandbox.admin_port is not None:
                token_file = sandbox.work_dir / "admin-token"
                token_file.write_text(sandbox.admin_token + "\n")
                token_file.chmod(0o600)
                say(
                    f"admin endpoint http://{options.host}:{sandbox.admin_port} "
                    f"(bearer token in {token_file})"
                )
            if not options.tls:
                say("note: kubectl sends no credentials over plain HTTP; use HTTPS for kubectl")
            say(f"kubeconfig written to {path}")
            say(f"  export KUBECONFIG={path}")
            await stop.wait()
            say("stopping")
        return received[0] if received else None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
