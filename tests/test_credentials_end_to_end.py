"""`cvsync run` and `cvsync sandbox` as real processes over HTTPS while the credentials and the
server change under cvsync: the sandbox killed with SIGKILL and restarted on its state
directory, a token rotated (the kubeconfig or a token file rewritten), and a sandbox that comes
back with a new CA. cvsync keeps correcting drift without a restart, and logs each reload once,
without the token."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitrepo import Remote
from kube_http import channel, edit_channel, kubeconfig_parts
from ruamel.yaml import YAML
from test_run_end_to_end import CLUSTER, Agent, Record, cvsync_run, free_port, http, spec_text

from agent.sandbox.operator.scenarios import load_scenario

SPEC_PATH = f"clusters/{CLUSTER}/clusterversion.yaml"
SCENARIO = "idle-4.15"
WANTED, EDITED = "fast-4.15", "candidate-4.15"
EVERYTHING = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
WAIT = 20.0  # the most any expected event may take on a loaded machine
RELOADED = "CredentialsReloaded"


@dataclass
class SandboxCommand:
    """`cvsync sandbox` on a fixed port, killed and started again as a test needs; every start
    rewrites the admin's kubeconfig."""

    tmp: Path
    port: int
    state_dir: Path | None
    process: asyncio.subprocess.Process | None = None
    admin_url: str = ""
    admin_token: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.tmp / "admin-kubeconfig"

    async def start(self) -> None:
        args = ["--port", str(self.port), "--admin-port", "0", "--scenario", SCENARIO,
                "--kubeconfig", str(self.kubeconfig)]  # fmt: skip
        if self.state_dir is not None:
            args += ["--state-dir", str(self.state_dir)]
        # stderr to a file: a pipe nobody reads could fill up and stall the sandbox.
        with (self.tmp / "sandbox-stderr.log").open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "sandbox", *args,
                stdout=asyncio.subprocess.PIPE, stderr=stderr,
            )  # fmt: skip
        assert self.process.stdout is not None
        while True:
            line = (await asyncio.wait_for(self.process.stdout.readline(), WAIT)).decode()
            assert line, "cvsync sandbox exited early"
            if line.startswith("admin endpoint "):
                self.admin_url, _, rest = line.removeprefix("admin endpoint ").partition(" ")
                token_file = Path(rest.strip().removeprefix("(bearer token in ").rstrip(")"))
                self.admin_token = token_file.read_text().strip()
            if line.startswith("kubeconfig written to "):
                return

    async def kill(self) -> None:
        """SIGKILL: no clean shutdown, nothing flushed on the way out."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    async def admin(self, method: str, path: str, body: object = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        status, text = await http(method, self.admin_url + path, json=body, headers=headers)
        assert status == 200, text
        return json.loads(text)


@asynccontextmanager
async def cvsync_sandbox(tmp: Path, state_dir: Path | None) -> AsyncIterator[SandboxCommand]:
    sandbox = SandboxCommand(tmp, free_port(), state_dir)
    await sandbox.start()
    try:
        yield sandbox
    finally:
        await sandbox.stop()


def git_remote(tmp: Path) -> Remote:
    cluster_id = load_scenario(SCENARIO).cluster_version["spec"]["clusterID"]
    remote = Remote(tmp / "git")
    remote.commit({SPEC_PATH: spec_text(cluster_id, WANTED)}, "the fast channel")
    return remote


def run_args(remote: Remote, kubeconfig: Path, tmp: Path) -> tuple[str, ...]:
    return ("--repo", remote.url, "--kubeconfig", str(kubeconfig), "--workdir", str(tmp / "work"))


async def until_channel(kubeconfig: Path, wanted: str, timeout: float = WAIT) -> float:
    """Seconds until the live channel is `wanted`, as the test's own client reads it."""
    started = time.monotonic()
    while (found := await channel(kubeconfig)) != wanted:
        assert time.monotonic() - started < timeout, f"the channel is still {found}"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def reloads(agent: Agent) -> list[Record]:
    return [record for record in agent.records if record.get("reason") == RELOADED]


def output(agent: Agent) -> str:
    return (agent.stdout + agent.stderr).decode(errors="replace")


async def test_after_kill_9_and_a_restart_on_the_state_directory_drift_is_corrected_within_10_s(
    tmp_path: Path,
) -> None:
    remote = git_remote(tmp_path)
    async with cvsync_sandbox(tmp_path, tmp_path / "state") as sandbox:
        made = await sandbox.admin("PUT", "/users/cvsync", {"rules": EVERYTHING})
        admin_kubeconfig = sandbox.kubeconfig.read_bytes()
        async with cvsync_run(*run_args(remote, Path(made["kubeconfig"]), tmp_path)) as agent:
            await agent.cycle(lambda r: r["result"] == "Applied")
            await sandbox.kill()
            await sandbox.start()
            restarted = time.monotonic()
            # The same CA and the same admin token: the kubeconfig comes back byte for byte.
            assert sandbox.kubeconfig.read_bytes() == admin_kubeconfig
            seen = len(agent.cycles())
            await edit_channel(sandbox.kubeconfig, EDITED)
            await until_channel(sandbox.kubeconfig, WANTED)
            took = time.monotonic() - restarted
            await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
    assert took < 10.0, f"corrected {took:.1f} s after the restart"
    # Nothing had to be reloaded, and nothing was refused: the credentials stayed valid.
    assert reloads(agent) == []
    assert [r for r in agent.records if r.get("reason") == "Unauthorized"] == []


