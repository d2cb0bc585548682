"""The Helm chart, rendered by Helm's own engine: every mode validates against Kubernetes'
schemas, RBAC is exactly what cvsync needs, and every setting of `cvsync run` is a value."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
from conftest import REPO_ROOT
from helm_support import (
    CHART,
    NAMESPACE,
    RELEASE,
    Manifest,
    container,
    lint,
    merged,
    notes,
    one,
    render,
    render_error,
)
from ruamel.yaml import YAML

from agent.cli import run as cli
from agent.settings import DEFAULT_SPEC_PATH

REQUIRED: dict[str, Any] = {
    "cluster": "prod-east",
    "source": {"repo": "https://git.example.com/fleet.git"},
}
TOKEN = {"git": {"auth": {"type": "token", "existingSecret": "fleet-git"}}}
SSH = {"git": {"auth": {"type": "ssh", "existingSecret": "fleet-git-ssh"}}}
WEBHOOK = {"webhook": {"enabled": True, "existingSecret": "fleet-webhook"}}

# Every documented way to run the chart.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "clone-token": TOKEN,
    "clone-token-from-env": merged(TOKEN, {"git": {"auth": {"tokenEnvName": "FLEET_TOKEN"}}}),
    "clone-basic": {
        "git": {"auth": {"type": "basic", "existingSecret": "fleet-git", "username": "bot"}}
    },
    "clone-ssh": merged(SSH, {"source": {"repo": "ssh://git@git.example.com/fleet.git"}}),
    "git-sync-ssh": merged(
        SSH, {"source": {"mode": "gitSync", "repo": "git@git.example.com:fleet.git"}}
    ),
    "git-sync-token": merged(TOKEN, {"source": {"mode": "gitSync"}}),
    "write-back": merged(
        TOKEN, WEBHOOK, {"writeBack": {"enabled": True, "statusBranch": "cvsync-status"}}
    ),
    "git-sync-write-back": merged(
        SSH,
        {"source": {"mode": "gitSync", "repo": "ssh://git@git.example.com/fleet.git"}},
        {"writeBack": {"enabled": True}},
    ),
    "observability-and-policies": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "podDisruptionBudget": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "ingressFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "openshift-monitoring"}
                    }
                }
            ],
        },
    },
    "two-replicas": {"replicaCount": 2, "podDisruptionBudget": {"enabled": True}},
}


def values(scenario: str) -> dict[str, Any]:
    return merged(REQUIRED, SCENARIOS[scenario])


# --- what `cvsync run` reads ------------------------------------------------------------

# Options of `cvsync run` with no chart value, on purpose.
NOT_IN_CHART = {
    "KUBECONFIG": "in a pod cvsync uses its ServiceAccount: CVSYNC_IN_CLUSTER=true instead",
    "CVSYNC_CONTEXT": "a kubeconfig context; there is no kubeconfig in a pod",
}
# Variables the chart sets that are not cvsync settings.
NOT_SETTINGS = {"HOME": "git and ssh keep per-user files under HOME; the root is read-only"}


def run_envvars() -> dict[str, click.Parameter]:
    """Each environment variable `cvsync run` reads, and its option."""
    found: dict[str, click.Parameter] = {}
    for param in cli.run.params:
        names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or [])
        for name in names:
            found[name] = param
    return found


class FieldRef(str):
    """An environment variable filled by the downward API from this pod field."""


AUTH_TOKEN = {"git": {"auth": {"type": "token", "existingSecret": "s", "tokenKey": "pat"}}}
AUTH_BASIC = {
    "git": {"auth": {"type": "basic", "existingSecret": "s", "username": "u", "passwordKey": "pw"}}
}
AUTH_SSH = {
    "git": {
        "auth": {
            "type": "ssh",
            "existingSecret": "s",
            "mountPath": "/var/run/git",
            "sshKeyKey": "id",
            "knownHostsKey": "hosts",
        }
    }
}

# Each setting: the values that set it, and the environment the cvsync container gets.
EVERY_SETTING: dict[str, tuple[dict[str, Any], str]] = {
    "CVSYNC_CLUSTER": ({"cluster": "lab-7"}, "lab-7"),
    "CVSYNC_REPO": ({"source": {"repo": "https://h.example/a.git"}}, "https://h.example/a.git"),
    "CVSYNC_REF": ({"source": {"ref": "release-4.16"}}, "release-4.16"),
    "CVSYNC_LOCAL_PATH": (
        {"source": {"mode": "gitSync", "gitSync": {"root": "/src", "link": "fleet"}}},
        "/src/fleet",
    ),
    "CVSYNC_SPEC_PATH": ({"source": {"specPath": "fleet/{cluster}.yaml"}}, "fleet/{cluster}.yaml"),
    "CVSYNC_POLICY_PATH": (
        {"source": {"policyPath": "gates/{cluster}.yaml"}},
        "gates/{cluster}.yaml",
    ),
    "CVSYNC_WORKDIR": ({"source": {"workdir": "/tmp/work"}}, "/tmp/work"),
    "CVSYNC_INTERVAL": ({"source": {"interval": 15}}, "15"),
    "CVSYNC_GIT_TOKEN_FILE": (AUTH_TOKEN, "/etc/cvsync/git/pat"),
    "CVSYNC_GIT_TOKEN_ENV": (
        merged(AUTH_TOKEN, {"git": {"auth": {"tokenEnvName": "FLEET_TOKEN"}}}),
        "FLEET_TOKEN",
    ),
    "CVSYNC_GIT_USERNAME": (AUTH_BASIC, "u"),
    "CVSYNC_GIT_PASSWORD_FILE": (AUTH_BASIC, "/etc/cvsync/git/pw"),
    "CVSYNC_GIT_SSH_KEY_FILE": (AUTH_SSH, "/var/run/git/id"),
    "CVSYNC_GIT_KNOWN_HOSTS_FILE": (AUTH_SSH, "/var/run/git/hosts"),
    "CVSYNC_IN_CLUSTER": ({}, "true"),
    "CVSYNC_MODE": ({"mode": "observe"}, "observe"),
    "CVSYNC_FORCE_CONFLICTS": ({"forceConflicts": True}, "true"),
    "CVSYNC_RESYNC": ({"resyncInterval": 300}, "300"),
    "CVSYNC_HTTP_ADDRESS": ({"http": {"port": 9090}}, "0.0.0.0:9090"),
    "CVSYNC_WEBHOOK_SECRET_FILE": (
        merged(WEBHOOK, {"webhook": {"secretKey": "hmac"}}),
        "/etc/cvsync/webhook/hmac",
    ),
    "CVSYNC_LOG_FORMAT": ({"logFormat": "text"}, "text"),
    "CVSYNC_NAMESPACE": ({}, FieldRef("metadata.namespace")),
    "POD_NAMESPACE": ({}, FieldRef("metadata.namespace")),
    "CVSYNC_WRITE_BACK": ({"writeBack": {"enabled": True}}, "true"),
    "CVSYNC_STATUS_REPO": (
        {"writeBack": {"enabled": True, "statusRepo": "https://h.example/s.git"}},
        "https://h.example/s.git",
    ),
    "CVSYNC_STATUS_BRANCH": ({"writeBack": {"enabled": True, "statusBranch": "st"}}, "st"),
    "CVSYNC_STATUS_MIN_INTERVAL": ({"writeBack": {"enabled": True, "minInterval": 5}}, "5"),
    "CVSYNC_STATUS_PUSH_ATTEMPTS": ({"writeBack": {"enabled": True, "pushAttempts": 8}}, "8"),
    "CVSYNC_STATUS_RETRY_BASE": ({"writeBack": {"enabled": True, "retryBase": 2.5}}, "2.5"),
    "CVSYNC_STATUS_RETRY_MAX": ({"writeBack": {"enabled": True, "retryMax": 900}}, "900"),
    "CVSYNC_STATUS_AUTHOR_NAME": ({"writeBack": {"enabled": True, "authorName": "Bot"}}, "Bot"),
    "CVSYNC_STATUS_AUTHOR_EMAIL": (
        {"writeBack": {"enabled": True, "authorEmail": "bot@example.com"}},
        "bot@example.com",
    ),
    "CVSYNC_LEADER_ELECT": ({"leaderElection": {"enabled": False}}, "false"),
    "CVSYNC_LEASE_NAME": ({"leaderElection": {"leaseName": "east"}}, "east"),
    "CVSYNC_LEASE_DURATION": ({"leaderElection": {"leaseDuration": 30}}, "30"),
    "CVSYNC_RENEW_DEADLINE": ({"leaderElection": {"renewDeadline": 20}}, "20"),
    "CVSYNC_RETRY_PERIOD": ({"leaderElection": {"retryPeriod": 4}}, "4"),
    "CVSYNC_IDENTITY": ({}, FieldRef("metadata.name")),
    "POD_NAME": ({}, FieldRef("metadata.name")),
}


def env_of(c: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in c.get("env", [])}


def cvsync_env(objects: list[Manifest]) -> dict[str, dict[str, Any]]:
    return env_of(container(objects, "cvsync"))


def test_every_setting_of_cvsync_run_has_a_chart_value() -> None:
    settings = set(run_envvars()) - set(NOT_IN_CHART)
    missing = sorted(settings - set(EVERY_SETTING))
    assert not missing, f"`cvsync run` settings with no chart value: {missing}"


@pytest.mark.parametrize("name", sorted(EVERY_SETTING))
def test_each_value_sets_its_environment_variable(name: str) -> None:
    layer, expected = EVERY_SETTING[name]
    env = cvsync_env(render(merged(REQUIRED, layer)))
    assert name in env, f"{name} not set by {layer}"
    if isinstance(expected, FieldRef):
        assert env[name]["valueFrom"] == {"fieldRef": {"fieldPath": expected}}
    else:
        assert env[name]["value"] == expected


def _chart_env_names() -> set[str]:
    names: set[str] = set()
    for scenario in SCENARIOS:
        names |= set(cvsync_env(render(values(scenario))))
    for layer, _ in EVERY_SETTING.values():
        names |= set(cvsync_env(render(merged(REQUIRED, layer))))
    return names


def test_the_chart_sets_only_variables_cvsync_reads() -> None:
    reads = set(run_envvars())
    named_by_token_env = {"FLEET_TOKEN"}  # the variable CVSYNC_GIT_TOKEN_ENV names
    unknown = _chart_env_names() - reads - set(NOT_SETTINGS) - named_by_token_env
    assert not unknown, f"the chart sets variables cvsync does not read: {sorted(unknown)}"
    assert set(EVERY_SETTING) <= reads


def test_the_exclusions_are_options_of_cvsync_run() -> None:
    # The allow-list must not hide a setting that no longer exists.
    assert set(NOT_IN_CHART) <= set(run_envvars())
    assert not set(NOT_IN_CHART) & _chart_env_names()


# --- the environment, as `cvsync run` parses it ----------------------------------------

POD_NAME = "cvsync-7d9f8b6c4-x2x9q"


def pod_environment(objects: list[Manifest]) -> dict[str, str]:
    """The cvsync container's environment as the kubelet would fill it."""
    fields = {"metadata.namespace": NAMESPACE, "metadata.name": POD_NAME}
    env: dict[str, str] = {}
    for name, entry in cvsync_env(objects).items():
        if "value" in entry:
            env[name] = entry["value"]
        elif "fieldRef" in entry["valueFrom"]:
            env[name] = fields[entry["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[name] = "a-token-from-the-secret"
    return env


def parse_run(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The options `cvsync run` gets from this environment, parsed by its own CLI."""
    for name in run_envvars():
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with cli.run.make_context("run", []) as ctx:
        return dict(ctx.params)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_cvsync_run_parses_the_environment_of_every_mode(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(values(scenario))
    params = parse_run(pod_environment(objects), monkeypatch)
    settings = cli._settings(params)
    assert settings.in_cluster is True
    assert settings.kubeconfig is None
    assert settings.cluster == "prod-east"
    assert settings.namespace == NAMESPACE
    assert (settings.http_host, settings.http_port) == ("0.0.0.0", 8080)
    git_sync = values(scenario)["source"].get("mode") == "gitSync"
    assert (settings.git.local_path is not None) is git_sync
    assert (settings.git.repo is not None) is not git_sync
    assert settings.write_back is bool(values(scenario).get("writeBack", {}).get("enabled"))
    if settings.write_back:
        assert settings.status_repo == values(scenario)["source"]["repo"]
    assert params["identity"] == POD_NAME
    assert params["leader_elect"] is True


# Where the chart's default differs from cvsync's own, because cvsync runs in a pod.
DIFFERENT_IN_A_POD = {
    "CVSYNC_IN_CLUSTER": "the ServiceAccount, not a kubeconfig",
    "CVSYNC_HTTP_ADDRESS": "probes and scrapes come from outside the pod: 0.0.0.0",
    "CVSYNC_NAMESPACE": "the release namespace, from the downward API",
    "CVSYNC_LEADER_ELECT": "on, so a second replica is safe",
    "CVSYNC_IDENTITY": "the pod's name, from the downward API",
}


def test_the_chart_defaults_are_cvsync_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    chart = parse_run(pod_environment(render(REQUIRED)), monkeypatch)
    bare = parse_run(
        {"CVSYNC_CLUSTER": "prod-east", "CVSYNC_REPO": REQUIRED["source"]["repo"]}, monkeypatch
    )
    skipped = {p.name for e, p in run_envvars().items() if e in DIFFERENT_IN_A_POD}
    differ = {
        name: (chart[name], bare[name])
        for name in chart
        if name not in skipped and chart[name] != bare[name]
    }
    assert not differ, f"chart default (first) differs from cvsync's (second): {differ}"


# --- RBAC ------------------------------------------------------------------------------

CLUSTER_RULES = [
    {
        "apiGroups": ["config.openshift.io"],
        "resources": ["clusterversions"],
        "resourceNames": ["version"],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": ["config.openshift.io"],
        "resources": ["clusterversions/status"],
        "resourceNames": ["version"],
        "verbs": ["get"],
    },
]
NAMESPACE_RULES = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "update"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_rbac_is_exactly_what_cvsync_needs(scenario: str) -> None:
    objects = render(values(scenario))
    rbac = [o for o in objects if o["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    assert sorted(o["kind"] for o in rbac) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ]
    assert one(objects, "ClusterRole")["rules"] == CLUSTER_RULES
    role = one(objects, "Role")
    assert role["rules"] == NAMESPACE_RULES
    assert role["metadata"]["namespace"] == NAMESPACE
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = one(objects, kind)
        assert binding["subjects"] == subject
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": one(objects, role_kind)["metadata"]["name"],
        }


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    objects = render(merged(REQUIRED, {"rbac": {"create": False}}))
    assert not [o for o in objects if "rbac" in o["apiVersion"]]


# --- every manifest is valid Kubernetes --------------------------------------------------

KUBERNETES_VERSIONS = ["1.25", "1.37"]  # the chart's kubeVersion floor, and the newest
CUSTOM_KINDS = {"ServiceMonitor"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_manifest_is_valid_kubernetes(scenario: str, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    objects = render(values(scenario))
    assert objects
    for manifest in objects:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(manifest, version, strict=True)


def test_a_service_monitor_scrapes_the_metrics_port() -> None:
    objects = render(values("observability-and-policies"))
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    service = one(objects, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert set(endpoint) == {"port", "path", "interval", "scrapeTimeout"}


def test_optional_objects_are_off_by_default() -> None:
    kinds = sorted(o["kind"] for o in render(REQUIRED))
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]


def test_standard_labels_on_every_object() -> None:
    app_version = chart_yaml()["appVersion"]
    for scenario in SCENARIOS:
        for manifest in render(values(scenario)):
            labels = manifest["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "cvsync"
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["app.kubernetes.io/version"] == app_version
            assert labels["app.kubernetes.io/component"] == "agent"
            assert labels["app.kubernetes.io/part-of"] == "cvsync"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["helm.sh/chart"] == f"cvsync-{chart_yaml()['version']}"


def test_the_service_and_selectors_reach_the_pods() -> None:
    objects = render(values("observability-and-policies"))
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert set(selector) == {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
    assert one(objects, "Service")["spec"]["selector"] == selector
    assert one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    assert one(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"] == selector
    [port] = one(objects, "Service")["spec"]["ports"]
    assert port["targetPort"] == "http"


# --- the pod ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_pod_and_containers_are_locked_down(scenario: str) -> None:
    objects = render(values(scenario))
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in pod["containers"]:
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, c["name"]
        assert context["allowPrivilegeEscalation"] is False, c["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, c["name"]
        assert context.get("privileged") is not True
        assert context.get("runAsUser", 65532) != 0
        tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, c["name"]
        volume = next(v for v in pod["volumes"] if v["name"] == tmp[0]["name"])
        assert "emptyDir" in volume
        assert c["resources"]["requests"]
        assert c["resources"]["limits"]["memory"]
    env = cvsync_env(objects)
    assert env["HOME"]["value"] == "/tmp"
    assert env["CVSYNC_WORKDIR"]["value"].startswith("/tmp/")


def test_the_cvsync_container_runs_the_agent_from_the_app_version_image() -> None:
    objects = render(REQUIRED)
    c = container(objects, "cvsync")
    assert c["args"] == ["run"]
    assert c["image"] == f"ghcr.io/cvsync/cvsync:{chart_yaml()['appVersion']}"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert one(objects, "Deployment")["spec"]["replicas"] == 1
    tagged = render(merged(REQUIRED, {"image": {"tag": "0.2.0-rc.1"}}))
    assert container(tagged, "cvsync")["image"] == "ghcr.io/cvsync/cvsync:0.2.0-rc.1"


@pytest.mark.parametrize("port", [8080, 9443])
def test_probes_check_healthz_and_readyz_on_the_http_port(port: int) -> None:
    objects = render(merged(REQUIRED, {"http": {"port": port}}))
    c = container(objects, "cvsync")
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert env_of(c)["CVSYNC_HTTP_ADDRESS"]["value"] == f"0.0.0.0:{port}"


def test_two_replicas_are_safe_with_leader_election() -> None:
    objects = render(values("two-replicas"))
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    env = cvsync_env(objects)
    assert env["CVSYNC_LEADER_ELECT"]["value"] == "true"
    assert env["CVSYNC_IDENTITY"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # A standby is ready while it waits for the Lease: the new pod may start first.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert one(objects, "PodDisruptionBudget")["spec"] == {
        "selector": deployment["spec"]["selector"],
        "maxUnavailable": 1,
    }


def test_without_leader_election_the_old_pod_stops_before_the_new_one_starts() -> None:
    objects = render(merged(REQUIRED, {"leaderElection": {"enabled": False}}))
    strategy = one(objects, "Deployment")["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1},
    }
    assert cvsync_env(objects)["CVSYNC_LEADER_ELECT"]["value"] == "false"
    custom = {"type": "Recreate"}
    assert (
        one(render(merged(REQUIRED, {"strategy": custom})), "Deployment")["spec"]["strategy"]
        == custom
    )


def test_network_policy_allows_dns_api_server_git_and_the_http_port() -> None:
    policy = one(render(values("observability-and-policies")), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert ingress["from"][0]["namespaceSelector"]
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(53, "UDP"), (53, "TCP"), (6443, "TCP"), (443, "TCP"), (22, "TCP")}


# --- git and secrets ---------------------------------------------------------------------

SECRET_LIKE = re.compile(r"TOKEN|PASSWORD|SECRET|KEY", re.IGNORECASE)


def _secret_mounts(pod: Mapping[str, Any], c: Mapping[str, Any]) -> dict[str, str]:
    """Mount path -> Secret name, for the container's read-only Secret mounts."""
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    return {
        m["mountPath"]: secrets[m["name"]]
        for m in c["volumeMounts"]
        if m["name"] in secrets and m.get("readOnly") is True
    }


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_secrets_reach_the_pod_only_as_mounted_files(scenario: str) -> None:
    objects = render(values(scenario))
    assert "Secret" not in {o["kind"] for o in objects}
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    auth = merged(REQUIRED, SCENARIOS[scenario]).get("git", {}).get("auth", {})
    for c in pod["containers"]:
        mounts = _secret_mounts(pod, c)
        for name, entry in env_of(c).items():
            if name.endswith("_FILE") and SECRET_LIKE.search(name):
                path = Path(entry["value"])
                assert str(path.parent) in mounts, f"{name}={path} is not in a Secret mount"
            elif name == auth.get("tokenEnvName"):
                ref = entry["valueFrom"]["secretKeyRef"]
                assert ref == {"name": auth["existingSecret"], "key": "token"}
            elif SECRET_LIKE.search(name) and not name.endswith("_ENV"):
                pytest.fail(f"{c['name']}: {name} looks like a secret held in the environment")
        for arg in c.get("args", []):
            flag, _, value = arg.partition("=")
            assert flag not in {"--password", "--ssh-key"}, arg
            if flag.endswith("-file"):
                assert str(Path(value).parent) in mounts, arg
        for secret in mounts.values():
            assert secret in {auth.get("existingSecret"), "fleet-webhook"}
    for mode in (v["secret"]["defaultMode"] for v in pod["volumes"] if "secret" in v):
        assert mode & 0o007 == 0, "a Secret's files are readable by others"


def test_clone_mode_has_no_sidecar_and_reads_the_repository_itself() -> None:
    objects = render(values("clone-ssh"))
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["cvsync"]
    env = cvsync_env(objects)
    assert env["CVSYNC_REPO"]["value"] == "ssh://git@git.example.com/fleet.git"
    assert "CVSYNC_LOCAL_PATH" not in env
    assert env["CVSYNC_GIT_SSH_KEY_FILE"]["value"] == "/etc/cvsync/git/ssh-privatekey"
    assert env["CVSYNC_GIT_KNOWN_HOSTS_FILE"]["value"] == "/etc/cvsync/git/known_hosts"


@pytest.mark.parametrize("scenario", ["git-sync-ssh", "git-sync-token"])
def test_git_sync_mode_shares_a_checkout_with_a_pinned_git_sync_v4(scenario: str) -> None:
    objects = render(values(scenario))
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["cvsync", "git-sync"]
    sidecar = container(objects, "git-sync")
    image, _, tag = sidecar["image"].rpartition(":")
    assert image == "registry.k8s.io/git-sync/git-sync"
    assert re.fullmatch(r"v4\.\d+\.\d+", tag), tag
    args = dict(a.removeprefix("--").partition("=")[::2] for a in sidecar["args"])
    assert args["root"] == "/git"
    assert args["link"] == "repo"
    assert args["repo"] == values(scenario)["source"]["repo"]
    assert args["ref"] == "main"
    env = cvsync_env(objects)
    assert env["CVSYNC_LOCAL_PATH"]["value"] == "/git/repo"
    assert "CVSYNC_REPO" not in env
    shared = {m["name"]: m for m in container(objects, "cvsync")["volumeMounts"]}["git"]
    assert shared == {"name": "git", "mountPath": "/git", "readOnly": True}
    assert {"name": "git", "mountPath": "/git"} in sidecar["volumeMounts"]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "git")
    # git-sync authenticates with the same Secret's files as cvsync.
    mounts = _secret_mounts(pod, sidecar)
    assert mounts == _secret_mounts(pod, container(objects, "cvsync"))
    if scenario == "git-sync-ssh":
        assert args["ssh-key-file"] == env["CVSYNC_GIT_SSH_KEY_FILE"]["value"]
        assert args["ssh-known-hosts-file"] == env["CVSYNC_GIT_KNOWN_HOSTS_FILE"]["value"]
        assert args["ssh-known-hosts"] == "true"
    else:
        assert args["password-file"] == env["CVSYNC_GIT_TOKEN_FILE"]["value"]
        assert args["username"] == "x-access-token"


def test_basic_auth_gives_git_sync_the_same_user_and_password_file() -> None:
    objects = render(merged(values("git-sync-token"), AUTH_BASIC))
    args = container(objects, "git-sync")["args"]
    env = cvsync_env(objects)
    assert "--username=u" in args
    assert f"--password-file={env['CVSYNC_GIT_PASSWORD_FILE']['value']}" in args
    assert env["CVSYNC_GIT_USERNAME"]["value"] == "u"


def test_write_back_in_git_sync_mode_pushes_to_the_source_repository() -> None:
    env = cvsync_env(render(values("git-sync-write-back")))
    assert env["CVSYNC_WRITE_BACK"]["value"] == "true"
    assert env["CVSYNC_STATUS_REPO"]["value"] == "ssh://git@git.example.com/fleet.git"
    assert env["CVSYNC_GIT_SSH_KEY_FILE"]["value"].startswith("/etc/cvsync/git/")


# --- values, schema, lint --------------------------------------------------------------

BAD_VALUES: dict[str, dict[str, Any]] = {
    "unknown top-level key": {"clustr": "x"},
    "misspelled mode": {"mode": "enforcing"},
    "interval as text": {"source": {"interval": "1m"}},
    "negative interval": {"source": {"interval": -5}},
    "unknown source mode": {"source": {"mode": "svn"}},
    "unknown auth type": {"git": {"auth": {"type": "password"}}},
    "a plain token in values": {"git": {"auth": {"token": "ghp_secret"}}},
    "credentials in the URL": {"source": {"repo": "https://user:pass@git.example.com/f.git"}},
    "log format": {"logFormat": "xml"},
    "port out of range": {"http": {"port": 70000}},
    "leader election flag as text": {"leaderElection": {"enabled": "yes"}},
    "cvsync settings through extraEnv": {"extraEnv": [{"name": "CVSYNC_MODE", "value": "x"}]},
    "git-sync period": {"source": {"gitSync": {"period": "soon"}}},
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_the_schema_refuses_wrong_values(case: str) -> None:
    bad = merged(REQUIRED, BAD_VALUES[case])
    assert "schema" in render_error(bad)
    assert [m for severity, m in lint(bad) if severity == 3]


TEMPLATE_REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "no cluster": ({"cluster": ""}, "cluster is required"),
    "no repository": ({"source": {"repo": ""}}, "source.repo is required"),
    "auth without a Secret": ({"git": {"auth": {"type": "ssh"}}}, "existingSecret is required"),
    "basic without a user": (
        {"git": {"auth": {"type": "basic", "existingSecret": "s"}}},
        "username is required",
    ),
    "webhook without a Secret": ({"webhook": {"enabled": True}}, "webhook.existingSecret"),
    "token variable without token auth": (
        {"git": {"auth": {"tokenEnvName": "T"}}},
        "tokenEnvName is only used",
    ),
}


@pytest.mark.parametrize("case", sorted(TEMPLATE_REFUSALS))
def test_contradicting_values_are_refused_with_a_plain_message(case: str) -> None:
    layer, message = TEMPLATE_REFUSALS[case]
    assert message in render_error(merged(REQUIRED, layer))


def test_nothing_set_names_what_is_required() -> None:
    assert "cluster is required" in render_error({})


def test_helm_lint_finds_nothing_to_warn_about() -> None:
    for scenario in SCENARIOS:
        findings = [(s, m) for s, m in lint(values(scenario)) if s >= 2]
        assert not findings, (scenario, findings)


def _values_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(CHART / "values.yaml")
    return loaded


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def test_the_schema_is_strict_draft_07_and_accepts_the_defaults() -> None:
    schema = _schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    jsonschema.Draft7Validator(schema).validate(_values_yaml())
    # Every value is described by the schema, and every object in it is closed.
    assert set(_values_yaml()) <= set(schema["properties"])

    def open_objects(node: Mapping[str, Any], path: str) -> Iterator[str]:
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False and path.count("/") < 3:
                yield path
            for key, child in node["properties"].items():
                yield from open_objects(child, f"{path}/{key}")

    open_ones = set(open_objects(schema, "")) - {"/podSecurityContext"}
    assert not open_ones, f"schema objects that accept any key: {sorted(open_ones)}"


def test_values_hold_cvsync_defaults_and_no_credentials() -> None:
    defaults = _values_yaml()
    assert defaults["source"]["specPath"] == DEFAULT_SPEC_PATH
    assert defaults["source"]["policyPath"] == "clusters/{cluster}/policy.yaml"
    assert defaults["leaderElection"] == {
        "enabled": True,
        "leaseName": "cvsync",
        "leaseDuration": 15,
        "renewDeadline": 10,
        "retryPeriod": 2,
    }
    assert defaults["replicaCount"] == 1
    assert defaults["image"] == {
        "repository": "ghcr.io/cvsync/cvsync",
        "tag": "",
        "pullPolicy": "IfNotPresent",
    }
    for flag in ("serviceMonitor", "podDisruptionBudget", "networkPolicy", "webhook", "writeBack"):
        assert defaults[flag]["enabled"] is False, flag
    text = (CHART / "values.yaml").read_text()
    assert not re.search(r"^\s*(token|password|sshKey|secret)\s*:", text, re.MULTILINE)


def chart_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe", pure=True).load(CHART / "Chart.yaml")
    return loaded


def test_chart_metadata_follows_the_package_version() -> None:
    meta = chart_yaml()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "cvsync"
    assert meta["appVersion"] == project["version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])


def test_notes_say_where_to_look() -> None:
    text = notes(values("write-back"))
    assert "prod-east" in text
    assert "clusters/prod-east/clusterversion.yaml" in text
    assert f"kubectl -n {NAMESPACE} logs deploy/{RELEASE} -c cvsync" in text
    assert "/metrics" in text
    assert "/hooks/git" in text
    assert "status/prod-east" in text
