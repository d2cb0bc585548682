"""Replay the requests a real kube-apiserver answered (../shared/realserver/raw-api-steps.json)
against the sandbox, set up the way that server was, and compare the answers after the
normalization the recording's README describes.

Run it alone to see every difference: `python tests/realserver_replay.py [--verbose]`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import re
import ssl
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from agent.sandbox.apiserver.access import Rule  # noqa: E402
from agent.sandbox.apiserver.handlers import WriteOptions  # noqa: E402
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS  # noqa: E402
from agent.sandbox.apiserver.routing import Target  # noqa: E402
from agent.sandbox.apiserver.tls import issue_client_certificate  # noqa: E402
from agent.sandbox.server import Sandbox, SandboxOptions  # noqa: E402

REALSERVER = Path(os.environ.get("CVSYNC_REALSERVER", HERE.parent.parent / "shared" / "realserver"))
STEPS_FILE = REALSERVER / "raw-api-steps.json"
UPSTREAM = "https://api.openshift.com/api/upgrades_info/v1/graph"
AGENT_NAMESPACE = "cvsync"

# The agent's rules on the recording server: exactly what the chart grants, without names.
AGENT_RULES = (
    Rule.of(["get", "list", "watch", "patch"], ["config.openshift.io"], ["clusterversions"]),
    Rule.of(["get"], ["config.openshift.io"], ["clusterversions/status"]),
    Rule.of(
        ["get", "create", "update"], ["coordination.k8s.io"], ["leases"],
        namespaces=[AGENT_NAMESPACE],
    ),
    Rule.of(
        ["create", "patch"], ["", "events.k8s.io"], ["events"], namespaces=[AGENT_NAMESPACE]
    ),
)  # fmt: skip

# Fields any two servers differ in by nature; the recording left them out.
_VOLATILE_METADATA = ("uid", "resourceVersion", "creationTimestamp", "generation", "selfLink")
_TOO_OLD = re.compile(r"too old resource version: (\d+) \(\d+\)")


@dataclass(frozen=True)
class StepOutcome:
    name: str
    expected_status: int
    status: int
    expected: Any
    answer: Any

    @property
    def identical(self) -> bool:
        return self.status == self.expected_status and self.answer == self.expected


def load_steps() -> dict[str, Any]:
    return json.loads(STEPS_FILE.read_text())  # type: ignore[no-any-return]


def normalize(value: Any, *, generate_name: str = "") -> Any:
    """The answer with what the recording leaves out removed, as its README says."""
    value = copy.deepcopy(value)
    _scrub(value, generate_name)
    return value


def _scrub(value: Any, generate_name: str) -> None:
    if isinstance(value, list):
        for item in value:
            _scrub(item, generate_name)
        return
    if not isinstance(value, dict):
        return
    value.pop("uid", None)
    value.pop("eventTime", None)
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        for name in _VOLATILE_METADATA:
            metadata.pop(name, None)
        entries = metadata.get("managedFields")
        if isinstance(entries, list):
            for entry in entries:
                entry.pop("time", None)
            entries.sort(
                key=lambda e: (e.get("manager", ""), e.get("operation", ""),
                               e.get("subresource", ""))
            )  # fmt: skip
        if isinstance(metadata.get("name"), str):
            metadata["name"] = _fold_generated(metadata["name"], generate_name)
    details = value.get("details")
    if isinstance(details, dict) and isinstance(details.get("name"), str):
        details["name"] = _fold_generated(details["name"], generate_name)
    message = value.get("message")
    if isinstance(message, str):
        message = _TOO_OLD.sub(r"too old resource version: \1", message)
        value["message"] = _fold_generated(message, generate_name)
    for key, child in value.items():
        if key != "metadata":
            _scrub(child, generate_name)
    if isinstance(metadata, dict):
        for child in metadata.values():
            _scrub(child, generate_name)


def _fold_generated(text: str, generate_name: str) -> str:
    """`version.x7k2p` as `version.<generated>`: the random suffix of a generated name."""
    if not generate_name:
        return text
    return re.sub(re.escape(generate_name) + r"[a-z0-9]{5}\b", generate_name + "<generated>", text)


def _generate_name(step: dict[str, Any]) -> str:
    body = step.get("body")
    if isinstance(body, dict):
        return str(body.get("metadata", {}).get("generateName", ""))
    return ""


class Replayer:
    """Send recorded steps to a running sandbox as the recording's three users."""

    def __init__(self, sandbox: Sandbox, directory: Path) -> None:
        assert sandbox.pki is not None, "the replay needs the sandbox's TLS"
        self.base = sandbox.url
        self.admin_token = sandbox.admin_token
        agent = issue_client_certificate(sandbox.pki, directory, "agent")
        sandbox.access.set_rules("agent", AGENT_RULES)
        self._contexts = {}
        for user in ("admin", "agent", "anonymous"):
            context = ssl.create_default_context(cafile=str(sandbox.pki.ca.cert))
            if user == "agent":
                context.load_cert_chain(str(agent.cert), str(agent.key))
            self._contexts[user] = context

    def send(self, step: dict[str, Any]) -> tuple[int, Any]:
        body = step.get("body")
        data: bytes | None = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        request = urllib.request.Request(self.base + step["path"], data=data, method=step["method"])
        if step.get("contentType"):
            request.add_header("Content-Type", step["contentType"])
        if step["user"] == "admin":
            request.add_header("Authorization", f"Bearer {self.admin_token}")
        try:
            with urllib.request.urlopen(
                request, context=self._contexts[step["user"]], timeout=30
            ) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        if "watch=1" in step["path"]:
            return status, [json.loads(line) for line in raw.splitlines() if line.strip()]
        return status, json.loads(raw) if raw else None


