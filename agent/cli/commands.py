"""The `cvsync` command line: subcommands, output formats and exit codes.

Exit codes: 0 success, 1 findings (errors, or warnings with --strict), 2 usage or I/O errors.
Bad input never produces a traceback.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date
from pathlib import Path
from typing import Any

import click

from agent import __version__
from agent.adapters.files import collect_spec_files
from agent.engine.leadership import Timings, timing_problem
from agent.engine.reconciler import select_spec
from agent.errors import CvsyncError, UsageError
from agent.logs import configure_logging
from agent.model import findings as rules
from agent.model.revision import Revision, Snapshot
from agent.model.status import AgentState
from agent.report import status_render
from agent.report.check import check_files
from agent.report.drift_render import FORMATS, render_drift
from agent.report.findings_render import render_json, render_text
from agent.report.status_markdown import render_drift_report_markdown, render_markdown
from agent.report.summarize import drift_entries, summarize
from agent.sandbox.operator.scenarios import load_scenario, scenario_names
from agent.settings import (
    DEFAULT_POLICY_PATH,
    DEFAULT_SPEC_PATH,
    GitSettings,
    LeaderSettings,
    Settings,
)
from agent.spec.normalize import desired_state
from agent.sync.diff import diff as diff_specs
from agent.sync.plan import plan_apply

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cvsync")
def cvsync() -> None:
    """GitOps for OpenShift's ClusterVersion: validate specs from git."""


@cvsync.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Human-readable lines or one JSON document.",
)
@click.option("--strict", is_flag=True, help="Count warnings as errors.")
def validate(paths: Sequence[str], output: str, strict: bool) -> None:
    """Validate ClusterVersion specs in PATHS (files, or directories searched for
    *.yaml, *.yml and *.json).

    Prints `path:line:col: severity[rule]: message` with a hint for every problem.
    Exits 0 when there are no errors, 1 when there are, 2 on usage or I/O errors.
    """
    collected = collect_spec_files(paths)
    report = check_files(collected.contents, collected.problems, today=date.today())
    if strict:
        report = report.promoted()
    click.echo(render_json(report) if output == "json" else render_text(report), nl=False)
    if any(f.rule == rules.FILE_UNREADABLE.id for f in report.findings):
        sys.exit(EXIT_USAGE)
    sys.exit(EXIT_FINDINGS if report.errors else EXIT_OK)


@cvsync.command()
@click.option(
    "--port", type=int, default=0, show_default=True, help="API port; 0 picks a free one."
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep objects, resourceVersions, the CA and every user's token and rules here across "
    "restarts, even a kill -9 (default: memory only, new credentials at every start).",
)
@click.option(
    "--kubeconfig",
    "kubeconfig_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the kubeconfig (default: in the state or a temporary directory).",
)
@click.option("--plain-http", is_flag=True, help="Serve plain HTTP instead of HTTPS.")
@click.option(
    "--admin-port", type=int, default=None, help="Serve the fault-injection endpoint here."
)
@click.option(
    "--scenario",
    type=click.Choice([*scenario_names(), "none"]),
    default="idle-4.15",
    show_default=True,
    help="The cluster to simulate (served with the feature set it names); none serves the API "
    "with no ClusterVersion and no operator.",
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.001),
    default=60.0,
    show_default=True,
    help="Simulated seconds per real second (60: an hour-long update takes a minute).",
)
def sandbox(
    *,
    port: int,
    state_dir: Path | None,
    kubeconfig_path: Path | None,
    plain_http: bool,
    admin_port: int | None,
    scenario: str,
    time_scale: float,
) -> None:
    """Run a simulated OpenShift control plane on 127.0.0.1 until Ctrl-C: an API server
    for ClusterVersion, Lease and Event, and a cluster-version-operator simulator."""
    # Imported here: aiohttp and cryptography are needed by this command only.
    from agent.sandbox.runner import serve_until_stopped  # noqa: PLC0415
    from agent.sandbox.server import SandboxOptions  # noqa: PLC0415

    chosen = None if scenario == "none" else load_scenario(scenario)
    options = SandboxOptions(
        port=port,
        tls=not plain_http,
        state_dir=state_dir,
        work_dir=state_dir,
        feature_set=chosen.feature_set if chosen else "Default",
        admin_port=admin_port,
        scenario=chosen.name if chosen else None,
        time_scale=time_scale,
    )
    asyncio.run(serve_until_stopped(options, kubeconfig_path, click.echo))


