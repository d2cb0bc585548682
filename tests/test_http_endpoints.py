"""cvsync's own endpoints over real HTTP: health, readiness, metrics and the signed webhook."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator

import aiohttp
import pytest

from agent.adapters.http import HttpState, http_application, serve
from agent.metrics import Metrics

SECRET = b"webhook-shared-secret"


class Endpoint:
    def __init__(self) -> None:
        self.ready = False
        self.pushes = 0
        self.metrics = Metrics()
        self.url = ""


@pytest.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    state = Endpoint()

    def pushed() -> None:
        state.pushes += 1

    app = http_application(HttpState(state.metrics, lambda: state.ready, pushed, SECRET))
    runner, port = await serve(app, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


async def test_healthz_answers_at_once_and_readyz_only_after_the_first_cycle(
    endpoint: Endpoint,
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{endpoint.url}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{endpoint.url}/readyz") as response:
            assert response.status == 503
        endpoint.ready = True
        async with session.get(f"{endpoint.url}/readyz") as response:
            assert response.status == 200


async def test_metrics_are_served_in_the_prometheus_text_format(endpoint: Endpoint) -> None:
    endpoint.metrics.cycles.labels(result="InSync").inc()
    endpoint.metrics.last_applied.info({"revision": "main@sha1:abc"})
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{endpoint.url}/metrics") as response,
    ):
        text = await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'cvsync_cycles_total{result="InSync"} 1.0' in text
    assert 'cvsync_last_applied_revision_info{revision="main@sha1:abc"} 1.0' in text
    assert "cvsync_cycle_duration_seconds_bucket" in text


def _github_signature(body: bytes, secret: bytes = SECRET) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "status", "pushes"),
    [
        ({"X-Hub-Signature-256": _github_signature(b'{"ref":"refs/heads/main"}')}, 202, 1),
        ({"X-Gitlab-Token": SECRET.decode()}, 202, 1),
        ({"X-Hub-Signature-256": _github_signature(b"{}", b"wrong-secret")}, 401, 0),
        ({"X-Hub-Signature-256": _github_signature(b"another body")}, 401, 0),
        ({"X-Gitlab-Token": "guess"}, 401, 0),
        ({}, 401, 0),
    ],
    ids=[
        "github",
        "gitlab",
        "github-wrong-secret",
        "github-other-body",
        "gitlab-wrong",
        "unsigned",
    ],
)
async def test_the_webhook_fetches_only_for_a_valid_signature(
    endpoint: Endpoint, headers: dict[str, str], status: int, pushes: int
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{endpoint.url}/hooks/git", data=b'{"ref":"refs/heads/main"}', headers=headers
        ) as response,
    ):
        assert response.status == status
    assert endpoint.pushes == pushes