def seed_like_the_recording(sandbox: Sandbox, cluster_id: str) -> None:
    """The state the real server had before step 1 (its README says how it was made)."""
    sandbox.api.create(
        Target(CLUSTER_VERSIONS, "", ""),
        {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"channel": "stable-4.16", "clusterID": cluster_id, "upstream": UPSTREAM},
        },
        WriteOptions(manager="cluster-bootstrap"),
    )


def replay(steps: dict[str, Any], directory: Path) -> list[StepOutcome]:
    """Run every step against a fresh sandbox started as the recording's server was."""

    async def run() -> list[StepOutcome]:
        async with Sandbox(SandboxOptions(work_dir=directory / "sandbox")) as sandbox:
            seed_like_the_recording(sandbox, steps["clusterID"])
            replayer = Replayer(sandbox, directory)
            outcomes = []
            for step in steps["steps"]:
                status, answer = await asyncio.to_thread(replayer.send, step)
                outcomes.append(
                    StepOutcome(
                        step["name"],
                        step["status"],
                        status,
                        normalize(step["response"], generate_name=_generate_name(step)),
                        normalize(answer, generate_name=_generate_name(step)),
                    )
                )
            return outcomes

    return asyncio.run(run())


def describe(outcome: StepOutcome) -> str:
    lines = [f"{outcome.name}: real {outcome.expected_status}, sandbox {outcome.status}"]
    if outcome.answer != outcome.expected:
        lines.append("  real:    " + json.dumps(outcome.expected, sort_keys=True))
        lines.append("  sandbox: " + json.dumps(outcome.answer, sort_keys=True))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="print each difference whole")
    arguments = parser.parse_args()
    if not STEPS_FILE.exists():
        print(f"no recording at {STEPS_FILE}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as directory:
        outcomes = replay(load_steps(), Path(directory))
    for outcome in outcomes:
        if not outcome.identical:
            print(describe(outcome) if arguments.verbose else f"differs: {outcome.name}")
    same = sum(outcome.identical for outcome in outcomes)
    print(f"{same} of {len(outcomes)} identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