@cvsync.command()
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
    asyncio.run(_until_signalled(lambda stop: run_agent(settings, stop)))


@cvsync.command()
def demo() -> None:
    """Show the whole loop in under a minute against the built-in sandbox cluster."""
    from agent.cli.demo import run_demo  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    sys.exit(asyncio.run(run_demo(click.echo)))


def _target_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `diff` and `plan` share: which spec, which cluster, which output."""
    for option in reversed(
        [
            click.option("--cluster", required=True, envvar="CVSYNC_CLUSTER"),
            click.option(
                "--file",
                "spec_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="The spec to compare (default: clusters/<cluster>/clusterversion.yaml).",
            ),
            click.option("--kubeconfig", type=click.Path(path_type=Path), envvar="KUBECONFIG"),
            click.option("--context", envvar="CVSYNC_CONTEXT"),
            click.option(
                "-o", "--output", type=click.Choice(FORMATS), default="text", show_default=True
            ),
        ]
    ):
        command = option(command)
    return command


@cvsync.command()
@_target_options
def diff(**options: Any) -> None:
    """Compare the spec in git with the live ClusterVersion, like `kubectl diff`.

    Exits 0 when nothing drifted, 1 when something did, 2 on errors."""
    sys.exit(asyncio.run(_diff(options)))


@cvsync.command()
@_target_options
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The upgrade policy (default: clusters/<cluster>/policy.yaml when it exists).",
)
@click.option(
    "--live",
    "live_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Plan offline against a saved ClusterVersion (oc get -o yaml) or a cvsync status file.",
)
@click.option(
    "--graph",
    "graph_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Update graph data (channels/, blocked-edges/ as in cincinnati-graph-data) for the path.",
)
@click.option("--pr", "pull_request", is_flag=True, help="Print a pull-request comment.")
@click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"]),
    help="Evaluate windows and expiries at this time (default: now), e.g. 2026-12-05T02:30:00Z.",
)
def plan(**options: Any) -> None:
    """Show what `cvsync run` would change under the cluster's upgrade policy, from a
    server-side dry run (dryRun=All) or offline from --live.

    Exits 0 when the plan was made; with --pr, 0 when merging would apply (or change
    nothing), 1 when git's target would be blocked or wait; 2 on errors."""
    sys.exit(asyncio.run(_plan(options)))


async def _plan(options: dict[str, Any]) -> int:
    from agent.cli.plan_command import PlanRequest, run_plan  # noqa: PLC0415 - loads the sandbox graph

    cluster_name = options["cluster"]
    spec_file = options["spec_file"] or Path(DEFAULT_SPEC_PATH.format(cluster=cluster_name))
    policy_file = options["policy_file"]
    if policy_file is None:
        default = Path(DEFAULT_POLICY_PATH.format(cluster=cluster_name))
        sibling = spec_file.parent / "policy.yaml"
        policy_file = next((p for p in (sibling, default) if p.is_file()), None)
    at = options["at"]
    request = PlanRequest(
        cluster=cluster_name,
        spec_file=spec_file,
        policy_file=policy_file,
        live_file=options["live_file"],
        graph_dir=options["graph_dir"],
        kubeconfig=options["kubeconfig"],
        context=options["context"],
        output=options["output"],
        pull_request=options["pull_request"],
        at=None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC),
    )
    try:
        return await run_plan(request, lambda text: click.echo(text, nl=False))
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        return EXIT_USAGE


