"""Plain HTTPS requests to an API server with exactly what a kubeconfig written by the sandbox
holds (server, inline CA, bearer token), read afresh for every request: a test's own client,
independent of cvsync's."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import aiohttp
from ruamel.yaml import YAML

CLUSTER_VERSION = "/apis/config.openshift.io/v1/clusterversions/version"
MERGE_PATCH = "application/merge-patch+json"


def kubeconfig_parts(path: Path) -> tuple[str, bytes, str]:
    """(server, CA PEM, token) of the kubeconfig's first cluster and user."""
    document = YAML(typ="safe").load(path.read_text())
    cluster = document["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster.get("certificate-authority-data", ""))
    return cluster["server"], ca, document["users"][0]["user"].get("token", "")


async def request(
    kubeconfig: Path, method: str, path: str, body: Any = None, content_type: str = MERGE_PATCH
) -> tuple[int, Any]:
    server, ca, token = kubeconfig_parts(kubeconfig)
    context: ssl.SSLContext | bool = ssl.create_default_context(cadata=ca.decode()) if ca else True
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    data = json.dumps(body).encode() if body is not None else None
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server + path, data=data, headers=headers, ssl=context) as got,
    ):
        text = await got.text()
        return got.status, json.loads(text) if text.startswith("{") else text


async def channel(kubeconfig: Path) -> str:
    status, live = await request(kubeconfig, "GET", CLUSTER_VERSION)
    assert status == 200, live
    return str(live["spec"].get("channel"))


async def edit_channel(kubeconfig: Path, value: str) -> None:
    """What `oc patch clusterversion version --type=merge` does behind git's back."""
    body = {"spec": {"channel": value}}
    status, answer = await request(kubeconfig, "PATCH", CLUSTER_VERSION + "?fieldManager=oc", body)
    assert status == 200, answer