async def test_a_rotated_token_in_a_rewritten_kubeconfig_is_used_without_a_restart(
    tmp_path: Path,
) -> None:
    remote = git_remote(tmp_path)
    async with cvsync_sandbox(tmp_path, None) as sandbox:
        made = await sandbox.admin("PUT", "/users/cvsync", {"rules": EVERYTHING})
        kubeconfig = Path(made["kubeconfig"])
        old = kubeconfig_parts(kubeconfig)[2]
        election = ("--leader-elect", "--identity", "cvsync-0", "--namespace", "cvsync",
                    "--lease-duration", "3", "--renew-deadline", "2",
                    "--retry-period", "0.5")  # fmt: skip
        async with cvsync_run(*run_args(remote, kubeconfig, tmp_path), *election) as agent:
            await agent.cycle(lambda r: r["result"] == "Applied")
            # The API server revokes the token; the kubeconfig is rewritten with a new one.
            await sandbox.admin("POST", "/users/cvsync/token")
            new = kubeconfig_parts(kubeconfig)[2]
            assert new != old
            seen = len(agent.cycles())
            await edit_channel(sandbox.kubeconfig, EDITED)
            await until_channel(sandbox.kubeconfig, WANTED)
            await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
            # The Lease is renewed with the new token too: past the renew deadline, still leader.
            await asyncio.sleep(3.0)
            assert agent.process.returncode is None
    [reload] = reloads(agent)
    assert reload["changed"] == ["token"]
    assert [r for r in agent.records if r.get("reason") == "LeadershipLost"] == []
    assert old not in output(agent)
    assert new not in output(agent)


async def test_a_token_file_rewritten_after_the_revocation_is_read_when_the_cycle_retries(
    tmp_path: Path,
) -> None:
    """The kubelet's case: the old token stops working, and the failed cycle backs off; the
    token file then holds a new token, which the retry reads."""
    remote = git_remote(tmp_path)
    async with cvsync_sandbox(tmp_path, None) as sandbox:
        made = await sandbox.admin("PUT", "/users/cvsync", {"rules": EVERYTHING})
        written = Path(made["kubeconfig"])
        old = kubeconfig_parts(written)[2]
        token_file = tmp_path / "token"
        token_file.write_text(old)
        kubeconfig = tmp_path / "kubeconfig"
        document = YAML(typ="safe").load(written.read_text())
        document["users"][0]["user"] = {"tokenFile": str(token_file)}
        with kubeconfig.open("w") as handle:
            YAML(typ="safe").dump(document, handle)
        async with cvsync_run(*run_args(remote, kubeconfig, tmp_path)) as agent:
            await agent.cycle(lambda r: r["result"] == "Applied")
            await sandbox.admin("POST", "/users/cvsync/token")
            new = kubeconfig_parts(written)[2]
            seen = len(agent.cycles())
            await edit_channel(sandbox.kubeconfig, EDITED)
            refused = await agent.cycle(lambda r: r["reason"] == "Unauthorized", after=seen)
            assert refused["result"] == "Failed"
            partial = tmp_path / "token.new"
            partial.write_text(new)
            partial.replace(token_file)
            await until_channel(sandbox.kubeconfig, WANTED)
            await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
    [reload] = reloads(agent)
    assert reload["changed"] == ["token"]
    # Read when the file changed, or after a request that went out just before got its 401.
    assert reload["message"].endswith(
        ("after a credential file changed: new token", "after 401: new token")
    )
    assert old not in output(agent)
    assert new not in output(agent)


async def test_a_sandbox_back_with_a_new_ca_and_a_rewritten_kubeconfig_is_trusted_again(
    tmp_path: Path,
) -> None:
    remote = git_remote(tmp_path)
    async with cvsync_sandbox(tmp_path, None) as sandbox:
        kubeconfig = sandbox.kubeconfig  # the admin's: every start rewrites it
        _, ca, old = kubeconfig_parts(kubeconfig)
        async with cvsync_run(*run_args(remote, kubeconfig, tmp_path)) as agent:
            await agent.cycle(lambda r: r["result"] == "Applied")
            # Without a state directory the sandbox comes back with a new CA, a new token and
            # a fresh cluster, on the same port.
            await sandbox.stop()
            await sandbox.start()
            _, new_ca, new = kubeconfig_parts(kubeconfig)
            assert new_ca != ca
            seen = len(agent.cycles())
            await edit_channel(kubeconfig, EDITED)
            await until_channel(kubeconfig, WANTED)
            await agent.cycle(lambda r: r["reason"] == "DriftCorrected", after=seen)
    [reload] = reloads(agent)
    assert reload["changed"] == ["CA", "token"]
    assert old not in output(agent)
    assert new not in output(agent)
