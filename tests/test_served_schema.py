"""Which CRD the cluster has, told by the server: the ClusterVersion schema read from the
OpenAPI v3 document kube-apiserver publishes, and KubeCluster reading it once per connection
and again when the server may have changed it.

Facts: kube-apiserver publishes each CRD version's structural schema in
/openapi/v3/apis/<group>/<version> under its reversed-group name, marked with
x-kubernetes-group-version-kind (kubernetes staging/src/k8s.io/apiextensions-apiserver
pkg/controller/openapi/builder/builder.go, k8s.io/apiserver pkg/endpoints/openapi); server-side
apply builds its types from the same schema, so an undeclared field is a 500 "field not
declared in schema" (recorded from kube-apiserver v1.36.2, realserver step apply-unknown-field).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.adapters.kube import KubeCluster
from agent.adapters.served_schema import SCHEMA_NAME, read_served_schema, schema_from_answer
from agent.errors import KubeError
from agent.sandbox.apiserver import openapi
from agent.sandbox.apiserver.crd_schema import FEATURE_SETS, FeatureSet
from agent.sandbox.server import Sandbox, SandboxOptions

CLUSTER_ID = "5e65da93-4167-4f1e-9571-f99963cda23e"
GROUP_VERSION = "apis/config.openshift.io/v1"
DEFAULT_UPDATE_FIELDS = {"architecture", "force", "image", "version"}
PRESERVED = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def published(feature_set: FeatureSet) -> dict[str, Any]:
    document = openapi.document_for(GROUP_VERSION, feature_set)
    assert document is not None
    return document


def body(**update: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterID": CLUSTER_ID, "channel": "stable-4.16"}
    if update:
        spec["desiredUpdate"] = update
    return {
        "apiVersion": "config.openshift.io/v1",
        "kind": "ClusterVersion",
        "metadata": {"name": "version"},
        "spec": spec,
    }


# --- reading a document -----------------------------------------------------------------------


@pytest.mark.parametrize("feature_set", FEATURE_SETS)
def test_the_feature_set_shows_in_desired_update_and_status(feature_set: FeatureSet) -> None:
    found = read_served_schema(published(feature_set))
    tech_preview = feature_set == "TechPreviewNoUpgrade"
    assert found.problem == ""
    extra = {"acceptRisks"} if tech_preview else set()
    assert found.desired_update == DEFAULT_UPDATE_FIELDS | extra
    assert found.accept_risks is tech_preview
    assert found.conditional_update_risks is tech_preview
    assert {"history", "conditionalUpdates", "desired"} <= found.status


def test_the_kind_is_found_by_its_group_version_kind_whatever_its_name() -> None:
    document = published("TechPreviewNoUpgrade")
    schemas = document["components"]["schemas"]
    schemas["com.example.Renamed"] = schemas.pop(SCHEMA_NAME)
    assert read_served_schema(document).accept_risks


def test_without_the_extension_the_kind_is_found_by_its_reversed_group_name() -> None:
    document = published("TechPreviewNoUpgrade")
    del document["components"]["schemas"][SCHEMA_NAME]["x-kubernetes-group-version-kind"]
    assert read_served_schema(document).accept_risks


def test_references_and_single_schema_all_ofs_are_followed() -> None:
    # Built-in kinds publish a field that has a description or default as allOf: [$ref]; a
    # JSON pointer escapes "/" as ~1 (RFC 6901).
    document = published("TechPreviewNoUpgrade")
    schemas = document["components"]["schemas"]
    spec = schemas[SCHEMA_NAME]["properties"]["spec"]
    schemas["x.y/Update"] = spec["properties"].pop("desiredUpdate")
    schemas["x.y/Spec"] = spec
    spec["properties"]["desiredUpdate"] = {"$ref": "#/components/schemas/x.y~1Update"}
    schemas[SCHEMA_NAME]["properties"]["spec"] = {
        "allOf": [{"$ref": "#/components/schemas/x.y~1Spec"}],
        "description": "the spec",
    }
    assert read_served_schema(document).accept_risks


def test_a_reference_loop_reads_as_nothing_declared_instead_of_hanging() -> None:
    document = published("TechPreviewNoUpgrade")
    schemas = document["components"]["schemas"]
    schemas["a"] = {"$ref": "#/components/schemas/b"}
    schemas["b"] = {"$ref": "#/components/schemas/a"}
    schemas[SCHEMA_NAME]["properties"]["spec"]["properties"]["desiredUpdate"] = {
        "$ref": "#/components/schemas/a"
    }
    found = read_served_schema(document)
    assert found.desired_update == frozenset()
    assert not found.accept_risks


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({}, "the document has no components.schemas"),
        ({"components": {"schemas": {"x": {"type": "object"}}}}, f"no schema for {SCHEMA_NAME}"),
        (
            # How a server without a structural schema publishes a kind: nothing to read.
            {"components": {"schemas": {SCHEMA_NAME: PRESERVED}}},
            "the ClusterVersion schema declares no spec fields",
        ),
        ([1, 2], "the document has no components.schemas"),
    ],
)
def test_a_document_that_says_nothing_is_a_problem_and_declares_nothing(
    document: Any, problem: str
) -> None:
    found = read_served_schema(document)
    assert problem in found.problem
    assert not found.accept_risks
    assert "could not be read" in found.describe()


def status_body(code: int, message: str) -> bytes:
    """A Kubernetes Status answer, as the API server words a refusal."""
    return json.dumps({"kind": "Status", "code": code, "message": message}).encode()


@pytest.mark.parametrize(
    ("status", "body", "detail", "lasting"),
    [
        # RBAC without system:discovery, and a server without the document: asking again
        # on every cycle would change nothing until the connection does.
        (403, status_body(403, 'forbidden: User "x" cannot get path "/openapi/v3/apis"'),
         'answered 403: forbidden: User "x" cannot get path', True),
        (404, b"404 page not found\n", "answered 404: 404 page not found", True),
        # Credentials rotate and servers recover: these are asked again.
        (401, status_body(401, "Unauthorized"), "answered 401: Unauthorized", False),
        (503, status_body(503, "the server is shutting down"), "answered 503: the server", False),
        (200, b"<html>", "did not answer JSON", True),
    ],
)  # fmt: skip
def test_an_answer_that_is_no_document_is_a_problem_kept_only_when_lasting(
    status: int, body: bytes, detail: str, lasting: bool
) -> None:
    found, kept = schema_from_answer(status, body)
    assert detail in found.problem
    assert not found.accept_risks
    assert kept is lasting


def test_a_document_answer_is_read_and_kept() -> None:
    found, kept = schema_from_answer(200, json.dumps(published("TechPreviewNoUpgrade")).encode())
    assert (found.accept_risks, kept) == (True, True)


# --- KubeCluster against the sandbox ----------------------------------------------------------


@pytest.fixture
async def tech_preview(tmp_path: Path) -> AsyncIterator[tuple[Sandbox, KubeCluster]]:
    async with Sandbox(SandboxOptions(feature_set="TechPreviewNoUpgrade")) as sandbox:
        cluster = await KubeCluster.connect(
            kubeconfig=sandbox.kubeconfig(tmp_path / "kubeconfig"),
            watch_timeout_seconds=2,
            backoff_cap=0.05,
        )
        try:
            yield sandbox, cluster
        finally:
            await cluster.close()


async def test_any_authenticated_user_reads_the_schema_without_rbac_rules(
    tmp_path: Path,
) -> None:
    # system:discovery (get on /openapi and /openapi/*) is bound to system:authenticated:
    # kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go.
    async with Sandbox(SandboxOptions(feature_set="TechPreviewNoUpgrade")) as sandbox:
        config = sandbox.kubeconfig(tmp_path / "nobody", user="nobody")
        cluster = await KubeCluster.connect(kubeconfig=config)
        try:
            with pytest.raises(KubeError):
                await cluster.get()  # no rule grants it anything else
            found = await cluster.served_schema()
        finally:
            await cluster.close()
    assert found.problem == ""
    assert found.accept_risks


async def test_the_schema_is_kept_and_read_again_after_an_apply_answered_500(
    tech_preview: tuple[Sandbox, KubeCluster],
) -> None:
    sandbox, cluster = tech_preview
    await cluster.apply(body(), force=False, dry_run=False)
    assert (await cluster.served_schema()).accept_risks
    # The server now serves the Default CRD (a replica of an older configuration behind the
    # same address): the kept answer still says acceptRisks, so the next apply sends it.
    sandbox.api.feature_set = "Default"
    assert (await cluster.served_schema()).accept_risks
    with pytest.raises(KubeError) as refused:
        await cluster.apply(
            body(version="4.16.3", acceptRisks=[{"name": "AzureNodeBootDelay"}]),
            force=False,
            dry_run=False,
        )
    assert refused.value.status == 500
    assert ".spec.desiredUpdate.acceptRisks: field not declared in schema" in str(refused.value)
    # The 500 makes the next question go to the server.
    assert not (await cluster.served_schema()).accept_risks


async def test_a_watch_that_reconnects_reads_the_schema_again(tmp_path: Path) -> None:
    async with Sandbox(SandboxOptions()) as sandbox:
        cluster = await KubeCluster.connect(
            kubeconfig=sandbox.kubeconfig(tmp_path / "kubeconfig"),
            watch_timeout_seconds=2,
            backoff_cap=0.05,
        )
        changes = cluster.watch()
        try:
            await cluster.apply(body(), force=False, dry_run=False)
            assert await anext(changes) is not None
            assert not (await cluster.served_schema()).accept_risks
            # Enabling TechPreviewNoUpgrade restarts the API servers with the new CRD.
            sandbox.api.feature_set = "TechPreviewNoUpgrade"
            restarts = cluster.watch_restarts
            await sandbox.restart()
            assert not (await cluster.served_schema()).accept_risks  # kept until a reconnect
            pending = asyncio.ensure_future(anext(changes))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while cluster.watch_restarts == restarts:
                assert loop.time() < deadline, "the watch never reconnected"
                await asyncio.sleep(0.02)
            pending.cancel()
            assert (await cluster.served_schema()).accept_risks
        finally:
            await changes.aclose()
            await cluster.close()


async def test_an_unreadable_schema_declares_nothing_and_is_asked_again(
    tech_preview: tuple[Sandbox, KubeCluster], tmp_path: Path
) -> None:
    sandbox, _ = tech_preview
    config = sandbox.kubeconfig(tmp_path / "stale")
    good = config.read_text()
    token = sandbox.admin_token
    config.write_text(good.replace(token, "not-a-token"))
    cluster = await KubeCluster.connect(kubeconfig=config)
    try:
        found = await cluster.served_schema()
        assert "401" in found.problem
        assert not found.accept_risks
        config.write_text(good)  # the credentials rotate
        assert (await cluster.served_schema()).accept_risks
    finally:
        await cluster.close()
