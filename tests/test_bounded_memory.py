"""What the agent keeps between cycles stays bounded however many cycles run: each structure
that remembers something per message, revision or request is driven many times here, against
the sandbox API server and real git remotes, and its size checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_support import SPEC_PATH, running_agent, spec, until

from agent.adapters.credentials import Credentials, CredentialSource
from agent.adapters.events import DEDUP_MAX_KEYS, DEDUP_WINDOW, EventRecorder
from agent.engine.reconciler import FINDING_MESSAGE_LIMIT, Result
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, EVENTS
from agent.sandbox.server import Sandbox, SandboxOptions


class SteppedClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Recording:
    sandbox: Sandbox
    recorder: EventRecorder
    clock: SteppedClock
    live: dict[str, Any]

    def events(self, message: str) -> list[dict[str, Any]]:
        return [e for e in self.sandbox.store.list(EVENTS.id, "default") if e["message"] == message]

    async def record(self, message: str) -> None:
        await self.recorder.record("InvalidSpec", message, warning=True, involved=self.live)


@pytest.fixture
async def recording(tmp_path: Path) -> AsyncIterator[Recording]:
    async with Sandbox(SandboxOptions(scenario="idle-4.15")) as sandbox:
        sandbox.access.set_rules("cvsync", FULL_ACCESS)
        kubeconfig = sandbox.kubeconfig(tmp_path / "kubeconfig", user="cvsync")
        credentials = await Credentials.load(CredentialSource(kubeconfig))
        api = credentials.client()
        live = sandbox.store.get(sandbox.api.key(CLUSTER_VERSIONS, "", "version"))
        assert live is not None
        clock = SteppedClock()
        try:
            yield Recording(sandbox, EventRecorder(api, "default", clock=clock), clock, live)
        finally:
            await api.close()


def bad_commit_message(number: int) -> str:
    """What a cycle says about a broken commit: every one names its own revision."""
    return (
        f"clusters/east/clusterversion.yaml:1:1: yaml-syntax: bad commit {number}; "
        f"main@sha1:{number:040x} stays in force"
    )


async def test_event_deduplication_remembers_a_bounded_number_of_messages(
    recording: Recording,
) -> None:
    for number in range(DEDUP_MAX_KEYS + 60):
        recording.clock.now += 0.5  # a bad commit every half second: all inside one window
        await recording.record(bad_commit_message(number))
        assert recording.recorder.remembered <= DEDUP_MAX_KEYS

    # The newest message is still one Event whose count a repeat bumps.
    newest = bad_commit_message(DEDUP_MAX_KEYS + 59)
    await recording.record(newest)
    assert [event["count"] for event in recording.events(newest)] == [2]


async def test_event_deduplication_forgets_a_message_once_its_window_has_passed(
    recording: Recording,
) -> None:
    await recording.record("first")
    recording.clock.now = 100.0
    await recording.record("second")
    assert recording.recorder.remembered == 2

    recording.clock.now = DEDUP_WINDOW + 1.0  # past the first message's window only
    await recording.record("third")
    assert recording.recorder.remembered == 2
    await recording.record("second")
    assert [event["count"] for event in recording.events("second")] == [2]
    # Past its window a message starts a new Event, as it did before it was forgotten.
    await recording.record("first")
    assert sorted(event["count"] for event in recording.events("first")) == [1, 1]


async def test_a_commit_quoting_a_huge_value_leaves_short_findings_in_what_the_agent_keeps(
    tmp_path: Path,
) -> None:
    async with running_agent(tmp_path, "idle-4.15") as agent:
        huge = "u" * 500_000  # under the 1 MiB file limit, so the file is parsed and checked
        text = spec(agent.cluster_id, agent.channel) + f"  upstream: 'not a url {huge}'\n"
        outcome = await agent.commit({SPEC_PATH: text}, "an upstream half a megabyte long")

        assert (outcome.result, outcome.reason) == (Result.STALLED, "InvalidSpec")
        assert outcome.message.startswith(f"{SPEC_PATH}:7:13: upstream-url: upstream 'not a url")
        assert " characters); main@sha1:" in outcome.message
        assert len(outcome.message) < 2 * FINDING_MESSAGE_LIMIT
        assert [f.rule for f in outcome.findings] == ["upstream-url"]
        assert all(len(f.message) < FINDING_MESSAGE_LIMIT + 30 for f in outcome.findings)
        # The status file committed to git tells the same short message.
        await until(lambda: "upstream-url" in agent.status_file())
        assert len(agent.status_file()) < 10_000
