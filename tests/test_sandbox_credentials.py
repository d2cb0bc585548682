"""The sandbox's credentials across restarts: with a state directory it keeps its CA, its
serving certificate and every user's token and rules (files readable by the owner only), so a
client connected before a restart carries on; without one every start is new. Its admin
endpoint rotates a user's token: the old one is refused at once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kube_http import CLUSTER_VERSION, request

from agent.sandbox.apiserver.access import Rule
from agent.sandbox.server import Sandbox, SandboxOptions

PKI_FILES = ("ca.crt", "ca.key", "server.crt", "server.key")
READ_ONLY = [Rule.of(["get"], ["config.openshift.io"], ["clusterversions"])]


async def admin(sandbox: Sandbox, method: str, path: str, body: object = None) -> Any:
    url = f"http://127.0.0.1:{sandbox.admin_port}{path}"
    headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as got,
    ):
        return got.status, await got.json()


async def test_a_state_directory_keeps_the_ca_the_serving_certificate_and_every_token_and_rule(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    async with Sandbox(SandboxOptions(state_dir=state, scenario="idle-4.15")) as first:
        port, admin_token = first.port, first.admin_token
        first.access.set_rules("viewer", READ_ONLY)
        viewer = first.kubeconfig(tmp_path / "viewer", user="viewer")
        kept = {name: (state / "pki" / name).read_bytes() for name in PKI_FILES}
    async with Sandbox(SandboxOptions(state_dir=state, scenario="idle-4.15", port=port)) as again:
        assert {name: (state / "pki" / name).read_bytes() for name in PKI_FILES} == kept
        assert again.admin_token == admin_token
        # The viewer's kubeconfig from before the restart: the server is trusted, the token
        # known, and the viewer may still read but not write.
        status, _ = await request(viewer, "GET", CLUSTER_VERSION)
        assert status == 200
        status, _ = await request(viewer, "PATCH", CLUSTER_VERSION, {"spec": {"channel": "x"}})
        assert status == 403
    for secret in ("pki/ca.key", "pki/server.key", "credentials.json"):
        assert (state / secret).stat().st_mode & 0o777 == 0o600, secret


async def test_without_a_state_directory_every_start_has_a_new_ca_and_new_tokens(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"  # even in one work directory: nothing is kept
    async with Sandbox(SandboxOptions(work_dir=work)) as first:
        port, admin_token = first.port, first.admin_token
        old = first.kubeconfig(tmp_path / "kubeconfig")
        assert first.pki is not None
        ca = first.pki.ca.cert.read_bytes()
    async with Sandbox(SandboxOptions(work_dir=work, port=port)) as again:
        assert again.pki is not None
        assert again.pki.ca.cert.read_bytes() != ca
        assert again.admin_token != admin_token
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await request(old, "GET", "/api/v1/namespaces")


async def test_rotating_a_token_refuses_the_old_one_at_once_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    # As `cvsync sandbox --state-dir` runs it: the state directory is its work directory too.
    options = SandboxOptions(state_dir=state, work_dir=state, scenario="idle-4.15", admin_port=0)
    async with Sandbox(options) as first:
        rules = [{"verbs": ["get"], "apiGroups": ["*"], "resources": ["*"]}]
        status, made = await admin(first, "PUT", "/users/cvsync", {"rules": rules})
        assert status == 200
        kubeconfig = Path(made["kubeconfig"])
        before = tmp_path / "before"
        shutil.copy(kubeconfig, before)
        status, rotated = await admin(first, "POST", "/users/cvsync/token")
        assert (status, rotated["kubeconfig"]) == (200, str(kubeconfig))
        assert kubeconfig.read_bytes() != before.read_bytes()
        assert (await request(before, "GET", CLUSTER_VERSION))[0] == 401
        assert (await request(kubeconfig, "GET", CLUSTER_VERSION))[0] == 200
        # The admin's own token is not rotated this way: the endpoint itself runs on it.
        status, _ = await admin(first, "POST", "/users/sandbox-admin/token")
        assert status == 400
        port = first.port
    async with Sandbox(SandboxOptions(state_dir=state, scenario="idle-4.15", port=port)):
        assert (await request(before, "GET", CLUSTER_VERSION))[0] == 401
        assert (await request(kubeconfig, "GET", CLUSTER_VERSION))[0] == 200
