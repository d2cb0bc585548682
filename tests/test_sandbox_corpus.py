"""Every ClusterVersion captured from a real cluster loads into the sandbox the way a cluster
builds it (the installer applies the spec, the cluster-version operator writes the status) and
reads back unchanged, apart from the one field the current schema no longer has.

The files are read from ../shared/corpus (skipped when absent) and never copied here."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import CORPUS, corpus_path
from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from agent.sandbox.server import Sandbox, SandboxOptions

pytestmark = pytest.mark.corpus

API_VERSION = "config.openshift.io/v1"
KIND = "ClusterVersion"
CV = "/apis/config.openshift.io/v1/clusterversions/version"
BOOTSTRAP = "cluster-bootstrap"
OPERATOR = "cluster-version-operator"
# status.desired.force left the schema after 4.4; the server prunes it from these two files.
PRUNED_FORCE = frozenset(
    {
        "4.4.0-nightly-idle-versionnotfound-anonymized-upstream.yaml",
        "4.4.16-idle-nochannel-anonymized-upstream.yaml",
    }
)


class _TextTimestamps(SafeConstructor):
    """Timestamps stay the text written, as sigs.k8s.io/yaml leaves them."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def load(path: Path) -> dict[str, Any]:
    """The one ClusterVersion in a corpus file, with its TypeMeta even when the file lacks it."""
    yaml = YAML(typ="safe")
    yaml.Constructor = _TextTimestamps
    loaded: dict[str, Any] = yaml.load(path.read_text(encoding="utf-8"))
    if loaded.get("kind") == "List":
        (loaded,) = loaded["items"]
    loaded.setdefault("apiVersion", API_VERSION)
    loaded.setdefault("kind", KIND)
    assert (loaded["apiVersion"], loaded["kind"]) == (API_VERSION, KIND)
    return loaded


def corpus_files() -> list[Any]:
    folder = CORPUS / "clusterversions"
    if not folder.is_dir():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(path, id=path.stem) for path in sorted(folder.glob("*.yaml"))]


class Cluster:
    """The sandbox as the installer and the cluster-version operator talk to it."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def send(
        self, method: str, path: str, body: Any, content_type: str, manager: str
    ) -> tuple[int, dict[str, Any]]:
        async with self.session.request(
            method,
            path,
            data=json.dumps(body),
            headers={"Content-Type": content_type},
            params={"fieldManager": manager},
        ) as response:
            return response.status, await response.json()

    async def get(self) -> dict[str, Any]:
        async with self.session.get(CV) as response:
            assert response.status == 200
            found: dict[str, Any] = await response.json()
            return found


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with Sandbox(SandboxOptions(tls=False)) as sandbox:
        headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
        async with aiohttp.ClientSession(sandbox.url, headers=headers) as session:
            yield Cluster(session)


def test_the_corpus_holds_the_shapes_this_file_expects() -> None:
    files = sorted(corpus_path("clusterversions").glob("*.yaml"))
    assert len(files) >= 20
    raw = {path.name: path.read_text(encoding="utf-8") for path in files}
    assert sum("\nkind: List\n" in text for text in raw.values()) == 1
    assert sum(not text.startswith(("apiVersion:", "kind:")) for text in raw.values()) == 1
    assert set(raw) >= PRUNED_FORCE


@pytest.mark.parametrize("path", corpus_files())
async def test_a_real_cluster_version_loads_and_reads_back_unchanged(
    cluster: Cluster, path: Path | None
) -> None:
    if path is None:
        corpus_path("clusterversions")
        return
    original = load(path)
    metadata = {"name": original["metadata"]["name"]}

    status, applied = await cluster.send(
        "PATCH",
        CV,
        {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": original["spec"]},
        "application/apply-patch+yaml",
        BOOTSTRAP,
    )
    assert status == 201, applied.get("message")
    assert "status" not in applied

    # A PUT, not a merge patch: the operator writes nulls (availableUpdates: null) it means.
    status, written = await cluster.send(
        "PUT",
        f"{CV}/status",
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {**metadata, "resourceVersion": applied["metadata"]["resourceVersion"]},
            "status": original["status"],
        },
        "application/json",
        OPERATOR,
    )
    assert status == 200, written.get("message")

    live = await cluster.get()
    assert live["spec"] == original["spec"]
    expected = copy.deepcopy(original["status"])
    if path.name in PRUNED_FORCE:
        assert "force" in expected["desired"]
        del expected["desired"]["force"]
    assert live["status"] == expected

    assert live["metadata"]["generation"] == 1
    owners = {
        (entry["manager"], entry["operation"], entry.get("subresource", "")): set(entry["fieldsV1"])
        for entry in live["metadata"]["managedFields"]
    }
    assert owners == {
        (BOOTSTRAP, "Apply", ""): {"f:spec"},
        (OPERATOR, "Update", "status"): {"f:status"},
    }
