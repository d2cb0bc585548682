"""cvsync's Kubernetes clients against the sandbox over HTTPS while their credentials change
on disk: a rewritten token file is read before the next request, a 401 or a failed TLS
verification has the credentials re-read and the request repeated once, and the ClusterVersion
client, its Events and the Lease all follow one set of credentials, reloaded (and logged) once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from test_kube_adapter import Follower, wait_until

from agent.adapters.credentials import Credentials, CredentialSource
from agent.adapters.kube import KubeCluster
from agent.adapters.lease import LeaseStore
from agent.engine.leadership import LeaseRecord
from agent.errors import KubeError, UnauthorizedError
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.handlers import MERGE_PATCH, WriteOptions
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, EVENTS, LEASES
from agent.sandbox.apiserver.routing import Target
from agent.sandbox.server import Sandbox, SandboxOptions

CVS = "clusterversions"
RELOADED = "CredentialsReloaded"
PEM_SIZE = 4096


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as running:
        yield running


def user(sandbox: Sandbox, name: str) -> str:
    """A user with full access; its bearer token."""
    sandbox.access.set_rules(name, FULL_ACCESS)
    return sandbox.access.token_for(name)


def token_file_kubeconfig(
    sandbox: Sandbox, path: Path, token_file: Path, ca_file: Path | None = None
) -> Path:
    """A kubeconfig whose user reads its token from a file (`tokenFile`), as one for a
    projected service account token does; the CA is a file too."""
    assert sandbox.pki is not None
    cluster = {"server": sandbox.url, "certificate-authority": str(ca_file or sandbox.pki.ca.cert)}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": "sandbox", "user": {"tokenFile": token_file.name}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox"}}],
        "current-context": "sandbox",
    }
    with path.open("w") as handle:
        YAML(typ="safe").dump(document, handle)
    return path


def rewrite_unnoticed(path: Path, data: bytes) -> None:
    """Rewrite in place (the same inode) to the same size and put the timestamps back, as a
    copy that keeps them (`cp -p`) or a coarse file system does: the file looks unchanged."""
    stamp = path.stat()
    assert len(data) == stamp.st_size
    with path.open("r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))


def padded(pem: bytes) -> bytes:
    """A PEM file padded with blank lines to one size, whichever certificate it holds."""
    return pem + b"\n" * (PEM_SIZE - len(pem))


def replace_file(path: Path, text: str) -> None:
    """Swap the file in one step, as the kubelet swaps a projected token's directory."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(text)
    os.replace(partial, path)


def reloads(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "reason", None) == RELOADED]


