"""`cvsync run`: the agent itself, its options and the Settings they build."""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from agent.allocator import keep_large_buffers_out_of_the_heap
from agent.cli.options import (
    EXIT_INTERRUPTED,
    Address,
    HostPort,
    context_option,
    kubeconfig_option,
    listen_failure,
    until_signalled,
)
from agent.engine.leadership import Timings, timing_problem
from agent.errors import UsageError
from agent.logs import configure_logging
from agent.settings import (
    DEFAULT_POLICY_PATH,
    DEFAULT_SPEC_PATH,
    GitSettings,
    LeaderSettings,
    Settings,
)


@click.command()
@click.option(
    "--cluster",
    required=True,
    envvar="CVSYNC_CLUSTER",
    show_envvar=True,
    help="The cluster's directory name in git.",
)
@click.option(
    "--repo",
    envvar="CVSYNC_REPO",
    show_envvar=True,
    help="Git URL (https, ssh or file) to clone; never with credentials in it.",
)
@click.option(
    "--ref",
    "--branch",
    "ref",
    default="main",
    show_default=True,
    envvar="CVSYNC_REF",
    show_envvar=True,
    help="Branch, tag or commit to read.",
)
@click.option(
    "--local-path",
    type=click.Path(path_type=Path),
    envvar="CVSYNC_LOCAL_PATH",
    show_envvar=True,
    help="A checkout kept fresh by git-sync (the link it swaps), instead of --repo.",
)
@click.option(
    "--spec-path",
    default=DEFAULT_SPEC_PATH,
    show_default=True,
    envvar="CVSYNC_SPEC_PATH",
    show_envvar=True,
    help="Where the cluster's spec lives in the repository; {cluster} is replaced.",
)
@click.option(
    "--policy-path",
    default=DEFAULT_POLICY_PATH,
    show_default=True,
    envvar="CVSYNC_POLICY_PATH",
    show_envvar=True,
    help="The cluster's upgrade policy in the repository (optional); {cluster} is replaced.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/tmp/cvsync"),
    show_default=True,
    envvar="CVSYNC_WORKDIR",
    show_envvar=True,
    help="cvsync's own clones live here.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    envvar="CVSYNC_INTERVAL",
    show_envvar=True,
    help="Seconds between fetches of --repo (with 10% jitter).",
)
@click.option(
    "--git-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CVSYNC_GIT_TOKEN_FILE",
    show_envvar=True,
    help="HTTPS token for git, read from this file at every fetch.",
)
@click.option(
    "--git-token-env",
    envvar="CVSYNC_GIT_TOKEN_ENV",
    show_envvar=True,
    help="HTTPS token for git, from the environment variable of this name.",
)
@click.option(
    "--git-username",
    envvar="CVSYNC_GIT_USERNAME",
    show_envvar=True,
    help="HTTPS basic auth user name for git (with --git-password-file).",
)
@click.option(
    "--git-password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CVSYNC_GIT_PASSWORD_FILE",
    show_envvar=True,
    help="HTTPS basic auth password for git, read from this file.",
)
@click.option(
    "--git-ssh-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CVSYNC_GIT_SSH_KEY_FILE",
    show_envvar=True,
    help="SSH private key for git over ssh.",
)
@click.option(
    "--git-known-hosts-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CVSYNC_GIT_KNOWN_HOSTS_FILE",
    show_envvar=True,
    help="The known hosts the git server's SSH key is checked against.",
)
@kubeconfig_option
@context_option
@click.option(
    "--in-cluster",
    is_flag=True,
    envvar="CVSYNC_IN_CLUSTER",
    show_envvar=True,
    help="Use the pod's service account instead of a kubeconfig.",
)
@click.option(
    "--mode",
    type=click.Choice(["enforce", "observe"]),
    default="enforce",
    show_default=True,
    envvar="CVSYNC_MODE",
    show_envvar=True,
    help="observe never writes to the ClusterVersion; it only reports.",
)
@click.option(
    "--force-conflicts",
    is_flag=True,
    envvar="CVSYNC_FORCE_CONFLICTS",
    show_envvar=True,
    help="Take fields another server-side applier owns.",
)
@click.option(
    "--resync-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=600.0,
    show_default=True,
    envvar="CVSYNC_RESYNC",
    show_envvar=True,
    help="Seconds between cycles when nothing else triggers one.",
)
@click.option(
    "--http-address",
    type=HostPort(),
    default="127.0.0.1:8080",
    show_default=True,
    envvar="CVSYNC_HTTP_ADDRESS",
    show_envvar=True,
    help="Serve /healthz, /readyz, /metrics and the webhook here; port 0 picks a free one.",
)
@click.option(
    "--webhook-secret-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CVSYNC_WEBHOOK_SECRET_FILE",
    show_envvar=True,
    help="Enables POST /hooks/git: the secret GitHub signs with, or GitLab's token.",
)
@click.option(
    "--log-format",
    type=click.Choice(["json", "text"]),
    default="json",
    show_default=True,
    envvar="CVSYNC_LOG_FORMAT",
    show_envvar=True,
    help="json for log collectors, text for people.",
)
@click.option(
    "--namespace",
    default="default",
    show_default=True,
    envvar=["CVSYNC_NAMESPACE", "POD_NAMESPACE"],
    show_envvar=True,
    help="Where to record Kubernetes Events (cvsync's own namespace in a pod).",
)
@click.option(
    "--write-back",
    is_flag=True,
    envvar="CVSYNC_WRITE_BACK",
    show_envvar=True,
    help="Commit status/<cluster>.yaml, .md and -drift.md to git.",
)
@click.option(
    "--status-repo",
    envvar="CVSYNC_STATUS_REPO",
    show_envvar=True,
    help="Push status here (default: --repo; required with --local-path).",
)
@click.option(
    "--status-branch",
    envvar="CVSYNC_STATUS_BRANCH",
    show_envvar=True,
    help="A dedicated branch for status commits (default: the branch cvsync reads); "
    "{cluster} is replaced, so 'cvsync-status/{cluster}' gives each cluster its own.",
)
@click.option(
    "--status-min-interval",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    envvar="CVSYNC_STATUS_MIN_INTERVAL",
    show_envvar=True,
    help="Coalesce status commits; update start, completion and failure commit at once.",
)
@click.option(
    "--status-push-attempts",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    envvar="CVSYNC_STATUS_PUSH_ATTEMPTS",
    show_envvar=True,
    help="Pushes of one status (each rebuilt on the new tip) before it gives up until later.",
)
@click.option(
    "--status-retry-base",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    envvar="CVSYNC_STATUS_RETRY_BASE",
    show_envvar=True,
    help="After a give-up, wait a random time up to this, doubled for each give-up in a row.",
)
@click.option(
    "--status-retry-max",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    envvar="CVSYNC_STATUS_RETRY_MAX",
    show_envvar=True,
    help="The longest wait between give-ups, in seconds.",
)
@click.option(
    "--status-author-name",
    default="cvsync",
    show_default=True,
    envvar="CVSYNC_STATUS_AUTHOR_NAME",
    show_envvar=True,
    help="Author name of status commits.",
)
@click.option(
    "--status-author-email",
    default="cvsync@localhost",
    show_default=True,
    envvar="CVSYNC_STATUS_AUTHOR_EMAIL",
    show_envvar=True,
    help="Author e-mail of status commits.",
)
@click.option(
    "--leader-elect",
    is_flag=True,
    envvar="CVSYNC_LEADER_ELECT",
    show_envvar=True,
    help="Act only while holding a Lease in --namespace, so several replicas are safe.",
)
@click.option(
    "--lease-name",
    default="cvsync",
    show_default=True,
    envvar="CVSYNC_LEASE_NAME",
    show_envvar=True,
    help="The Lease's name, in --namespace.",
)
@click.option(
    "--lease-duration",
    type=float,
    default=15.0,
    show_default=True,
    envvar="CVSYNC_LEASE_DURATION",
    show_envvar=True,
    help="Seconds a standby waits after the leader's last renew before taking over.",
)
@click.option(
    "--renew-deadline",
    type=float,
    default=10.0,
    show_default=True,
    envvar="CVSYNC_RENEW_DEADLINE",
    show_envvar=True,
    help="Seconds the leader keeps acting without a successful renew, then exits.",
)
@click.option(
    "--retry-period",
    type=float,
    default=2.0,
    show_default=True,
    envvar="CVSYNC_RETRY_PERIOD",
    show_envvar=True,
    help="Seconds between renews (leader) and attempts to acquire (standby).",
)
@click.option(
    "--identity",
    envvar=["CVSYNC_IDENTITY", "POD_NAME"],
    show_envvar=True,
    default=lambda: f"{socket.gethostname()}_{secrets.token_hex(4)}",
    show_default="hostname_<random>",
    help="This replica's name in the Lease; unique per replica.",
)
def run(**options: Any) -> None:
    """Keep the live ClusterVersion in line with git until SIGTERM (exit 0) or Ctrl-C (exit
    130)."""
    settings = _settings(options)
    if settings.webhook_secret_file and not settings.webhook_secret_file.is_file():
        raise UsageError(f"--webhook-secret-file {settings.webhook_secret_file}: no such file")
    from agent.engine.bootstrap import run_agent  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    configure_logging(settings.log_format)
    keep_large_buffers_out_of_the_heap()  # before the first cycle: see agent/allocator.py
    try:
        stopped_by = asyncio.run(until_signalled(lambda stop: run_agent(settings, stop)))
    except OSError as exc:  # a port in use is the user's to fix; any other OSError is a bug
        raise listen_failure(exc, str(options["http_address"]), "--http-address") or exc from None
    if stopped_by == signal.SIGINT:
        sys.exit(EXIT_INTERRUPTED)


