"""`cvsync run`: the agent itself, its options and the Settings they build."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path
from typing import Any

import click

from agent.allocator import keep_large_buffers_out_of_the_heap
from agent.cli.options import until_signalled
from agent.engine.leadership import Timings, timing_problem
from agent.logs import configure_logging
from agent.settings import (
    DEFAULT_POLICY_PATH,
    DEFAULT_SPEC_PATH,
    GitSettings,
    LeaderSettings,
    Settings,
)


@click.command()
@click.option("--cluster", required=True, envvar="CVSYNC_CLUSTER", help="Cluster name in git.")
@click.option("--repo", envvar="CVSYNC_REPO", help="Git URL (https, ssh or file) to clone.")
@click.option("--ref", "--branch", "ref", default="main", show_default=True, envvar="CVSYNC_REF")
@click.option(
    "--local-path",
    type=click.Path(path_type=Path),
    envvar="CVSYNC_LOCAL_PATH",
    help="A checkout kept fresh by git-sync (the link it swaps), instead of --repo.",
)
@click.option(
    "--spec-path",
    default=DEFAULT_SPEC_PATH,
    show_default=True,
    envvar="CVSYNC_SPEC_PATH",
    help="Where the cluster's spec lives in the repository; {cluster} is replaced.",
)
@click.option(
    "--policy-path",
    default=DEFAULT_POLICY_PATH,
    show_default=True,
    envvar="CVSYNC_POLICY_PATH",
    help="The cluster's upgrade policy in the repository (optional); {cluster} is replaced.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/cvsync"),
    show_default=True,
    envvar="CVSYNC_WORKDIR",
)
@click.option("--interval", type=float, default=60.0, show_default=True, envvar="CVSYNC_INTERVAL")
@click.option("--git-token-file", type=click.Path(path_type=Path), envvar="CVSYNC_GIT_TOKEN_FILE")
@click.option("--git-token-env", envvar="CVSYNC_GIT_TOKEN_ENV")
@click.option("--git-username", envvar="CVSYNC_GIT_USERNAME")
@click.option(
    "--git-password-file", type=click.Path(path_type=Path), envvar="CVSYNC_GIT_PASSWORD_FILE"
)
@click.option(
    "--git-ssh-key-file", type=click.Path(path_type=Path), envvar="CVSYNC_GIT_SSH_KEY_FILE"
)
@click.option(
    "--git-known-hosts-file",
    type=click.Path(path_type=Path),
    envvar="CVSYNC_GIT_KNOWN_HOSTS_FILE",
)
@click.option("--kubeconfig", type=click.Path(path_type=Path), envvar="KUBECONFIG")
@click.option("--context", envvar="CVSYNC_CONTEXT")
@click.option("--in-cluster", is_flag=True, envvar="CVSYNC_IN_CLUSTER")
@click.option(
    "--mode",
    type=click.Choice(["enforce", "observe"]),
    default="enforce",
    show_default=True,
    envvar="CVSYNC_MODE",
)
@click.option("--force-conflicts", is_flag=True, envvar="CVSYNC_FORCE_CONFLICTS")
@click.option(
    "--resync-interval", type=float, default=600.0, show_default=True, envvar="CVSYNC_RESYNC"
)
@click.option(
    "--http-address", default="127.0.0.1:8080", show_default=True, envvar="CVSYNC_HTTP_ADDRESS"
)
@click.option(
    "--webhook-secret-file", type=click.Path(path_type=Path), envvar="CVSYNC_WEBHOOK_SECRET_FILE"
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    envvar="CVSYNC_LOG_FORMAT",
)
@click.option(
    "--namespace",
    default="default",
    show_default=True,
    envvar=["CVSYNC_NAMESPACE", "POD_NAMESPACE"],
    help="Where to record Kubernetes Events (cvsync's own namespace in a pod).",
)
@click.option(
    "--write-back",
    is_flag=True,
    envvar="CVSYNC_WRITE_BACK",
    help="Commit status/<cluster>.yaml, .md and -drift.md to git.",
)
@click.option(
    "--status-repo", envvar="CVSYNC_STATUS_REPO", help="Push status here (default: --repo)."
)
@click.option(
    "--status-branch",
    envvar="CVSYNC_STATUS_BRANCH",
    help="A dedicated branch for status commits (default: the branch cvsync reads).",
)
@click.option(
    "--status-min-interval",
    type=float,
    default=30.0,
    show_default=True,
    envvar="CVSYNC_STATUS_MIN_INTERVAL",
    help="Coalesce status commits; update start, completion and failure commit at once.",
)
@click.option("--status-author-name", default="cvsync", envvar="CVSYNC_STATUS_AUTHOR_NAME")
@click.option(
    "--status-author-email", default="cvsync@localhost", envvar="CVSYNC_STATUS_AUTHOR_EMAIL"
)
@click.option(
    "--leader-elect",
    is_flag=True,
    envvar="CVSYNC_LEADER_ELECT",
    help="Act only while holding a Lease in --namespace, so several replicas are safe.",
)
@click.option("--lease-name", default="cvsync", show_default=True, envvar="CVSYNC_LEASE_NAME")
@click.option(
    "--lease-duration",
    type=float,
    default=15.0,
    show_default=True,
    envvar="CVSYNC_LEASE_DURATION",
    help="Seconds a standby waits after the leader's last renew before taking over.",
)
@click.option(
    "--renew-deadline",
    type=float,
    default=10.0,
    show_default=True,
    envvar="CVSYNC_RENEW_DEADLINE",
    help="Seconds the leader keeps acting without a successful renew, then exits.",
)
@click.option(
    "--retry-period",
    type=float,
    default=2.0,
    show_default=True,
    envvar="CVSYNC_RETRY_PERIOD",
    help="Seconds between renews (leader) and attempts to acquire (standby).",
)
@click.option(
    "--identity",
    envvar=["CVSYNC_IDENTITY", "POD_NAME"],
    default=lambda: f"{socket.gethostname()}_{secrets.token_hex(4)}",
    show_default="hostname_<random>",
    help="This replica's name in the Lease; unique per replica.",
)
def run(**options: Any) -> None:
    """Keep the live ClusterVersion in line with git until SIGTERM or Ctrl-C."""
    from agent.engine.bootstrap import run_agent  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    settings = _settings(options)
    if settings.git.repo is None and settings.git.local_path is None:
        raise click.UsageError("give --repo URL or --local-path DIR")
    configure_logging(settings.log_format)
    keep_large_buffers_out_of_the_heap()  # before the first cycle: see agent/allocator.py
    asyncio.run(until_signalled(lambda stop: run_agent(settings, stop)))


def _settings(options: dict[str, Any]) -> Settings:
    host, _, port = str(options["http_address"]).rpartition(":")
    git = GitSettings(
        repo=options["repo"],
        ref=options["ref"],
        local_path=options["local_path"],
        workdir=options["workdir"],
        interval=options["interval"],
        token_file=options["git_token_file"],
        token_env=options["git_token_env"],
        username=options["git_username"],
        password_file=options["git_password_file"],
        ssh_key_file=options["git_ssh_key_file"],
        known_hosts_file=options["git_known_hosts_file"],
    )
    return Settings(
        cluster=options["cluster"],
        git=git,
        spec_path=options["spec_path"],
        policy_path=options["policy_path"],
        kubeconfig=options["kubeconfig"],
        context=options["context"],
        in_cluster=options["in_cluster"],
        mode=options["mode"],
        force_conflicts=options["force_conflicts"],
        resync_interval=options["resync_interval"],
        http_host=host or "127.0.0.1",
        http_port=int(port),
        webhook_secret_file=options["webhook_secret_file"],
        log_format=options["log_format"],
        namespace=options["namespace"],
        write_back=options["write_back"],
        status_repo=options["status_repo"],
        status_branch=options["status_branch"],
        status_min_interval=options["status_min_interval"],
        status_author_name=options["status_author_name"],
        status_author_email=options["status_author_email"],
        leader=_leader_settings(options),
    )


def _leader_settings(options: dict[str, Any]) -> LeaderSettings:
    leader = LeaderSettings(
        enabled=options["leader_elect"],
        lease_name=options["lease_name"],
        lease_duration=options["lease_duration"],
        renew_deadline=options["renew_deadline"],
        retry_period=options["retry_period"],
        identity=options["identity"],
    )
    problem = timing_problem(
        Timings(leader.lease_duration, leader.renew_deadline, leader.retry_period)
    )
    if leader.enabled and problem is not None:
        raise click.UsageError(
            f"{problem} (--lease-duration {leader.lease_duration:g}, --renew-deadline "
            f"{leader.renew_deadline:g}, --retry-period {leader.retry_period:g})"
        )
    if leader.enabled and not leader.identity.strip():
        raise click.UsageError("--identity must not be empty")
    return leader
