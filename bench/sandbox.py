"""Benchmark the sandbox API server against a bare aiohttp handler, in one run.

Measures, over plain HTTP on 127.0.0.1 with one aiohttp client:
  - GET of the ClusterVersion, and server-side apply of a one-field change, as latency
    percentiles (p50/p95) and requests per second, sequentially;
  - watch-event latency: from a merge patch's request start to the MODIFIED event's
    arrival on an open watch;
  - the baseline: a bare aiohttp handler answering a JSON body of the same size.
Ratios against the baseline are the figures to compare across machines.

Run: .venv/bin/python bench/sandbox.py [--requests N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from agent.sandbox.server import Sandbox, SandboxOptions

SPEC = {
    "apiVersion": "config.openshift.io/v1",
    "kind": "ClusterVersion",
    "metadata": {"name": "version"},
    "spec": {"clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e", "channel": "stable-4.16"},
}
CV_PATH = "/apis/config.openshift.io/v1/clusterversions"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p95_ms": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "rps": len(ordered) / sum(ordered),
    }


async def timed(count: int, call: Callable[[int], Awaitable[None]]) -> list[float]:
    samples = []
    for index in range(count):
        started = time.perf_counter()
        await call(index)
        samples.append(time.perf_counter() - started)
    return samples


async def baseline(count: int, body: bytes) -> list[float]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:

        async def get(_: int) -> None:
            async with session.get(f"http://127.0.0.1:{port}/") as response:
                await response.read()

        await timed(50, get)
        samples = await timed(count, get)
    await runner.cleanup()
    return samples


async def measure(count: int) -> dict[str, Any]:
    options = SandboxOptions(tls=False)
    async with (
        Sandbox(options) as sandbox,
        aiohttp.ClientSession(
            base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.admin_token}"}
        ) as session,
    ):
        apply_headers = {"Content-Type": "application/apply-patch+yaml"}
        async with session.patch(
            f"{CV_PATH}/version?fieldManager=bench", data=json.dumps(SPEC), headers=apply_headers
        ) as response:
            body = await response.read()
            assert response.status in (200, 201), body

        async def get(_: int) -> None:
            async with session.get(f"{CV_PATH}/version") as response:
                await response.read()

        async def apply(index: int) -> None:
            changed = json.loads(json.dumps(SPEC))
            changed["spec"]["channel"] = f"stable-4.{16 + index % 2}"
            async with session.patch(
                f"{CV_PATH}/version?fieldManager=bench",
                data=json.dumps(changed),
                headers=apply_headers,
            ) as response:
                await response.read()

        await timed(50, get)
        gets = await timed(count, get)
        applies = await timed(count, apply)
        watch = await watch_latency(session, max(count // 10, 20))
    return {"get": gets, "apply": applies, "watch": watch, "body_bytes": len(body)}


async def watch_latency(session: aiohttp.ClientSession, count: int) -> list[float]:
    samples = []
    async with session.get(f"{CV_PATH}?watch=1&fieldSelector=metadata.name%3Dversion") as stream:
        await stream.content.readline()  # the initial ADDED event
        for index in range(count):
            patch = {"spec": {"upstream": f"https://u{index}.example.com/graph"}}
            started = time.perf_counter()
            async with session.patch(
                f"{CV_PATH}/version",
                data=json.dumps(patch),
                headers={"Content-Type": "application/merge-patch+json"},
            ) as response:
                await response.read()
            line = await stream.content.readline()
            samples.append(time.perf_counter() - started)
            assert json.loads(line)["type"] == "MODIFIED"
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = asyncio.run(measure(args.requests))
    base = asyncio.run(baseline(args.requests, b"x" * int(results["body_bytes"])))
    rows = {
        "bare aiohttp GET (baseline)": percentiles(base),
        "sandbox GET clusterversion": percentiles(results["get"]),
        "sandbox server-side apply": percentiles(results["apply"]),
        "sandbox patch -> watch event": percentiles(results["watch"]),
    }
    base_p50 = rows["bare aiohttp GET (baseline)"]["p50_ms"]
    if args.json:
        print(json.dumps({"rows": rows, "baseline_p50_ms": base_p50}, indent=2))
        return
    print(f"{args.requests} sequential requests each, plain HTTP on 127.0.0.1, one client\n")
    print("| measurement | p50 ms | p95 ms | requests/s | p50 / baseline p50 |")
    print("|---|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(
            f"| {name} | {row['p50_ms']:.2f} | {row['p95_ms']:.2f} | {row['rps']:,.0f} | "
            f"{row['p50_ms'] / base_p50:.1f}x |"
        )
    print(f"\nPython {platform.python_version()}, aiohttp {aiohttp.__version__}")


if __name__ == "__main__":
    main()