def _settings(options: dict[str, Any]) -> Settings:
    _check_sources(options)
    address: Address = options["http_address"]
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
        http_host=address.host,
        http_port=address.port,
        webhook_secret_file=options["webhook_secret_file"],
        log_format=options["log_format"],
        namespace=options["namespace"],
        write_back=options["write_back"],
        status_repo=options["status_repo"],
        status_branch=options["status_branch"],
        status_min_interval=options["status_min_interval"],
        status_push_attempts=options["status_push_attempts"],
        status_retry_base=options["status_retry_base"],
        status_retry_max=options["status_retry_max"],
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


def _check_sources(options: dict[str, Any]) -> None:
    """Where git comes from, and where status goes: exactly one source, and a remote to push
    to when the source is a git-sync checkout."""
    if options["repo"] is None and options["local_path"] is None:
        raise click.UsageError("give --repo URL or --local-path DIR")
    if options["repo"] is not None and options["local_path"] is not None:
        raise click.UsageError(
            "give --repo URL or --local-path DIR, not both: --repo has cvsync clone, "
            "--local-path reads a checkout git-sync keeps"
        )
    if options["write_back"] and options["local_path"] is not None and not options["status_repo"]:
        raise click.UsageError(
            "--write-back with --local-path needs --status-repo URL, the remote to push status to"
        )
