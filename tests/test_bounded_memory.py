"""What the agent keeps between cycles stays bounded however many cycles run: each structure
that remembers something per message, revision or request is driven many times here, against
the sandbox API server and real git remotes, and its size checked."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from agent_support import SPEC_PATH, running_agent, spec, until

from agent.adapters.credentials import Credentials, CredentialSource
from agent.adapters.events import DEDUP_MAX_KEYS, DEDUP_WINDOW, EventRecorder
from agent.engine.reconciler import FINDING_MESSAGE_LIMIT, Result
from agent.report.status_render import yaml_text
from agent.sandbox.apiserver.access import FULL_ACCESS
from agent.sandbox.apiserver.resources import CLUSTER_VERSIONS, EVENTS
from agent.sandbox.server import Sandbox, SandboxOptions
from agent.spec.parse import parse_file
from agent.upgrade.policy import parse_policy


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


# glibc's mallinfo2 (2.33+): hblkhd is the bytes held in mappings of their own, which go back
# to the system on free. A program that frees a 4 MiB buffer and then allocates 2 MiB: does
# the second buffer get a mapping of its own, or a piece of the heap?
_SECOND_BUFFER_MAPPED = """
import ctypes, sys
from agent.allocator import keep_large_buffers_out_of_the_heap
if sys.argv[1] == "kept":
    assert keep_large_buffers_out_of_the_heap()
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
first = bytearray(4 << 20)
del first
before = libc.mallinfo2().hblkhd
second = bytearray(2 << 20)
print(libc.mallinfo2().hblkhd - before >= 2 << 20)
"""


def second_buffer_mapped(setting: str) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", _SECOND_BUFFER_MAPPED, setting],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip() == "True"


@pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc" or not hasattr(ctypes.CDLL(None), "mallinfo2"),
    reason="glibc's allocator (2.33 or later) only",
)
def test_a_large_buffer_keeps_its_own_mapping_after_a_larger_one_was_freed() -> None:
    # glibc's own behaviour, which let RSS creep: freeing the 4 MiB buffer raised the mmap
    # threshold, so the next 2 MiB came from the heap (mallopt(3), "M_MMAP_THRESHOLD").
    assert not second_buffer_mapped("default")
    # What `cvsync run` sets: every buffer of 128 KiB or more is mapped, and unmapped on free.
    assert second_buffer_mapped("kept")


# --- libyaml's buffers ------------------------------------------------------------------
# ruamel.yaml's C loaders and dumpers point at themselves (loader._parser = loader, and so
# on), so each one is freed by the cyclic garbage collector only, not when its last user lets
# go; the libyaml buffers it holds (tens of kB, more for deep nesting) are C memory that
# tracemalloc does not see. In `cvsync run` a full collection comes minutes apart, and
# bench/soak.py's RSS crept with every parse and status render until then.

HOSTILE_FILES = {
    "invalid YAML": b"spec: [unclosed\n  - {",
    "deep nesting": b"spec:\n  overrides: " + b"[" * 3000 + b"1" + b"]" * 3000 + b"\n",
    "an alias bomb": b"a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n",
    "duplicate keys": b"spec:\n  channel: a\n  channel: b\n",
    "empty documents": b"---\n" * 50,
}
STATUS_DOCUMENT = {
    "cvsync": {"items": [{"name": f"item {n}", "message": "m" * 80} for n in range(50)]}
}


def left_for_the_collector(action: Callable[[], object]) -> list[str]:
    """The types of what only a reference cycle keeps alive once `action` has run."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        action()
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return sorted({type(thing).__qualname__ for thing in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()
        gc.collect()


def parse_every_kind() -> None:
    spec_text = spec("0b9b4c2e-5e6e-4c3e-8f8e-3a1d2e4b5c6d", "stable-4.15")
    parse_file(spec_text.encode(), "clusters/a/clusterversion.yaml")
    for data in HOSTILE_FILES.values():
        parse_file(data, "clusters/a/clusterversion.yaml")
        parse_policy(data, "clusters/a/policy.yaml", today=date(2026, 1, 1))


def test_parsing_good_and_broken_files_leaves_nothing_for_the_garbage_collector() -> None:
    assert left_for_the_collector(parse_every_kind) == []


def test_writing_the_status_yaml_leaves_nothing_for_the_garbage_collector() -> None:
    assert left_for_the_collector(lambda: yaml_text(STATUS_DOCUMENT)) == []


# What the parses and renders of `cvsync run` hold until the collector runs, in a process of
# its own (its RssAnon is its own memory, without mapped files), with the agent's allocator
# setting: before this was fixed, 300 rounds held about 90 MB.
_HELD_UNTIL_COLLECTED = """
import gc, sys
from agent.allocator import keep_large_buffers_out_of_the_heap
keep_large_buffers_out_of_the_heap()
from agent.report.status_render import yaml_text
from agent.spec.parse import parse_file
files = [b"spec: [unclosed\\n  - {", b"spec:\\n  overrides: " + b"[" * 3000 + b"1" + b"]" * 3000]
status = {"cvsync": {"items": [{"name": f"item {n}", "message": "m" * 80} for n in range(50)]}}
def anon_kib():
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) for line in lines if line.startswith("RssAnon:"))
def one_round():
    for data in files:
        parse_file(data, "clusters/a/clusterversion.yaml")
    yaml_text(status)
one_round()
gc.collect()
gc.disable()
before = anon_kib()
for _ in range(int(sys.argv[1])):
    one_round()
print(anon_kib() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="Linux's /proc only")
def test_three_hundred_parses_and_status_renders_hold_no_memory_until_the_collector_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run(
        [sys.executable, "-c", _HELD_UNTIL_COLLECTED, "300"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    held_kib = int(done.stdout)
    assert held_kib < 4096, f"{held_kib} KiB held until the garbage collector runs"
