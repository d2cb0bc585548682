"""The real kubectl against the sandbox: it must not be able to tell it from a real server."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox_support import KUBECTL, SandboxThread, kubectl, needs_kubectl, sandbox_thread

from agent.sandbox.apiserver.access import Rule
from agent.sandbox.apiserver.kubeconfig import write_kubeconfig
from agent.sandbox.apiserver.tls import issue_client_certificate

pytestmark = needs_kubectl

SPEC = """\
apiVersion: config.openshift.io/v1
kind: ClusterVersion
metadata:
  name: version
spec:
  clusterID: 5e65da93-4167-4f1e-9571-f99963cda23e
  channel: {channel}
"""


@pytest.fixture(scope="module")
def running() -> Iterator[SandboxThread]:
    with sandbox_thread() as sandbox:
        yield sandbox


@pytest.fixture
def config(running: SandboxThread, tmp_path: Path) -> Path:
    path = running.kubeconfig(tmp_path / "kubeconfig")
    kubectl(path, "delete", "clusterversion", "version", "--ignore-not-found")
    return path


def apply(config: Path, channel: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return kubectl(
        config, "apply", "--server-side", *extra, "-f", "-", stdin=SPEC.format(channel=channel)
    )


def live(config: Path) -> dict[str, object]:
    run = kubectl(config, "get", "clusterversion", "version", "-o", "json", "--show-managed-fields")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


def owners(obj: dict[str, object]) -> dict[str, list[str]]:
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    return {
        entry["manager"]: sorted(entry["fieldsV1"].get("f:spec", {}))
        for entry in metadata.get("managedFields", [])
    }


def test_server_side_apply_creates_the_object_and_records_its_manager(config: Path) -> None:
    run = apply(config, "stable-4.15")
    assert (run.returncode, run.stdout) == (
        0,
        "clusterversion.config.openshift.io/version serverside-applied\n",
    )
    obj = live(config)
    assert obj["spec"] == {
        "clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e",
        "channel": "stable-4.15",
    }
    assert owners(obj) == {"kubectl": ["f:channel", "f:clusterID"]}
    metadata = obj["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["generation"] == 1


def test_get_prints_the_crds_printer_columns(config: Path) -> None:
    apply(config, "stable-4.15")
    run = kubectl(config, "get", "clusterversion")
    assert run.returncode == 0
    assert run.stdout.split("\n")[0].split() == [
        "NAME",
        "VERSION",
        "AVAILABLE",
        "PROGRESSING",
        "SINCE",
        "STATUS",
    ]
    assert run.stdout.split("\n")[1].split() == ["version"]


def test_a_conflicting_apply_names_the_field_and_its_owner(config: Path) -> None:
    apply(config, "stable-4.15")
    run = apply(config, "fast-4.15", "--field-manager=oc")
    assert run.returncode == 1
    assert run.stderr.startswith(
        'error: Apply failed with 1 conflict: conflict with "kubectl": .spec.channel\n'
    )
    obj = live(config)
    assert obj["spec"]["channel"] == "stable-4.15"  # type: ignore[index]


def test_force_conflicts_takes_ownership(config: Path) -> None:
    apply(config, "stable-4.15")
    run = apply(config, "fast-4.15", "--field-manager=oc", "--force-conflicts")
    assert run.returncode == 0, run.stderr
    obj = live(config)
    assert obj["spec"]["channel"] == "fast-4.15"  # type: ignore[index]
    assert owners(obj) == {"kubectl": ["f:clusterID"], "oc": ["f:channel", "f:clusterID"]}


def test_a_merge_patch_changes_the_field_and_bumps_the_generation(config: Path) -> None:
    apply(config, "stable-4.15")
    run = kubectl(
        config, "patch", "clusterversion", "version", "--type=merge",
        "-p", '{"spec":{"upstream":"https://updates.example.com/graph"}}',
    )  # fmt: skip
    assert run.stdout == "clusterversion.config.openshift.io/version patched\n"
    obj = live(config)
    assert obj["spec"]["upstream"] == "https://updates.example.com/graph"  # type: ignore[index]
    assert obj["metadata"]["generation"] == 2  # type: ignore[index]
    assert owners(obj)["kubectl-patch"] == ["f:upstream"]


def test_a_status_patch_writes_status_only_and_keeps_the_generation(config: Path) -> None:
    apply(config, "stable-4.15")
    status = {
        "status": {
            "desired": {"version": "4.15.3", "image": "quay.io/ocp/release@sha256:" + "a" * 64},
            "observedGeneration": 1,
            "versionHash": "abc",
            "availableUpdates": None,
        },
        "spec": {"channel": "ignored-by-the-status-endpoint"},
    }
    run = kubectl(
        config, "patch", "clusterversion", "version", "--subresource=status", "--type=merge",
        "-p", json.dumps(status).replace('"availableUpdates": null', '"availableUpdates": []'),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    obj = live(config)
    assert obj["status"]["desired"]["version"] == "4.15.3"  # type: ignore[index]
    assert obj["spec"]["channel"] == "stable-4.15"  # type: ignore[index]
    assert obj["metadata"]["generation"] == 1  # type: ignore[index]


def test_a_server_dry_run_stores_nothing(config: Path) -> None:
    apply(config, "stable-4.15")
    before = live(config)["metadata"]["resourceVersion"]  # type: ignore[index]
    run = kubectl(
        config, "patch", "clusterversion", "version", "--type=merge", "--dry-run=server",
        "-p", '{"spec":{"channel":"fast-4.16"}}',
    )  # fmt: skip
    assert run.stdout == "clusterversion.config.openshift.io/version patched\n"
    dry_apply = apply(config, "fast-4.16", "--dry-run=server", "--force-conflicts")
    assert dry_apply.stdout == (
        "clusterversion.config.openshift.io/version serverside-applied (server dry run)\n"
    )
    after = live(config)
    assert after["spec"]["channel"] == "stable-4.15"  # type: ignore[index]
    assert after["metadata"]["resourceVersion"] == before  # type: ignore[index]


@pytest.mark.parametrize("validation", ["strict", "warn"])
def test_a_server_side_apply_naming_an_unknown_field_fails_whatever_the_validation(
    config: Path, validation: str
) -> None:
    # Recorded from kube-apiserver v1.36.2 (realserver steps apply-unknown-field and
    # apply-unknown-field-strict): the field manager cannot build the typed patch, a 500.
    text = SPEC.format(channel="stable-4.15").replace("  channel:", "  chanel:")
    run = kubectl(
        config, "apply", "--server-side", f"--validate={validation}", "-f", "-", stdin=text
    )
    assert run.returncode == 1
    assert run.stderr == (
        "Error from server: failed to create typed patch object (/version; "
        "config.openshift.io/v1, Kind=ClusterVersion): .spec.chanel: field not declared in "
        "schema\n"
    )
    assert kubectl(config, "get", "clusterversion", "version").returncode == 1


def test_an_unknown_field_is_refused_by_a_create_with_strict_validation(config: Path) -> None:
    text = SPEC.format(channel="stable-4.15").replace("  channel:", "  chanel:")
    run = kubectl(config, "create", "--validate=strict", "-f", "-", stdin=text)
    assert run.returncode == 1
    assert 'strict decoding error: unknown field "spec.chanel"' in run.stderr
    assert kubectl(config, "get", "clusterversion", "version").returncode == 1


def test_an_unknown_field_only_warns_a_create_with_warn_validation(config: Path) -> None:
    text = SPEC.format(channel="stable-4.15").replace("  channel:", "  chanel:")
    run = kubectl(config, "create", "--validate=warn", "-f", "-", stdin=text)
    assert run.returncode == 0
    assert 'Warning: unknown field "spec.chanel"' in run.stderr
    assert "chanel" not in json.dumps(live(config)["spec"])


def test_an_invalid_spec_is_refused_with_the_crds_message(config: Path) -> None:
    text = SPEC.format(channel="stable-4.15") + "  desiredUpdate:\n    architecture: Multi\n"
    run = kubectl(config, "apply", "--server-side", "-f", "-", stdin=text)
    assert run.returncode == 1
    assert "Version must be set if Architecture is set" in run.stderr


def test_a_wrong_token_is_unauthorized(
    running: SandboxThread, config: Path, tmp_path: Path
) -> None:
    text = config.read_text()
    token_line = next(line for line in text.splitlines() if "token:" in line)
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(text.replace(token_line, "    token: not-a-valid-token"))
    run = kubectl(bad, "get", "clusterversion", "version")
    assert run.returncode == 1
    assert "error: You must be logged in to the server (Unauthorized)" in run.stderr


def test_a_verb_outside_the_users_rules_is_forbidden(
    running: SandboxThread, config: Path, tmp_path: Path
) -> None:
    apply(config, "stable-4.15")
    viewer = running.kubeconfig(tmp_path / "viewer", user="viewer")
    running.grant(
        "viewer", [Rule.of(["get", "list", "watch"], ["config.openshift.io"], ["clusterversions"])]
    )
    assert kubectl(viewer, "get", "clusterversion", "version").returncode == 0
    run = kubectl(
        viewer,
        "patch",
        "clusterversion",
        "version",
        "--type=merge",
        "-p",
        '{"spec":{"channel":"x"}}',
    )
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "Error from server (Forbidden): "
        'clusterversions.config.openshift.io "version" is forbidden: '
        'User "viewer" cannot patch resource "clusterversions" in API group "config.openshift.io" '
        "at the cluster scope"
    )


def test_get_watch_prints_each_change(config: Path) -> None:
    apply(config, "stable-4.15")
    assert KUBECTL is not None
    command = [
        KUBECTL, "--kubeconfig", str(config), "get", "clusterversion", "version", "-w",
        "-o", 'jsonpath={.spec.channel}{"\\n"}',
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as watcher:
        try:
            assert watcher.stdout is not None
            assert watcher.stdout.readline() == "stable-4.15\n"
            time.sleep(0.3)
            patch = '{"spec":{"channel":"fast-4.15"}}'
            kubectl(config, "patch", "clusterversion", "version", "--type=merge", "-p", patch)
            assert watcher.stdout.readline() == "fast-4.15\n"
        finally:
            watcher.kill()


def test_a_client_certificate_authenticates_as_its_common_name(
    running: SandboxThread, config: Path, tmp_path: Path
) -> None:
    apply(config, "stable-4.15")
    sandbox = running.sandbox
    assert sandbox.pki is not None
    pki = sandbox.pki
    pair = running.call(lambda: issue_client_certificate(pki, tmp_path, "cert-user", ("ops",)))
    running.grant("cert-user", [Rule.of(["get"], ["config.openshift.io"], ["clusterversions"])])
    path = write_kubeconfig(
        tmp_path / "cert-kubeconfig",
        sandbox.url,
        ca_file=pki.ca.cert,
        client_cert=pair.cert,
        client_key=pair.key,
    )
    got = kubectl(path, "get", "clusterversion", "version", "-o", "jsonpath={.spec.channel}")
    assert (got.returncode, got.stdout) == (0, "stable-4.15")
    listed = kubectl(path, "get", "clusterversions")
    assert 'User "cert-user" cannot list resource "clusterversions"' in listed.stderr


def test_kubectl_creates_lists_and_deletes_a_namespace(config: Path) -> None:
    created = kubectl(config, "create", "namespace", "kubectl-made")
    assert (created.returncode, created.stdout) == (0, "namespace/kubectl-made created\n")
    again = kubectl(config, "create", "namespace", "kubectl-made")
    assert again.stderr.strip() == (
        'Error from server (AlreadyExists): namespaces "kubectl-made" already exists'
    )
    label = kubectl(
        config, "get", "namespace", "-l", "kubernetes.io/metadata.name=kubectl-made", "-o", "name"
    )
    assert label.stdout == "namespace/kubectl-made\n"
    deleted = kubectl(config, "delete", "namespace", "kubectl-made")
    assert (deleted.returncode, deleted.stdout) == (0, 'namespace "kubectl-made" deleted\n')
    gone = kubectl(config, "get", "namespace", "kubectl-made")
    assert gone.stderr.strip() == (
        'Error from server (NotFound): namespaces "kubectl-made" not found'
    )


def test_kubectl_lists_the_events_about_the_cluster_version(config: Path) -> None:
    # The command the chart's NOTES give (charts/cvsync/templates/NOTES.txt).
    event = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "version.kubectl", "namespace": "cvsync"},
            "involvedObject": {
                "apiVersion": "config.openshift.io/v1",
                "kind": "ClusterVersion",
                "name": "version",
                "namespace": "cvsync",
            },
            "reason": "Applied",
            "message": "applied channel",
            "type": "Normal",
        }
    )
    assert kubectl(config, "create", "-f", "-", stdin=event).returncode == 0
    try:
        listed = kubectl(
            config, "-n", "cvsync", "get", "events",
            "--field-selector", "involvedObject.kind=ClusterVersion", "-o", "name",
        )  # fmt: skip
        assert (listed.returncode, listed.stdout) == (0, "event/version.kubectl\n")
        none = kubectl(
            config, "-n", "cvsync", "get", "events", "--field-selector", "involvedObject.kind=Pod"
        )
        assert none.stderr.strip() == "No resources found in cvsync namespace."
    finally:
        kubectl(config, "-n", "cvsync", "delete", "event", "version.kubectl")


def test_kubectl_is_told_it_may_not_read_what_the_sandbox_does_not_serve(
    running: SandboxThread, tmp_path: Path
) -> None:
    # Authorization runs before the server looks for the resource (realserver step
    # agent-get-secrets); `get --raw` sends the path as it is, past kubectl's discovery.
    viewer = running.kubeconfig(tmp_path / "viewer", user="secret-less")
    running.grant("secret-less", [])
    run = kubectl(viewer, "get", "--raw", "/api/v1/namespaces/cvsync/secrets")
    assert run.returncode == 1
    assert run.stderr.strip() == (
        'Error from server (Forbidden): secrets is forbidden: User "secret-less" cannot list '
        'resource "secrets" in API group "" in the namespace "cvsync"'
    )
