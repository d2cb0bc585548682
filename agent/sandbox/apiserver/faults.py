"""Fault injection and request accounting for the sandbox API server.

Plain state changed at run time (by tests in-process or through the admin endpoint) and
consulted by the server once per request.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

ANY = "*"
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
WRITE_LOG_SIZE = 10_000


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """A write request as it arrived (before authorization, dry runs included)."""

    at: float  # time.monotonic() of the sandbox's process
    verb: str
    resource: str
    user: str


@dataclass
class FaultRule:
    """Fail, reset or delay the next `remaining` requests that match verb and resource."""

    action: str  # "status", "reset" or "delay"
    verb: str = ANY
    resource: str = ANY
    remaining: int = 1
    status: int = 500
    retry_after: int | None = None
    delay_seconds: float = 0.0

    def matches(self, verb: str, resource: str) -> bool:
        return self.remaining > 0 and self.verb in (ANY, verb) and self.resource in (ANY, resource)


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    gone_next_watches: int = 0
    requests: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # Time-ordered, so tests can prove who wrote when (two leaders never overlap).
    write_log: deque[WriteRequest] = field(default_factory=lambda: deque(maxlen=WRITE_LOG_SIZE))

    def fail(
        self,
        verb: str = ANY,
        resource: str = ANY,
        *,
        times: int = 1,
        status: int = 500,
        retry_after: int | None = None,
    ) -> None:
        self.rules.append(FaultRule("status", verb, resource, times, status, retry_after))

    def reset_connections(self, verb: str = ANY, resource: str = ANY, *, times: int = 1) -> None:
        self.rules.append(FaultRule("reset", verb, resource, times))

    def delay(
        self, seconds: float, verb: str = ANY, resource: str = ANY, *, times: int = 1
    ) -> None:
        self.rules.append(FaultRule("delay", verb, resource, times, delay_seconds=seconds))

    def gone_on_next_watch(self, times: int = 1) -> None:
        self.gone_next_watches += times

    def take(self, verb: str, resource: str) -> FaultRule | None:
        """The first armed rule for this request, consuming one of its uses."""
        for rule in self.rules:
            if rule.matches(verb, resource):
                rule.remaining -= 1
                return rule
        return None

    def take_gone(self) -> bool:
        if self.gone_next_watches > 0:
            self.gone_next_watches -= 1
            return True
        return False

    def clear(self) -> None:
        self.rules.clear()
        self.gone_next_watches = 0

    # Accounting.
    def count(self, verb: str, resource: str, user: str) -> None:
        self.requests[(verb, resource, user)] += 1
        if verb in WRITE_VERBS:
            self.write_log.append(WriteRequest(time.monotonic(), verb, resource, user))

    def total(self, verb: str = ANY, resource: str = ANY, user: str = ANY) -> int:
        return sum(
            n
            for (v, r, u), n in self.requests.items()
            if verb in (ANY, v) and resource in (ANY, r) and user in (ANY, u)
        )

    def writes(self, resource: str = ANY, user: str = ANY) -> int:
        return sum(self.total(verb, resource, user) for verb in WRITE_VERBS)
