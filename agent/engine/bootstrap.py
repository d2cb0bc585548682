"""Build the running agent from Settings: the git source, the cluster client, the
reconciler and the runtime, and run it until asked to stop.

I/O wiring only; called from `cli` (cvsync run, cvsync demo).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from agent.adapters.credentials import Credentials, CredentialSource
from agent.adapters.elector import (
    LeaderElector,
    LeaderOnlyCluster,
    LeaderOnlySink,
    LeadershipLostError,
)
from agent.adapters.git import GitCloneSource, GitCredentials, LocalTreeSource
from agent.adapters.git_writer import StatusWriter
from agent.adapters.kube import KubeCluster
from agent.adapters.lease import LeaseStore
from agent.adapters.watch import TreeWatcher
from agent.engine.leadership import Timings
from agent.engine.ports import Cluster, Source
from agent.engine.reconciler import Reconciler
from agent.engine.runtime import Runtime, on_loop
from agent.engine.writeback import WriteBack
from agent.errors import UsageError
from agent.settings import Settings


def build_source(settings: Settings) -> Source:
    git = settings.git
    paths = (settings.cluster_spec_path, settings.cluster_policy_path)
    if git.local_path is not None:
        return LocalTreeSource(git.local_path, git.ref, paths)
    if git.repo is None:
        raise ValueError("either a repository URL or a local path is required")
    return GitCloneSource(git.repo, git.ref, git.workdir / "repo", paths, _credentials(settings))


def _credentials(settings: Settings) -> GitCredentials:
    git = settings.git
    return GitCredentials(
        token_file=git.token_file,
        token_env=git.token_env,
        username=git.username,
        password_file=git.password_file,
        ssh_key_file=git.ssh_key_file,
        known_hosts_file=git.known_hosts_file,
    )


def read_webhook_secret(settings: Settings) -> bytes | None:
    """The webhook's shared secret, or None when the webhook is off. An empty one is refused:
    anyone can compute an HMAC with an empty key."""
    path = settings.webhook_secret_file
    if path is None:
        return None
    try:
        secret = path.read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --webhook-secret-file {path}: {exc.strerror}") from None
    if not secret:
        raise UsageError(f"--webhook-secret-file {path} is empty; the webhook needs a secret")
    return secret


async def build_runtime(
    settings: Settings,
    source: Source,
    cluster: KubeCluster,
    elector: LeaderElector | None = None,
    webhook_secret: bytes | None = None,
) -> Runtime:
    applier: Cluster = cluster if elector is None else LeaderOnlyCluster(cluster, elector)
    return Runtime(
        settings,
        Reconciler(settings, source, applier),
        cluster,
        webhook_secret=webhook_secret,
        events=cluster.events(settings.namespace),
        writeback=build_writeback(settings, elector),
        leadership=elector,
    )


async def build_elector(
    settings: Settings, credentials: Credentials, on_lost: Callable[[], None]
) -> LeaderElector | None:
    leader = settings.leader
    if not leader.enabled:
        return None
    leases = await LeaseStore.connect(
        settings.namespace, leader.lease_name, credentials=credentials
    )
    timings = Timings(leader.lease_duration, leader.renew_deadline, leader.retry_period)
    return LeaderElector(leases, leader.identity, timings, on_lost=on_lost)


def build_writeback(settings: Settings, elector: LeaderElector | None = None) -> WriteBack | None:
    if not settings.write_back:
        return None
    url = settings.status_repo or settings.git.repo
    if url is None:
        raise ValueError("write-back in git-sync mode needs --status-repo, the remote to push to")
    writer = StatusWriter(
        url,
        settings.cluster_status_branch,
        settings.git.workdir / "status",
        _credentials(settings),
        author_name=settings.status_author_name,
        author_email=settings.status_author_email,
        max_attempts=settings.status_push_attempts,
        create_branch=settings.status_branch is not None,
    )
    sink = writer if elector is None else LeaderOnlySink(writer, elector)
    return WriteBack(
        settings.cluster,
        sink,
        min_interval=settings.status_min_interval,
        retry_base=settings.status_retry_base,
        retry_max=settings.status_retry_max,
    )


async def run_agent(
    settings: Settings, stop: asyncio.Event, started: asyncio.Future[Runtime] | None = None
) -> None:
    """Run until `stop` is set; `started` receives the runtime (await its `started` event
    before using its HTTP port)."""
    secret = read_webhook_secret(settings)
    source = build_source(settings)
    # One set of credentials for the ClusterVersion client (and its Events) and the Lease's:
    # a rotated token or CA is re-read once, and every client switches to it.
    credentials = await Credentials.load(
        CredentialSource(settings.kubeconfig, settings.context, settings.in_cluster)
    )
    cluster = KubeCluster(credentials.client())
    # Losing the lease stops the runtime like a signal does, then run_agent raises.
    elector = await build_elector(settings, credentials, stop.set)
    runtime = await build_runtime(settings, source, cluster, elector, secret)
    watcher = None
    campaign: asyncio.Task[None] | None = None
    if settings.git.local_path is not None:
        loop = asyncio.get_running_loop()
        watcher = TreeWatcher(
            Path(settings.git.local_path),
            on_loop(loop, lambda: runtime.trigger("git-sync", refresh_source=True)),
            debounce=settings.git.debounce,
        )
        watcher.start()
    try:
        if elector is not None:
            campaign = asyncio.create_task(elector.run(), name="leader-election")
        if started is not None and not started.done():
            started.set_result(runtime)
        await runtime.run(stop)
    finally:
        if elector is not None:
            # Keep renewing until the runtime stopped (an in-flight apply needs the lease).
            if campaign is not None:
                campaign.cancel()
                await asyncio.gather(campaign, return_exceptions=True)
            if elector.lost_reason is None:
                await elector.release()
            await elector.leases.close()
        if watcher is not None:
            watcher.stop()
        await cluster.close()
        await source.close()
    if elector is not None and elector.lost_reason is not None:
        raise LeadershipLostError(
            f"leadership of lease {elector.lease} lost ({elector.lost_reason}): "
            f"{elector.identity} exits so that it restarts as a standby"
        )
