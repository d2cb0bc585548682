"""Benchmark `cvsync validate` on a generated fleet repository against plain ruamel.yaml parsing.

What it measures, in one run and on the same files:

* cvsync: the whole work of `cvsync validate <root>` in-process, without the rendering:
  `collect_spec_files([root])` (directory walk, size checks, reads) then `check_files(...)`
  (event parse with positions, per-document validation, fleet checks, sorting);
* baseline: ruamel.yaml's fastest ordinary load, `list(YAML(typ="safe").load_all(text))`
  with one YAML instance reused (libyaml-backed when ruamel.yaml.clib is installed), each
  file's bytes read from disk and decoded inside the timing; the list of paths is built
  once beforehand, so the baseline does no directory walk and the ratio is conservative;
* round-trip: the same with ruamel.yaml's round-trip loader, `YAML(typ="rt")`, reused.

The fleet is `clusters/<name>/clusterversion.yaml` in a temporary directory: N realistic
ClusterVersion specs (unique v4 clusterIDs, stable/fast/eus channels, https upstreams,
digest-pinned desiredUpdate images, some capabilities, some overrides, a few comments),
generated deterministically from a seed. Each figure is the best of R repeats, timed with
time.perf_counter; the three measurements are interleaved within each repeat. The run
stops with an error unless cvsync reports 0 errors and N ClusterVersions, so the figures
always measure a complete validation.

Goals checked: cvsync validates >= 1,000 files/s and takes <= 2x the safe-loader baseline.

Run from the repository root:

    .venv/bin/python bench/validate.py [--clusters N] [--repeat R] [--seed S] [--json]
                                       [--profile]

`--json` prints the figures as one JSON document instead of the Markdown table;
`--profile` also prints the 10 costliest functions (cumulative time) of one
`check_files` run under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ruamel.yaml
from ruamel.yaml import YAML

from agent.adapters.files import collect_spec_files
from agent.model.findings import Severity
from agent.report.check import CheckReport, check_files

GOAL_FILES_PER_SECOND = 1_000.0
GOAL_RATIO_TO_SAFE = 2.0

_MINORS = (12, 14, 15, 16, 17, 18)
_CHANNEL_WEIGHTS = (("stable", 70), ("fast", 15), ("eus", 10), ("candidate", 5))
_PUBLIC_UPSTREAM = "https://api.openshift.com/api/upgrades_info/v1/graph"
_PRIVATE_UPSTREAMS = (
    "https://updateservice.apps.mgmt.example.internal/api/upgrades_info/v1/graph",
    "https://osus.corp.example.com/api/upgrades_info/graph",
)
_REGIONS = ("us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast")
_ENVIRONMENTS = ("prod", "stage", "dev", "edge")
# Safe with any baseline: marketplace (which needs OperatorLifecycleManager) is left out.
_OPTIONAL_CAPABILITIES = (
    "openshift-samples",
    "baremetal",
    "Console",
    "Insights",
    "Storage",
    "CSISnapshot",
    "NodeTuning",
    "Build",
    "DeploymentConfig",
    "ImageRegistry",
    "OperatorLifecycleManager",
)
_OVERRIDES = (
    ("Deployment", "apps", "openshift-monitoring", "cluster-monitoring-operator"),
    ("Deployment", "apps", "openshift-ingress-operator", "ingress-operator"),
    ("ClusterOperator", "config.openshift.io", "", "insights"),
)


# --- the fleet --------------------------------------------------------------------------


def _cluster_version_yaml(rng: random.Random, cluster_id: str, name: str) -> str:
    """One ClusterVersion spec as a person or `oc get -o yaml | yq` would write it."""
    minor = rng.choice(_MINORS)
    patch = rng.randint(0, 40)
    prefix = rng.choices(
        [p for p, _ in _CHANNEL_WEIGHTS], weights=[w for _, w in _CHANNEL_WEIGHTS]
    )[0]
    if prefix == "eus" and minor % 2:
        prefix = "stable"  # EUS channels exist only for even minors
    upstream = _PUBLIC_UPSTREAM if rng.random() < 0.8 else rng.choice(_PRIVATE_UPSTREAMS)
    digest = f"{rng.getrandbits(256):064x}"
    commented = rng.random() < 0.05
    lines: list[str] = []
    if commented:
        lines += [
            f"# ClusterVersion for {name}; managed by the platform team, merge to roll out.",
            "# Pin desiredUpdate.image by digest: take it from availableUpdates.",
        ]
    lines += [
        "apiVersion: config.openshift.io/v1",
        "kind: ClusterVersion",
        "metadata:",
        "  name: version",
        "spec:",
        f"  clusterID: {cluster_id}",
        f"  channel: {prefix}-4.{minor}" + ("  # move with the minor upgrade" if commented else ""),
        f"  upstream: {upstream}",
        "  desiredUpdate:",
        f"    version: 4.{minor}.{patch}",
        f"    image: quay.io/openshift-release-dev/ocp-release@sha256:{digest}",
    ]
    if rng.random() < 0.3:
        # A release's own baseline set, or one from an earlier release the cluster came from.
        baseline = rng.choice(("vCurrent", "None", f"v4.{rng.randint(11, min(minor, 18))}"))
        enabled = rng.sample(_OPTIONAL_CAPABILITIES, rng.randint(1, 4))
        lines += ["  capabilities:", f"    baselineCapabilitySet: {baseline}"]
        lines += ["    additionalEnabledCapabilities:"] + [f"    - {cap}" for cap in enabled]
    if rng.random() < 0.1:
        kind, group, namespace, component = rng.choice(_OVERRIDES)
        if commented:
            lines.append("  # unmanaged while the vendor fix is pending")
        lines += [
            "  overrides:",
            f"  - kind: {kind}",
            f"    group: {group}",
            f'    namespace: "{namespace}"',
            f"    name: {component}",
            "    unmanaged: true",
        ]
    return "\n".join(lines) + "\n"


def generate_fleet(root: Path, clusters: int, seed: int) -> int:
    """Write `clusters` specs under root/clusters/<name>/; returns the total bytes written."""
    rng = random.Random(seed)
    seen: set[str] = set()
    total = 0
    for index in range(clusters):
        cluster_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        while cluster_id in seen:
            cluster_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        seen.add(cluster_id)
        name = f"{rng.choice(_ENVIRONMENTS)}-{rng.choice(_REGIONS)}-{index:05d}"
        directory = root / "clusters" / name
        directory.mkdir(parents=True)
        data = _cluster_version_yaml(rng, cluster_id, name).encode("utf-8")
        (directory / "clusterversion.yaml").write_bytes(data)
        total += len(data)
    return total


# --- the measurements -------------------------------------------------------------------


def run_cvsync(root: Path) -> CheckReport:
    collected = collect_spec_files([str(root)])
    return check_files(collected.contents, collected.problems)


def run_ruamel(loader: YAML, paths: Sequence[Path]) -> int:
    """Load every file with `loader`; returns the number of documents."""
    documents = 0
    for path in paths:
        text = path.read_bytes().decode("utf-8")
        documents += len(list(loader.load_all(text)))
    return documents


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


@dataclass(frozen=True)
class Figures:
    clusters: int
    repeat: int
    seed: int
    fleet_bytes: int
    cvsync_seconds: float
    safe_seconds: float
    rt_seconds: float
    cvsync_warnings: int
    cpu_count: int | None
    python: str
    ruamel_yaml: str
    libyaml: bool

    def files_per_second(self, seconds: float) -> float:
        return self.clusters / seconds

    @property
    def ratio_to_safe(self) -> float:
        return self.cvsync_seconds / self.safe_seconds

    @property
    def ratio_to_rt(self) -> float:
        return self.cvsync_seconds / self.rt_seconds

    @property
    def throughput_goal_met(self) -> bool:
        return self.files_per_second(self.cvsync_seconds) >= GOAL_FILES_PER_SECOND

    @property
    def ratio_goal_met(self) -> bool:
        return self.ratio_to_safe <= GOAL_RATIO_TO_SAFE

    def as_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "cvsync_files_per_second": self.files_per_second(self.cvsync_seconds),
            "safe_files_per_second": self.files_per_second(self.safe_seconds),
            "rt_files_per_second": self.files_per_second(self.rt_seconds),
            "cvsync_to_safe_ratio": self.ratio_to_safe,
            "cvsync_to_rt_ratio": self.ratio_to_rt,
            "goals": {
                "files_per_second": GOAL_FILES_PER_SECOND,
                "files_per_second_met": self.throughput_goal_met,
                "max_ratio_to_safe": GOAL_RATIO_TO_SAFE,
                "ratio_to_safe_met": self.ratio_goal_met,
            },
        }


def measure(root: Path, clusters: int, repeat: int, seed: int, fleet_bytes: int) -> Figures:
    paths = sorted((root / "clusters").glob("*/clusterversion.yaml"))
    if len(paths) != clusters:
        raise SystemExit(f"bench: expected {clusters} generated files, found {len(paths)}")
    safe, rt = YAML(typ="safe"), YAML(typ="rt")
    best = {"cvsync": float("inf"), "safe": float("inf"), "rt": float("inf")}
    report: CheckReport | None = None
    for _ in range(repeat):
        seconds, report = _timed(partial(run_cvsync, root))
        best["cvsync"] = min(best["cvsync"], seconds)
        for label, loader in (("safe", safe), ("rt", rt)):
            seconds, documents = _timed(partial(run_ruamel, loader, paths))
            best[label] = min(best[label], seconds)
            if documents != clusters:
                raise SystemExit(f"bench: the {label} loader read {documents} documents")
    assert report is not None
    _check_report(report, clusters)
    return Figures(
        clusters=clusters,
        repeat=repeat,
        seed=seed,
        fleet_bytes=fleet_bytes,
        cvsync_seconds=best["cvsync"],
        safe_seconds=best["safe"],
        rt_seconds=best["rt"],
        cvsync_warnings=report.warnings,
        cpu_count=os.cpu_count(),
        python=platform.python_version(),
        ruamel_yaml=ruamel.yaml.__version__,
        libyaml=getattr(safe.Parser, "__name__", "") == "CParser",
    )


def _check_report(report: CheckReport, clusters: int) -> None:
    """Refuse figures that do not come from a complete, clean validation."""
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    if errors:
        first = errors[0]
        raise SystemExit(
            f"bench: cvsync found {len(errors)} error(s) in the generated fleet, first: "
            f"{first.location.file}:{first.location.line}: [{first.rule}] {first.message}"
        )
    if report.files != clusters or len(report.documents) != clusters:
        raise SystemExit(
            f"bench: cvsync read {report.files} files and {len(report.documents)} "
            f"ClusterVersions; expected {clusters} of each"
        )


def profile_check_files(root: Path, top: int = 10) -> str:
    """cProfile over check_files alone (files already read); the top functions by cumtime."""
    collected = collect_spec_files([str(root)])
    profiler = cProfile.Profile()
    profiler.enable()
    check_files(collected.contents, collected.problems)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- the output -------------------------------------------------------------------------


def render_markdown(figures: Figures) -> str:
    rows = (
        ("cvsync validate (collect + check)", figures.cvsync_seconds),
        ('ruamel.yaml YAML(typ="safe").load_all (baseline)', figures.safe_seconds),
        ('ruamel.yaml YAML(typ="rt").load_all', figures.rt_seconds),
    )
    lines = [
        f"{figures.clusters:,} ClusterVersion files ({figures.fleet_bytes:,} bytes), "
        f"best of {figures.repeat}",
        "",
        "| measurement | seconds | files/s | ratio to safe-loader baseline |",
        "|---|---:|---:|---:|",
    ]
    for label, seconds in rows:
        lines.append(
            f"| {label} | {seconds:.3f} | {figures.files_per_second(seconds):,.0f} "
            f"| {seconds / figures.safe_seconds:.2f}x |"
        )

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    lines += [
        "",
        f"cvsync / round-trip loader: {figures.ratio_to_rt:.2f}x; "
        f"cvsync warnings: {figures.cvsync_warnings:,}, errors: 0",
        f"Goals: >= {GOAL_FILES_PER_SECOND:,.0f} files/s: "
        f"{verdict(figures.throughput_goal_met)} "
        f"({figures.files_per_second(figures.cvsync_seconds):,.0f}); "
        f"<= {GOAL_RATIO_TO_SAFE:.0f}x the raw parse: {verdict(figures.ratio_goal_met)} "
        f"({figures.ratio_to_safe:.2f}x). "
        f"os.cpu_count()={figures.cpu_count}, Python {figures.python}, "
        f"ruamel.yaml {figures.ruamel_yaml} (libyaml: {'yes' if figures.libyaml else 'no'})",
    ]
    return "\n".join(lines)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clusters", type=_positive, default=2_000, help="fleet size (2000)")
    parser.add_argument("--repeat", type=_positive, default=3, help="repeats, best kept (3)")
    parser.add_argument("--seed", type=int, default=20240601, help="fleet generator seed")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="also print the top 10 of check_files' profile"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cvsync-bench-") as tmp:
        root = Path(tmp)
        fleet_bytes = generate_fleet(root, args.clusters, args.seed)
        figures = measure(root, args.clusters, args.repeat, args.seed, fleet_bytes)
        profile = profile_check_files(root) if args.profile else ""
    print(json.dumps(figures.as_json(), indent=2) if args.json else render_markdown(figures))
    if profile:
        print(profile, file=sys.stderr if args.json else sys.stdout)


if __name__ == "__main__":
    main()
