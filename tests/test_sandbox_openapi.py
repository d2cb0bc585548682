"""The sandbox publishes ClusterVersion's schema in OpenAPI v3 as kube-apiserver publishes a
CRD's: the served feature set's whole structural schema, found through the root index, with
the acceptRisks and conditionalUpdateRisks of TechPreviewNoUpgrade exactly where the real CRD
declares them; kubectl explain reads it.

Facts: kubernetes staging/src/k8s.io/apiextensions-apiserver pkg/controller/openapi/builder/
builder.go (schema kept whole for v3, metadata a reference to ObjectMeta, apiVersion and kind
from TypeMeta, the list answering with <Kind>List) and pkg/apiserver/schema/kubeopenapi.go;
the CRDs are openshift/api's, in ../shared/corpus/crd.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from conftest import corpus_path
from ruamel.yaml import YAML
from sandbox_support import kubectl, needs_kubectl, sandbox_thread

from agent.sandbox.apiserver import openapi
from agent.sandbox.apiserver.crd_schema import FEATURE_SETS, FeatureSet
from agent.sandbox.server import Sandbox, SandboxOptions

GROUP_VERSION = "apis/config.openshift.io/v1"
KIND = "io.openshift.config.v1.ClusterVersion"
CRD_FILE = "0000_00_cluster-version-operator_01_clusterversions-{}.crd.yaml"
REF = "#/components/schemas/"
FIELD = re.compile(r"^  (\w+)\t<", re.MULTILINE)  # a field line of kubectl explain


async def fetch(session: aiohttp.ClientSession, sandbox: Sandbox, path: str) -> Any:
    headers = {"Authorization": f"Bearer {sandbox.admin_token}"}
    async with session.get(sandbox.url + path, headers=headers, ssl=False) as reply:
        assert reply.status == 200, await reply.text()
        return await reply.json()


async def served_document(feature_set: FeatureSet) -> dict[str, Any]:
    """The config.openshift.io/v1 document as a client finds it: through the root index."""
    async with (
        Sandbox(SandboxOptions(feature_set=feature_set)) as sandbox,
        aiohttp.ClientSession() as session,
    ):
        index = await fetch(session, sandbox, "/openapi/v3")
        url = urlsplit(index["paths"][GROUP_VERSION]["serverRelativeURL"])
        document: dict[str, Any] = await fetch(session, sandbox, f"{url.path}?{url.query}")
        return document


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_descriptions(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [without_descriptions(item) for item in node]
    return node


def references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


@pytest.mark.corpus
@pytest.mark.parametrize("feature_set", FEATURE_SETS)
async def test_the_published_schema_is_the_real_crds_field_for_field(
    feature_set: FeatureSet,
) -> None:
    path = corpus_path("crd", CRD_FILE.format(feature_set))
    crd = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    (version,) = crd["spec"]["versions"]
    real = without_descriptions(version["schema"]["openAPIV3Schema"])
    kind = (await served_document(feature_set))["components"]["schemas"][KIND]
    published = without_descriptions(kind)
    for part in ("spec", "status"):
        assert published["properties"][part] == real["properties"][part]
    assert published["required"] == real["required"]
    assert published["x-kubernetes-validations"] == real["x-kubernetes-validations"]
    update = published["properties"]["spec"]["properties"]["desiredUpdate"]["properties"]
    status = published["properties"]["status"]["properties"]
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    assert ("acceptRisks" in update) is tech_preview
    assert ("conditionalUpdateRisks" in status) is tech_preview
    if tech_preview:
        assert update["acceptRisks"] == {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 256}},
                "required": ["name"],
            },
            "minItems": 1,
            "maxItems": 1000,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        }


async def test_the_kind_carries_its_gvk_and_metadata_refers_to_object_meta() -> None:
    document = await served_document("TechPreviewNoUpgrade")
    schemas = document["components"]["schemas"]
    kind = schemas[KIND]
    assert kind["x-kubernetes-group-version-kind"] == [
        {"group": "config.openshift.io", "kind": "ClusterVersion", "version": "v1"}
    ]
    assert kind["properties"]["metadata"]["$ref"] == (
        REF + "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert kind["properties"]["apiVersion"]["type"] == "string"
    # Every reference resolves inside the document, as a client following them needs.
    for ref in references(document):
        assert ref.startswith(REF)
        assert ref.removeprefix(REF) in schemas, ref
    listed = document["paths"]["/apis/config.openshift.io/v1/clusterversions"]["get"]
    answer = listed["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": REF + KIND + "List"}
    assert schemas[KIND + "List"]["properties"]["items"]["items"] == {"$ref": REF + KIND}


def test_each_feature_set_has_its_own_document_hash() -> None:
    # The hash changes with the document, so a client's cached copy goes stale with it.
    urls = {
        feature_set: openapi.root_index(feature_set)["paths"][GROUP_VERSION]["serverRelativeURL"]
        for feature_set in FEATURE_SETS
    }
    assert len(set(urls.values())) == len(FEATURE_SETS)
    assert openapi.root_index("Default") == openapi.root_index("Default")


@needs_kubectl
@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_kubectl_explain_reads_the_published_schema(
    feature_set: FeatureSet, tmp_path: Path
) -> None:
    with sandbox_thread(SandboxOptions(feature_set=feature_set)) as running:
        config = running.kubeconfig(tmp_path / "kubeconfig")
        version = "--api-version=config.openshift.io/v1"
        explained = kubectl(config, "explain", "clusterversion.spec.desiredUpdate", version)
        status = kubectl(config, "explain", "clusterversion.status", version)
    assert explained.returncode == 0, explained.stderr
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    extra = ["acceptRisks"] if tech_preview else []
    assert FIELD.findall(explained.stdout) == [*extra, "architecture", "force", "image", "version"]
    assert "FIELD: desiredUpdate <Object>" in explained.stdout
    assert status.returncode == 0, status.stderr
    assert ("conditionalUpdateRisks" in FIELD.findall(status.stdout)) is tech_preview
