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
    debounce: float = 0.05  # git-sync mode: seconds to wait for a burst of file events


@dataclass(frozen=True, slots=True)
class Settings:
    cluster: str
    git: GitSettings
    spec_path: str = DEFAULT_SPEC_PATH
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
    status_branch: str | None = None  # default: the branch cvsync reads
    status_min_interval: float = 30.0
    status_author_name: str = "cvsync"
    status_author_email: str = "cvsync@localhost"

    @property
    def cluster_spec_path(self) -> str:
        """The repository path of this cluster's spec, such as clusters/prod/clusterversion.yaml."""
        return self.spec_path.format(cluster=self.cluster)
