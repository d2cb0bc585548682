"""Run the sandbox API server on a thread of its own, for tests that drive it from outside
(kubectl, subprocesses) while the test itself stays synchronous."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from agent.sandbox.apiserver.access import Rule
from agent.sandbox.server import Sandbox, SandboxOptions

T = TypeVar("T")
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


class SandboxThread:
    """A Sandbox whose event loop runs on a background thread."""

    def __init__(self, options: SandboxOptions) -> None:
        self.loop = asyncio.new_event_loop()
        self.sandbox = Sandbox(options)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self.run(self.sandbox.start())

    def stop(self) -> None:
        self.run(self.sandbox.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    def run(self, coroutine: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout=30)

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the sandbox's loop, so it never races a request."""

        async def invoke() -> T:
            return function()

        return self.run(invoke())  # type: ignore[no-any-return]

    def kubeconfig(self, path: Path, user: str | None = None) -> Path:
        if user is None:
            return self.call(lambda: self.sandbox.kubeconfig(path))
        return self.call(lambda: self.sandbox.kubeconfig(path, user=user))

    def grant(self, user: str, rules: Iterable[Rule]) -> None:
        self.call(lambda: self.sandbox.access.set_rules(user, rules))


@contextmanager
def sandbox_thread(options: SandboxOptions | None = None) -> Iterator[SandboxThread]:
    running = SandboxThread(options or SandboxOptions())
    running.start()
    try:
        yield running
    finally:
        running.stop()


def kubectl(
    kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
