"""Label and annotation keys kubectl and oc name otherwise: YAML 1.1 reads a plain `yes`,
`0x1F` or `1.50` as a boolean or number, and sigs.k8s.io/yaml writes that value back as text
of its own ("true", "31", "1.5"), so the same file would label the cluster differently
through kubectl and through cvsync. The last test asks a real kubectl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sandbox_support import kubectl, needs_kubectl, sandbox_thread
from spec_text import HEADER, findings, located

from agent.sandbox.server import SandboxOptions
from agent.spec.yaml_events import yaml11_key_text


def labelled(key: str, where: str = "labels") -> str:
    return HEADER.replace("  name: version\n", f"  name: version\n  {where}:\n    {key}: x\n")


@pytest.mark.parametrize(
    ("key", "kubectl_key"),
    [
        ("yes", "true"), ("on", "true"), ("Off", "false"), ("n", "false"), ("True", "true"),
        ("0x1F", "31"), ("017", "15"), ("+1", "1"), ("1_000", "1000"), ("-0", "0"),
        ("1.50", "1.5"), ("1e3", "1000"), ("1e6", "1e+06"), ("0.1234567891", "0.12345679"),
        ("-.Inf", "-.inf"), (".NaN", ".nan"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("where", ["labels", "annotations"])
def test_a_key_kubectl_names_otherwise_must_be_quoted(
    key: str, kubectl_key: str, where: str
) -> None:
    [finding] = findings(labelled(key, where))
    assert (finding.rule, finding.location.line, finding.location.column) == (
        "yaml-ambiguous-key",
        6,
        5,
    )
    assert finding.field == f".metadata.{where}.{key}"
    assert f"kubectl and oc name the unquoted key {key} {kubectl_key!r}" in finding.message
    assert f'("{key}": ...)' in finding.hint


@pytest.mark.parametrize("key", ["~", "null", "9223372036854775808", "18446744073709551615"])
def test_a_key_kubectl_refuses_must_be_quoted(key: str) -> None:
    [finding] = findings(labelled(key))
    assert finding.rule == "yaml-ambiguous-key"
    assert "refuse the file" in finding.message


@pytest.mark.parametrize(
    "key",
    ["true", "false", "1", "-5", "0", "1.5", "0.1", ".inf", "12:30", "2024-01-01", "app",
     '"yes"', "'0x1F'", "!!str on"],
)  # fmt: skip
def test_a_key_every_reader_names_alike_passes(key: str) -> None:
    assert located(labelled(key)) == []


# Keys go-yaml v2 reads as every type it has, and their edges: the sign and base prefixes
# of integers, int64's bounds and the floats float32 rounds.
KEYS = [
    "yes", "Yes", "ON", "off", "y", "N", "true", "FALSE",
    "1", "-5", "0", "-0", "+1", "01", "0o17", "0O17", "0_777", "0x1F", "+0x1F", "0b11",
    "-0b11", "1_000", "9223372036854775807", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "1.50", "1.5", "1e3", "1e6", "1.0e+6", "100000.0", "1e-5",
    "0.0001", "-0.0", "+.5", "3.", "1_0.5", "16777217.0", "0.1234567891", "123456789.5",
    "1e400", ".inf", "-.Inf", "+.INF", ".NaN", "12:30", "2024-01-01", "app", "no-op",
]  # fmt: skip


@needs_kubectl
def test_kubectl_names_every_key_as_cvsync_predicts(tmp_path: Path) -> None:
    # One ClusterVersion per key, in flow style, so each key stands alone in its item.
    item = json.dumps(
        {
            "apiVersion": "config.openshift.io/v1",
            "kind": "ClusterVersion",
            "metadata": {"name": "version", "labels": {"KEY": "x"}},
            "spec": {"clusterID": "5e65da93-4167-4f1e-9571-f99963cda23e"},
        }
    ).replace('"KEY"', "{key}")
    manifest = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        f"- {item.replace('{key}', key)}\n" for key in KEYS
    )
    with sandbox_thread(SandboxOptions(scenario=None)) as running:
        config = running.kubeconfig(tmp_path / "kubeconfig")
        made = kubectl(
            config, "create", "--dry-run=client", "--validate=false", "-f", "-", "-o",
            'jsonpath={.metadata.labels}{"\\n"}', stdin=manifest,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr  # it prints each item of a List alone
        named = [next(iter(json.loads(line))) for line in made.stdout.splitlines()]
        assert named == [yaml11_key_text(key) for key in KEYS]
        for refused in ("~", "9223372036854775808"):
            assert yaml11_key_text(refused) is None
            one = manifest.split("\n- ")[0] + f"\n- {item.replace('{key}', refused)}\n"
            made = kubectl(
                config, "create", "--dry-run=client", "--validate=false", "-f", "-", "-o",
                "name", stdin=one,
            )  # fmt: skip
            assert made.returncode != 0
            assert "unsupported map key" in made.stderr