async def _diff(options: dict[str, Any]) -> int:
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    cluster_name = options["cluster"]
    path = options["spec_file"] or Path(DEFAULT_SPEC_PATH.format(cluster=cluster_name))
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    snapshot = Snapshot(Revision("file", str(path)), ((path.as_posix(), path.read_bytes()),))
    document, findings = select_spec(snapshot, path.as_posix())
    if document is None:
        for finding in findings:
            click.echo(f"{finding.location}: {finding.severity}[{finding.rule}]: {finding.message}")
        click.echo(f"cvsync: error: {path} holds no valid ClusterVersion", err=True)
        return EXIT_USAGE
    try:
        cluster = await KubeCluster.connect(
            kubeconfig=options["kubeconfig"], context=options["context"]
        )
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        return EXIT_USAGE
    try:
        live = await cluster.get()
        desired = desired_state(document)
        drift = diff_specs(desired.spec, live)
        plan_ = plan_apply(desired, live, drift, mode="enforce")
        label = path.as_posix()
        report = options.get("report") and options["output"] in ("text", "markdown")
        if report and live is not None:
            state = AgentState(cluster=cluster_name, drift=drift_entries(drift.items))
            click.echo(render_drift_report_markdown(summarize(live, state)), nl=False)
        else:
            click.echo(render_drift(cluster_name, label, drift, options["output"]), nl=False)
        if plan_.stalled is not None:
            click.echo(f"cvsync: error: {plan_.stalled}: {plan_.message}", err=True)
            return EXIT_USAGE
        return EXIT_FINDINGS if drift else EXIT_OK
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        return EXIT_USAGE
    finally:
        await cluster.close()


@cvsync.command()
@click.option("--cluster", default="cluster", envvar="CVSYNC_CLUSTER", show_default=True)
@click.option("--kubeconfig", type=click.Path(path_type=Path), envvar="KUBECONFIG")
@click.option("--context", envvar="CVSYNC_CONTEXT")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "yaml", "json", "markdown"]),
    default="text",
    show_default=True,
)
def status(cluster: str, kubeconfig: Path | None, context: str | None, output: str) -> None:
    """Print the live ClusterVersion's status summary; writes nothing anywhere."""
    sys.exit(asyncio.run(_status(cluster, kubeconfig, context, output)))


async def _status(cluster: str, kubeconfig: Path | None, context: str | None, output: str) -> int:
    from agent.adapters.kube import KubeCluster  # noqa: PLC0415 - kubernetes-asyncio loads ~1 s

    try:
        client = await KubeCluster.connect(kubeconfig=kubeconfig, context=context)
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        return EXIT_USAGE
    try:
        live = await client.get()
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        return EXIT_USAGE
    finally:
        await client.close()
    if live is None:
        click.echo("cvsync: error: the cluster has no ClusterVersion named version", err=True)
        return EXIT_USAGE
    summary = summarize(live, AgentState(cluster=cluster))
    renderers = {
        "text": status_render.render_text,
        "yaml": status_render.render_yaml,
        "json": status_render.render_json,
        "markdown": render_markdown,
    }
    click.echo(renderers[output](summary), nl=False)
    return EXIT_OK


@cvsync.command()
@_target_options
def drift(**options: Any) -> None:
    """Print the drift report: each drifted field, its git and live values, and who changed
    it when. Exits 0 when nothing drifted, 1 when something did, 2 on errors."""
    options["report"] = True
    sys.exit(asyncio.run(_diff(options)))


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


async def _until_signalled(body: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await body(stop)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; cvsync's own errors become a one-line message and exit 2."""
    try:
        cvsync.main(args=list(argv) if argv is not None else None, prog_name="cvsync")
    except CvsyncError as exc:
        click.echo(f"cvsync: error: {exc.message}", err=True)
        sys.exit(EXIT_USAGE)
