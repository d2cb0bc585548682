"""`cvsync demo`: the whole loop in under a minute, on this machine only. Starts the
sandbox cluster, makes a git repository with a cluster spec, runs the agent, merges an
upgrade, shows it progress to Completed, then edits the cluster behind git's back and
shows cvsync put it back. Everything lives in a temporary directory removed at the end.

I/O: the sandbox, git, the agent, and lines on the terminal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from agent.engine.bootstrap import run_agent
from agent.engine.runtime import Runtime
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.settings import GitSettings, Settings

SPEC_PATH = "clusters/demo/clusterversion.yaml"
_IDENTITY = {
    "GIT_AUTHOR_NAME": "Platform Engineer",
    "GIT_AUTHOR_EMAIL": "platform@example.com",
    "GIT_COMMITTER_NAME": "Platform Engineer",
    "GIT_COMMITTER_EMAIL": "platform@example.com",
}
Say = Callable[[str], None]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **_IDENTITY, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def _spec(cluster_id: str, version: str | None) -> str:
    text = (
        "apiVersion: config.openshift.io/v1\nkind: ClusterVersion\nmetadata:\n  name: version\n"
        f"spec:\n  clusterID: {cluster_id}\n  channel: stable-4.15\n"
    )
    return text + (f"  desiredUpdate:\n    version: {version}\n" if version else "")


class _Repository:
    def __init__(self, root: Path) -> None:
        self.bare, self.work = root / "fleet.git", root / "fleet"
        self.bare.mkdir(parents=True)
        _git(self.bare, "init", "--bare", "--initial-branch=main")
        _git(root, "clone", str(self.bare), str(self.work))
        _git(self.work, "checkout", "-B", "main")

    def commit(self, text: str, message: str) -> str:
        path = self.work / SPEC_PATH
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        _git(self.work, "add", SPEC_PATH)
        _git(self.work, "commit", "-m", message)
        _git(self.work, "push", "origin", "main")
        return _git(self.work, "rev-parse", "--short", "HEAD")


def _bar(percent: int, width: int = 30) -> str:
    filled = width * percent // 100
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:3d}%"


async def run_demo(say: Say, *, time_scale: float = 240.0, timeout: float = 50.0) -> int:
    # The story narrates each step, stalls included; the agent's own log would repeat them.
    logging.getLogger("cvsync").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="cvsync-demo-") as scratch:
        root = Path(scratch)
        options = SandboxOptions(
            scenario="idle-4.15", time_scale=time_scale, work_dir=root / "sandbox"
        )
        async with Sandbox(options) as sandbox:
            return await _story(sandbox, root, say, timeout)


async def _story(sandbox: Sandbox, root: Path, say: Say, timeout: float) -> int:
    def live() -> dict[str, Any]:
        found = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert found is not None
        return found

    deadline = time.monotonic() + timeout

    async def until(check: Callable[[], bool], what: str) -> float:
        started = time.monotonic()
        while not check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the demo timed out waiting for {what}")
            await asyncio.sleep(0.01)
        return (time.monotonic() - started) * 1000

    sandbox.access.set_rules("cvsync", FULL_ACCESS)
    kubeconfig = sandbox.kubeconfig(root / "kubeconfig", user="cvsync")
    cluster_id = live()["spec"]["clusterID"]
    current = live()["status"]["desired"]["version"]
    say(f"1. sandbox cluster at {sandbox.url}: OpenShift {current}, channel stable-4.15")
    repo = _Repository(root / "git")
    sha = repo.commit(_spec(cluster_id, None), "Add the demo cluster")
    say(f"2. git repository with {SPEC_PATH} (commit {sha})")
    secret = root / "webhook-secret"
    secret.write_bytes(os.urandom(16).hex().encode())
    settings = Settings(
        cluster="demo",
        git=GitSettings(repo=repo.bare.as_uri(), workdir=root / "agent", interval=3600),
        kubeconfig=kubeconfig,
        http_port=0,
        webhook_secret_file=secret,
    )
    stop = asyncio.Event()
    started: asyncio.Future[Runtime] = asyncio.get_running_loop().create_future()
    agent = asyncio.create_task(run_agent(settings, stop, started))
    try:
        runtime = await asyncio.wait_for(started, 10)
        await asyncio.wait_for(runtime.started.wait(), 10)
        outcome = await runtime.wait_for_cycles(1, timeout=10)
        assert outcome is not None
        detail = outcome.message or outcome.reason
        say(f"3. cvsync run: first cycle {outcome.result.value} ({detail})")

        await _show_a_risky_target_held(
            live(), repo, runtime, secret, cluster_id=cluster_id, say=say
        )

        target = live()["status"]["availableUpdates"][0]["version"]
        sha = repo.commit(_spec(cluster_id, target), f"Upgrade to {target}")
        await _notify(runtime, secret.read_bytes(), say)
        say(f"5. merged a pull request: desiredUpdate.version {target} (commit {sha})")
        waited = await until(
            lambda: (live()["spec"].get("desiredUpdate") or {}).get("version") == target,
            "the version bump to be applied",
        )
        say(f"   applied to the cluster {waited:.0f} ms after the webhook")
        await _show_progress(live, target, until, say)

        sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version"),
            MERGE_PATCH,
            {"spec": {"channel": "fast-4.16"}},
            WriteOptions(manager="oc"),
        )
        say("7. someone ran `oc patch clusterversion version` behind git's back: channel fast-4.16")
        corrected = sum(1 for o in runtime.recent_outcomes if o.reason == "DriftCorrected")
        waited = await until(lambda: live()["spec"].get("channel") == "stable-4.15", "the fix")
        await until(
            lambda: (
                sum(1 for o in runtime.recent_outcomes if o.reason == "DriftCorrected") > corrected
            ),
            "the cycle that put it back",
        )
        say(f"   cvsync put channel stable-4.15 back in {waited:.0f} ms (DriftCorrected)")
        say("done: the cluster matches git again; everything is cleaned up")
        return 0
    finally:
        stop.set()
        await asyncio.wait_for(agent, 10)


async def _show_a_risky_target_held(
    cluster: dict[str, Any],
    repo: _Repository,
    runtime: Runtime,
    secret: Path,
    *,
    cluster_id: str,
    say: Say,
) -> None:
    """A pull request for a conditional update with a risk nobody accepted: the gates hold it
    and the cluster does not move."""
    risky = next(
        (
            entry["release"]["version"]
            for entry in cluster["status"].get("conditionalUpdates") or []
            if any(
                c.get("type") == "Recommended" and c.get("status") == "False"
                for c in entry.get("conditions") or []
            )
        ),
        None,
    )
    if risky is None:
        return
    sha = repo.commit(_spec(cluster_id, risky), f"Upgrade to {risky}")
    await _notify(runtime, secret.read_bytes(), say)
    say(f"4. merged a pull request for {risky}, a conditional update (commit {sha})")
    deadline = time.monotonic() + 20
    while True:
        held = next(
            (
                o
                for o in reversed(runtime.recent_outcomes)
                if o.attempted and sha in str(o.attempted)
            ),
            None,
        )
        if held is not None or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    check = held.upgrade if held is not None else None
    if check is None or not check.pending:
        say("   the upgrade gates did not hold it back")
        return
    names = ", ".join(risk.name for risk in check.risks if not risk.accepted)
    reasons = ", ".join(row.reason for row in check.decision.blocking)
    say(f"   {check.reason}: {reasons} ({names}); the cluster stays where it is")
    say("   to take it anyway, accept the risk by name in clusters/demo/policy.yaml")


async def _notify(runtime: Runtime, secret: bytes, say: Say) -> None:
    body = b'{"ref": "refs/heads/main"}'
    signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    url = f"http://127.0.0.1:{runtime.http_port}/hooks/git"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"X-Hub-Signature-256": signature}) as response,
    ):
        if response.status != 202:
            say(f"   the webhook answered {response.status}")


async def _show_progress(
    live: Callable[[], dict[str, Any]],
    target: str,
    until: Callable[[Callable[[], bool], str], Any],
    say: Say,
) -> None:
    say("6. the simulated cluster-version operator upgrades:")
    shown = ""

    def completed() -> bool:
        nonlocal shown
        history = live()["status"].get("history") or []
        conditions = {c["type"]: c for c in live()["status"].get("conditions") or []}
        message = conditions.get("Progressing", {}).get("message", "")
        done = (
            bool(history)
            and history[0].get("version") == target
            and history[0].get("state") == "Completed"
        )
        percent = 100 if done else _percent(message)
        line = f"   {_bar(percent)} {message}"
        if line != shown:
            say(line)
            shown = line
        return done

    await until(completed, f"the upgrade to {target} to complete")


def _percent(message: str) -> int:
    if "% complete" not in message:
        return 0
    number = message.split("% complete", maxsplit=1)[0].rsplit("(", 1)[-1]
    return int(number) if number.isdigit() else 0
