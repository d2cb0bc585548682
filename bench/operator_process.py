"""The sandbox's simulated cluster-version operator as its own process, for bench/latency.py:
a client of the sandbox's HTTP API, as the real operator is of the real API server. It
watches the ClusterVersion, and writes the status the simulator computes with PUT /status
carrying the resourceVersion it read, so a write that lost the race to another client's is
refused (409) and answered again from the next event, as the real operator's status update
would be. The in-process operator reacts inside the API server's own event loop instead.

Run by the benchmark; by hand:

    .venv/bin/python bench/operator_process.py URL TOKEN CA_FILE [--scenario idle-4.15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp

from agent.sandbox.operator.scenarios import load_scenario
from agent.sandbox.operator.simulator import OperatorSimulator
from agent.sandbox.operator.update_service import UpdateService

CV_PATH = "/apis/config.openshift.io/v1/clusterversions"
MANAGER = "cluster-version-operator"


class OperatorClient:
    def __init__(self, http: aiohttp.ClientSession, url: str, simulator: OperatorSimulator):
        self.http, self.url, self.simulator = http, url, simulator
        self.timer: asyncio.TimerHandle | None = None
        self.refused = 0

    async def reconcile(self, live: dict[str, Any]) -> None:
        """Write the status the operator would have by now; look again when it next changes."""
        now = datetime.now(UTC)
        status = self.simulator.reconcile(live, now)
        if status is not None:
            body = json.dumps({**live, "status": status}).encode()
            query = {"fieldManager": MANAGER}
            headers = {"Content-Type": "application/json"}
            address = f"{self.url}{CV_PATH}/version/status"
            async with self.http.put(address, params=query, data=body, headers=headers) as sent:
                answer = await sent.read()
            if sent.status == 200:
                live = json.loads(answer)
            elif sent.status == 409:
                self.refused += 1  # someone wrote first: the watch brings the newer object
                return
            else:
                print(f"operator: status refused {sent.status}", file=sys.stderr, flush=True)
        upcoming = self.simulator.next_change(live, now)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if upcoming is not None:
            delay = max((upcoming - now).total_seconds(), 0.0)
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(delay, lambda: asyncio.ensure_future(self.look()))

    async def look(self) -> None:
        async with self.http.get(f"{self.url}{CV_PATH}/version") as got:
            await self.reconcile(json.loads(await got.read()))

    async def follow(self) -> None:
        query = {"watch": "true", "fieldSelector": "metadata.name=version"}
        async with self.http.get(
            self.url + CV_PATH, params=query, timeout=aiohttp.ClientTimeout()
        ) as stream:
            print("operator: watching", file=sys.stderr, flush=True)
            async for line in stream.content:
                event = json.loads(line)
                if event["type"] in ("ADDED", "MODIFIED"):
                    await self.reconcile(event["object"])


async def run(url: str, token: str, ca_file: str, scenario: str, time_scale: float) -> None:
    simulator = OperatorSimulator(
        UpdateService.builtin(), knobs=load_scenario(scenario).knobs, time_scale=time_scale
    )
    async with aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}"},
        connector=aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=ca_file)),
        read_bufsize=1 << 22,  # a watch event is one line, a ClusterVersion can be large
    ) as http:
        await OperatorClient(http, url, simulator).follow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("ca_file")
    parser.add_argument("--scenario", default="idle-4.15")
    parser.add_argument("--time-scale", type=float, default=60.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.url, args.token, args.ca_file, args.scenario, args.time_scale))


if __name__ == "__main__":
    main()
