"""One frozen Settings for `cvsync run` and friends: flags > CVSYNC_* environment > defaults.

Pure data, built once in `cli` and passed down; one field per Helm value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["enforce", "observe"]
LogFormat = Literal["json", "text"]

DEFAULT_SPEC_PATH = "clusters/{cluster}/clusterversion.yaml"
DEFAULT_POLICY_PATH = "clusters/{cluster}/policy.yaml"


@dataclass(frozen=True, slots=True)
class GitSettings:
    repo: str | None = None  # own-clone mode: https, ssh or file URL
    ref: str = "main"
    local_path: Path | None = None  # git-sync mode: the link git-sync swaps
    workdir: Path = Path("/tmp/cvsync")
    interval: float = 60.0  # seconds between fetches (own-clone mode), with jitter
    token_file: Path | None = None
    token_env: str | None = None
    username: str | None = None
    password_file: Path | None = None
    ssh_key_file: Path | None = None
    known_hosts_file: Path | None = None
    # Local-path mode: seconds a burst of edits inside a plain work tree gets to settle (an
    # editor's write and close, git touching several files). A link swap is never delayed.
    debounce: float = 0.015


@dataclass(frozen=True, slots=True)
class LeaderSettings:
    """Leader election on a Lease in Settings.namespace, so replicas > 1 act one at a time."""

    enabled: bool = False
    lease_name: str = "cvsync"
    lease_duration: float = 15.0  # seconds a standby waits after the last renew it saw
    renew_deadline: float = 10.0  # the leader stops acting when it could not renew this long
    retry_period: float = 2.0  # seconds between renews (leader) and attempts (standby)
    identity: str = ""  # the holder name in the Lease; unique per replica (the pod name)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What cvsync's HTTP listener allows a client. No flags: the defaults suit a pod; tests
    shorten the timeouts."""

    header_timeout: float = 10.0  # seconds for a connection's request headers; idle keep-alive too
    body_timeout: float = 30.0  # seconds to receive a webhook's body
    max_connections: int = 1000  # open at once (fewer if RLIMIT_NOFILE is low); beyond: 503
    max_body_bytes: int = 25 * 1024 * 1024  # GitHub caps its webhook payloads at 25 MB
    delivery_window: float = 600.0  # a delivery ID seen this recently fetches nothing again


@dataclass(frozen=True, slots=True)
class Settings:
    cluster: str
    git: GitSettings
    spec_path: str = DEFAULT_SPEC_PATH
    policy_path: str = DEFAULT_POLICY_PATH  # optional: without it, the default policy applies
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: bool = False
    mode: Mode = "enforce"
    force_conflicts: bool = False
    resync_interval: float = 600.0
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    webhook_secret_file: Path | None = None
    log_format: LogFormat = "json"
    namespace: str = "default"  # where cvsync records its Events (its own namespace in a pod)
    write_back: bool = False  # commit status summaries and drift reports to git
    status_repo: str | None = None  # default: the repository cvsync reads (required with git-sync)
    # default: the branch cvsync reads; {cluster} is replaced (a branch per cluster)
    status_branch: str | None = None
    status_min_interval: float = 30.0
    status_push_attempts: int = 5  # pushes in one round before a publish gives up
    status_retry_base: float = 10.0  # wait after a give-up: full jitter up to base * 2**n ...
    status_retry_max: float = 300.0  # ... and never more than this
    status_author_name: str = "cvsync"
    status_author_email: str = "cvsync@localhost"
    leader: LeaderSettings = LeaderSettings()
    http_limits: HttpLimits = HttpLimits()  # no flag and no Helm value: see HttpLimits

    @property
    def cluster_spec_path(self) -> str:
        """The repository path of this cluster's spec, such as clusters/prod/clusterversion.yaml."""
        return self.spec_path.format(cluster=self.cluster)

    @property
    def cluster_status_branch(self) -> str:
        """The branch status goes to: --status-branch with {cluster} replaced (so each cluster
        may push a branch of its own), else the branch cvsync reads."""
        if self.status_branch is None:
            return self.git.ref
        return self.status_branch.replace("{cluster}", self.cluster)

    @property
    def cluster_policy_path(self) -> str:
        """The repository path of this cluster's upgrade policy."""
        return self.policy_path.format(cluster=self.cluster)
