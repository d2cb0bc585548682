"""Benchmark the status summary: summarize + render YAML + render Markdown for the largest
ClusterVersion in the corpus, against `json.dumps` of the same object in the same run.

What it measures, in one process and on the same object:

* summary: the whole work of writing status/<cluster>.yaml and status/<cluster>.md from a
  live object already in memory: `summarize(live, agent)`, then `render_yaml(summary)` and
  `render_markdown(summary)`; the three stages are also timed on their own;
* baseline: `json.dumps(live)`, the cheapest thing any writer does with the object, so the
  ratio says what the summary costs compared with merely serializing what it reads.

The object is the largest `*.yaml` under ../shared/corpus/clusterversions (184 KB: 24
available and 69 conditional updates with up to 5 risks each), read and parsed once before
timing, timestamps kept as text as the API server sends them. Each figure is the best of R
repeats timed with time.perf_counter, measurements interleaved within each repeat, with the
garbage collector off during a timing. Goal: summary <= 20 ms.

Run from the repository root:

    .venv/bin/python bench/summary.py [--repeat R] [--corpus DIR] [--json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from agent.model.revision import Revision
from agent.model.status import AgentState, StatusSummary
from agent.report.status_render import render_markdown, render_yaml
from agent.report.summarize import summarize

GOAL_MS = 20.0
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("CVSYNC_CORPUS", REPO.parent / "shared" / "corpus"))


class _TextTimestamps(SafeConstructor):
    """Timestamps stay text, as in the API server's JSON."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def largest_object(corpus: Path) -> tuple[Path, dict[str, Any]]:
    folder = corpus / "clusterversions"
    files = sorted(folder.glob("*.yaml"), key=lambda p: p.stat().st_size) if folder.is_dir() else []
    if not files:
        sys.exit(
            f"bench/summary.py: no ClusterVersion corpus at {folder}\n"
            "  it is read from ../shared/corpus relative to the repository "
            "(or from $CVSYNC_CORPUS, or --corpus DIR)"
        )
    path = files[-1]
    yaml = YAML(typ="safe")
    yaml.Constructor = _TextTimestamps
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"))
    if loaded.get("kind") == "List":
        (loaded,) = loaded["items"]
    return path, loaded


def best_of(repeat: int, work: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time in ms of each callable, interleaved so drift in machine load hits all."""
    best = dict.fromkeys(work, float("inf"))
    for _ in range(repeat):
        for name, run in work.items():
            gc.disable()
            try:
                started = time.perf_counter()
                run()
                elapsed = time.perf_counter() - started
            finally:
                gc.enable()
            best[name] = min(best[name], elapsed * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=50, help="repeats; the best is kept")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    path, live = largest_object(args.corpus)
    agent = AgentState(
        cluster="bench",
        last_attempted=Revision("main", "0" * 40),
        last_applied=Revision("main", "0" * 40),
        last_result="InSync",
        last_reason="InSync",
    )
    summary: StatusSummary = summarize(live, agent)
    yaml_text, markdown = render_yaml(summary), render_markdown(summary)

    def whole() -> None:
        done = summarize(live, agent)
        render_yaml(done)
        render_markdown(done)

    figures = best_of(
        args.repeat,
        {
            "summary": whole,
            "summarize": lambda: summarize(live, agent),
            "render_yaml": lambda: render_yaml(summary),
            "render_markdown": lambda: render_markdown(summary),
            "json.dumps": lambda: json.dumps(live),
        },
    )
    result = {
        "object": path.name,
        "objectBytes": path.stat().st_size,
        "yamlBytes": len(yaml_text.encode()),
        "markdownBytes": len(markdown.encode()),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "ms": {name: round(value, 3) for name, value in figures.items()},
        "ratioToJsonDumps": round(figures["summary"] / figures["json.dumps"], 1),
        "goalMs": GOAL_MS,
        "goalMet": figures["summary"] <= GOAL_MS,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"Status summary of `{path.name}` ({result['objectBytes']:,} bytes), "
            f"best of {args.repeat}, Python {result['python']}\n"
        )
        print("| work | best ms | vs json.dumps |")
        print("|---|---:|---:|")
        for name, value in figures.items():
            print(f"| {name} | {value:.2f} | {value / figures['json.dumps']:.1f}x |")
        verdict = "met" if result["goalMet"] else "NOT met"
        print(
            f"\nGoal: summary (summarize + YAML + Markdown) <= {GOAL_MS:.0f} ms: {verdict} "
            f"({figures['summary']:.2f} ms). Output: YAML {result['yamlBytes']:,} bytes, "
            f"Markdown {result['markdownBytes']:,} bytes."
        )
    return 0 if result["goalMet"] else 1


if __name__ == "__main__":
    sys.exit(main())
