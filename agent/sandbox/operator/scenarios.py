"""The sandbox's ready-made clusters: scenarios/*.yaml, each a description, the feature set the
cluster runs, the knobs of the operator simulator, and a full ClusterVersion in the shape of a
real one.

Pure apart from reading those files (shipped as package data of agent.sandbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor

from agent.sandbox.apiserver.crd_schema import FEATURE_SETS, FeatureSet
from agent.sandbox.operator.knobs import ScenarioKnobs

__all__ = ["Scenario", "load_scenario", "scenario_names"]

_SUFFIX = ".yaml"


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    knobs: ScenarioKnobs
    # The feature set to serve the scenario with (SandboxOptions.feature_set).
    feature_set: FeatureSet
    # A fresh object on every load_scenario call; callers may keep and mutate it.
    cluster_version: dict[str, Any]


class _TextTimestamps(SafeConstructor):
    """Timestamps stay the text written, as in objects served by an API server."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def _directory() -> Traversable:
    return resources.files("agent.sandbox.operator").joinpath("scenarios")


def scenario_names() -> list[str]:
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in _directory().iterdir()
        if entry.name.endswith(_SUFFIX)
    )


def load_scenario(name: str) -> Scenario:
    """A scenario by name (the file's stem); unknown names raise KeyError listing the known."""
    names = scenario_names()
    if name not in names:
        raise KeyError(f"no scenario {name!r}; known: {', '.join(names)}")
    yaml = YAML(typ="safe")
    yaml.Constructor = _TextTimestamps
    doc = yaml.load(_directory().joinpath(name + _SUFFIX).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("clusterVersion"), dict):
        raise ValueError(f"scenario {name!r} has no clusterVersion mapping")
    feature_set = _feature_set(doc.get("featureSet", "Default"))
    return Scenario(
        name=name,
        description=str(doc.get("description", "")).strip(),
        knobs=ScenarioKnobs.from_mapping(doc.get("knobs")),
        feature_set=feature_set,
        cluster_version=doc["clusterVersion"],
    )


def _feature_set(value: object) -> FeatureSet:
    for known in FEATURE_SETS:
        if value == known:
            return known
    raise ValueError(f"unknown featureSet {value!r}; known: {', '.join(FEATURE_SETS)}")