async def test_a_token_file_rewritten_under_a_running_client_is_read_before_the_next_request(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = user(sandbox, "alice"), user(sandbox, "bob")
    token_file = tmp_path / "token"
    token_file.write_text(alice)
    kubeconfig = token_file_kubeconfig(sandbox, tmp_path / "kubeconfig", token_file)
    caplog.set_level(logging.INFO)
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    try:
        assert await cluster.get() is not None
        replace_file(token_file, bob)
        assert await cluster.get() is not None
    finally:
        await cluster.close()
    # The second request went out with the new token at once: no 401 was needed.
    assert sandbox.faults.total("get", CVS, "alice") == 1
    assert sandbox.faults.total("get", CVS, "bob") == 1
    [reload] = reloads(caplog)
    assert reload.getMessage().endswith("after a credential file changed: new token")
    assert alice not in caplog.text
    assert bob not in caplog.text


async def test_a_401_has_credentials_whose_files_look_unchanged_re_read_and_the_request_repeated(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A copy that keeps timestamps (`cp -p`, a coarse file system) leaves a rewritten token
    file looking unchanged; the 401 the old token now gets is what has it read again."""
    old = user(sandbox, "cvsync")
    token_file = tmp_path / "token"
    token_file.write_text(old)
    kubeconfig = token_file_kubeconfig(sandbox, tmp_path / "kubeconfig", token_file)
    caplog.set_level(logging.INFO)
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    try:
        assert await cluster.get() is not None
        new = sandbox.access.rotate_token("cvsync")
        rewrite_unnoticed(token_file, new.encode())  # tokens have one length
        assert await cluster.get() is not None
    finally:
        await cluster.close()
    assert sandbox.faults.total("get", CVS, "cvsync") == 2  # the 401 had no identity to count
    [reload] = reloads(caplog)
    assert reload.getMessage().endswith("after 401: new token")
    assert old not in caplog.text
    assert new not in caplog.text


async def test_a_401_with_nothing_new_to_read_is_a_retryable_unauthorized_error(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = await KubeCluster.connect(kubeconfig=sandbox.kubeconfig(tmp_path / "kubeconfig"))
    caplog.set_level(logging.INFO)
    try:
        revoked = sandbox.admin_token
        sandbox.access.rotate_token("sandbox-admin")
        with pytest.raises(UnauthorizedError) as caught:
            await cluster.get()
    finally:
        await cluster.close()
    assert caught.value.retryable  # the runtime backs off and tries again, re-reading first
    assert caught.value.status == 401
    assert revoked not in caught.value.message
    assert reloads(caplog) == []


async def test_the_cluster_client_its_events_and_the_lease_follow_one_credentials_reload(
    sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = user(sandbox, "cvsync")
    kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
    caplog.set_level(logging.INFO)
    credentials = await Credentials.load(CredentialSource(kubeconfig))
    cluster = KubeCluster(credentials.client())
    leases = await LeaseStore.connect("cvsync", "cvsync", credentials=credentials)
    events = cluster.events("cvsync")
    try:
        assert await cluster.get() is not None
        # The token is rotated and the kubeconfig rewritten with the new one.
        new = sandbox.access.rotate_token("cvsync")
        sandbox.kubeconfig(kubeconfig, user="cvsync")
        assert await cluster.get() is not None
        await leases.create(LeaseRecord("cvsync-0", 15, None, None, 0))
        await events.record("DriftCorrected", "put back", warning=False, involved=None)
    finally:
        await leases.close()
        await cluster.close()
    assert sandbox.store.get(sandbox.api.key(LEASES, "cvsync", "cvsync")) is not None
    assert [e["reason"] for e in sandbox.store.list(EVENTS.id, "cvsync")] == ["DriftCorrected"]
    assert sandbox.faults.total(user="cvsync") == 4
    [reload] = reloads(caplog)
    assert getattr(reload, "changed", None) == ["token"]
    assert old not in caplog.text
    assert new not in caplog.text


async def test_a_watch_open_across_a_reload_still_delivers_the_next_change(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Found by the end-to-end rotation test: replacing the connection pool under an open watch
    left the watch waiting forever; a new token needs no new pool, so the watch keeps its."""
    user(sandbox, "cvsync")
    kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
    cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
    follower = Follower(cluster)
    try:
        assert await follower.channel() == "stable-4.15"
        await wait_until(lambda: any(not w.internal for w in sandbox.store.watchers))
        sandbox.access.rotate_token("cvsync")
        sandbox.kubeconfig(kubeconfig, user="cvsync")
        assert await cluster.get() is not None  # reloads the credentials
        sandbox.api.patch(
            Target(CLUSTER_VERSIONS, "", "version"),
            MERGE_PATCH,
            {"spec": {"channel": "fast-4.15"}},
            WriteOptions(manager="oc"),
        )
        assert await follower.channel() == "fast-4.15"
    finally:
        await follower.stop()
        await cluster.close()


async def test_a_failed_tls_verification_has_a_new_ca_re_read_and_the_request_repeated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token_file, ca_file = tmp_path / "token", tmp_path / "ca.crt"
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as first:
        assert first.pki is not None
        port = first.port
        token_file.write_text(first.admin_token)
        ca_file.write_bytes(padded(first.pki.ca.cert.read_bytes()))
        kubeconfig = token_file_kubeconfig(first, tmp_path / "kubeconfig", token_file, ca_file)
        cluster = await KubeCluster.connect(kubeconfig=kubeconfig)
        assert await cluster.get() is not None
    caplog.set_level(logging.INFO)
    try:
        # Another server on the same port, with a CA and a token of its own.
        async with Sandbox(SandboxOptions(scenario="idle-4.15", port=port)) as second:
            assert second.pki is not None
            with pytest.raises(KubeError) as caught:
                await cluster.get()  # the files still hold the old CA: nothing new to read
            assert caught.value.retryable
            assert "certificate verify failed" in caught.value.message
            assert reloads(caplog) == []
            rewrite_unnoticed(ca_file, padded(second.pki.ca.cert.read_bytes()))
            rewrite_unnoticed(token_file, second.admin_token.encode())
            assert await cluster.get() is not None
            assert second.faults.total("get", CVS, "sandbox-admin") == 1
    finally:
        await cluster.close()
    [reload] = reloads(caplog)
    assert reload.getMessage().endswith("after a failed TLS verification: new CA, token")
