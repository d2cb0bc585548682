"""Rendering the Helm chart with Helm's own engine, for the chart's tests.

The `helm` binary when it is on PATH, else helm-python-sdk (Helm's Go library, bundled in
its wheel; a dev dependency); tests skip when neither is there.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from conftest import REPO_ROOT
from ruamel.yaml import YAML

CHART = REPO_ROOT / "charts" / "cvsync"
RELEASE = "cvsync"
NAMESPACE = "cvsync-system"

Manifest = dict[str, Any]


class RenderError(Exception):
    """Helm refused the values (schema) or a template failed (a `fail` in the chart)."""


class _Engine(Protocol):
    @property
    def name(self) -> str: ...

    def render(self, values: Mapping[str, Any]) -> dict[str, str]: ...

    def lint(self, values: Mapping[str, Any]) -> list[tuple[int, str]]: ...


@dataclass(frozen=True)
class _Binary:
    path: str
    name: str = "helm binary"

    def _run(
        self, command: list[str], values: Mapping[str, Any]
    ) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            values_file = Path(tmp) / "values.json"  # JSON is YAML
            values_file.write_text(json.dumps(values))
            return subprocess.run(
                [self.path, *command, "-f", str(values_file)],
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )

    def render(self, values: Mapping[str, Any]) -> dict[str, str]:
        done = self._run(["template", RELEASE, str(CHART), "-n", NAMESPACE], values)
        if done.returncode != 0:
            raise RenderError(done.stderr)
        # `helm template` leaves NOTES.txt out; a client-side dry-run install prints it.
        install = ["install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client"]
        dry_run = self._run(install, values)
        return {"manifests.yaml": done.stdout, "NOTES.txt": dry_run.stdout.partition("NOTES:\n")[2]}

    def lint(self, values: Mapping[str, Any]) -> list[tuple[int, str]]:
        done = self._run(["lint", "--strict", str(CHART), "-n", NAMESPACE], values)
        severities = {"[INFO]": 1, "[WARNING]": 2, "[ERROR]": 3}
        found = [
            (severity, line)
            for line in (done.stdout + done.stderr).splitlines()
            for tag, severity in severities.items()
            if tag in line
        ]
        if done.returncode != 0 and not any(severity == 3 for severity, _ in found):
            found.append((3, done.stderr))
        return found


@dataclass(frozen=True)
class _Library:
    name: str

    def render(self, values: Mapping[str, Any]) -> dict[str, str]:
        import helm_python  # noqa: PLC0415 - optional: present with the dev extra

        with helm_python.Chart.load(str(CHART)) as chart:
            try:
                return chart.render(dict(values), name=RELEASE, namespace=NAMESPACE)
            except helm_python.HelmError as exc:
                raise RenderError(str(exc)) from None

    def lint(self, values: Mapping[str, Any]) -> list[tuple[int, str]]:
        import helm_python  # noqa: PLC0415

        report = helm_python.lint(str(CHART), dict(values), strict=True, namespace=NAMESPACE)
        return [(int(m["severity"]), str(m["error"])) for m in report["messages"]]


def _engine() -> _Engine | None:
    binary = shutil.which("helm")
    if binary is not None:
        return _Binary(binary)
    try:
        import helm_python  # noqa: PLC0415
    except ImportError:
        return None
    return _Library(f"helm-python-sdk (Helm {helm_python.helm_sdk_version()})")


ENGINE = _engine()


def engine() -> _Engine:
    """Helm's engine, or a skip naming what to install."""
    if ENGINE is None:
        pytest.skip("no Helm renderer: put `helm` on PATH or install the dev extra")
    return ENGINE


def merged(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Values layered like repeated `-f` files: maps merge, everything else is replaced."""
    result: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
                result[key] = merged(result[key], value)
            else:
                result[key] = value
    return result


def render(values: Mapping[str, Any]) -> list[Manifest]:
    """Every object the chart renders with these values (NOTES.txt left out)."""
    return copy.deepcopy(_render(json.dumps(values, sort_keys=True)))


@functools.cache
def _render(values_json: str) -> list[Manifest]:
    yaml = YAML(typ="safe", pure=True)
    objects: list[Manifest] = []
    for source, text in sorted(engine().render(json.loads(values_json)).items()):
        if source.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.load_all(text) if doc)
    return objects


def notes(values: Mapping[str, Any]) -> str:
    rendered = engine().render(values)
    text = next(text for source, text in rendered.items() if source.endswith("NOTES.txt"))
    if not text:
        pytest.skip(f"{engine().name} printed no NOTES (a helm older than 3.13?)")
    return text


def render_error(values: Mapping[str, Any]) -> str:
    """Helm's message for values it must refuse; fails the test if it renders."""
    try:
        engine().render(values)
    except RenderError as exc:
        return str(exc)
    pytest.fail(f"Helm rendered values it should refuse: {values}")


def lint(values: Mapping[str, Any]) -> list[tuple[int, str]]:
    """`helm lint --strict` findings as (severity 1 info, 2 warning, 3 error; message)."""
    return engine().lint(values)


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def container(objects: list[Manifest], name: str) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    found: list[dict[str, Any]] = [c for c in pod["containers"] if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}"
    return found[0]
