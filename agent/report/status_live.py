"""A live ClusterVersion from a saved file: `oc get clusterversion version -o yaml` (or JSON,
or a one-item `kind: List`), or the status file cvsync committed (status/<cluster>.yaml).

Pure: bytes or a parsed document in, a ClusterVersion-shaped dict out. A status file is
rebuilt with exactly what `summarize` and the upgrade gates read; what it never recorded
(Recommended messages, PromQL rules, history past the entries shown) stays absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from agent.model.clusterversion_api import LIST_KINDS, OBJECT_NAME
from agent.upgrade.status_read import integer, mapping, mappings, text, texts

__all__ = ["is_status_file", "live_from_status", "load_live_object"]

_KIND = "ClusterVersion"
_API_VERSION = "config.openshift.io/v1"
_SAVE_HINT = (
    "save it with `oc get clusterversion version -o yaml`, or pass the status/<cluster>.yaml "
    "file cvsync committed"
)


class _TextTimestamps(SafeConstructor):
    """Timestamps stay the text written, as the API server serves them."""


_TextTimestamps.add_constructor("tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str)


def is_status_file(doc: Any) -> bool:
    """A status file cvsync wrote (it has no kind, and has cvsync's own sections)."""
    return isinstance(doc, Mapping) and "kind" not in doc and "cvsync" in doc and "updates" in doc


def load_live_object(data: bytes, file: str) -> dict[str, Any]:
    """The ClusterVersion saved in `file` (already read as `data`); ValueError naming the file
    and what to do when it holds anything else."""
    try:
        doc = _parse(data, file)
    except RecursionError:
        raise ValueError(f"{file}: nested too deeply for a ClusterVersion; {_SAVE_HINT}") from None
    if is_status_file(doc):
        return live_from_status(doc)
    if isinstance(doc, Mapping) and doc.get("kind") in LIST_KINDS:
        items = doc.get("items")
        if not isinstance(items, list) or len(items) != 1:
            count = len(items) if isinstance(items, list) else 0
            raise ValueError(
                f"{file}: a {doc.get('kind')} of {count} items; cvsync needs exactly one "
                f"ClusterVersion: {_SAVE_HINT}"
            )
        doc = items[0]
    return _cluster_version(doc, file)


def _parse(data: bytes, file: str) -> Any:
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{file}: not UTF-8 text (byte {exc.start}); {_SAVE_HINT}") from None
    if source.lstrip().startswith(("{", "[")):
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{file}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}; {_SAVE_HINT}"
            ) from None
    yaml = YAML(typ="safe", pure=True)
    yaml.Constructor = _TextTimestamps
    try:
        return yaml.load(source)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "not valid YAML"
        raise ValueError(f"{file}{where}: invalid YAML: {problem}; {_SAVE_HINT}") from None
    except YAMLError as exc:
        first = str(exc).strip().splitlines()[:1]
        raise ValueError(f"{file}: invalid YAML: {''.join(first)}; {_SAVE_HINT}") from None


def _cluster_version(doc: Any, file: str) -> dict[str, Any]:
    if not isinstance(doc, Mapping):
        what = "empty" if doc is None else f"a {type(doc).__name__}, not a mapping"
        raise ValueError(f"{file}: the document is {what}; {_SAVE_HINT}")
    kind = doc.get("kind")
    # Insights archives strip TypeMeta: a kindless object with a spec or status is taken.
    kindless = kind is None and any(isinstance(doc.get(k), Mapping) for k in ("spec", "status"))
    if kind != _KIND and not kindless:
        said = f"kind {kind!r}" if kind is not None else "no kind, spec nor status"
        raise ValueError(f"{file}: holds {said}, not a ClusterVersion; {_SAVE_HINT}")
    return dict(doc)


def live_from_status(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A ClusterVersion rebuilt from a status file, read by `summarize` and the gates as the
    object the file was written from (within what the file records)."""
    updates = mapping(doc.get("updates"))
    desired = doc.get("desired")
    spec = _present(
        clusterID=doc.get("clusterID"),
        channel=doc.get("channel"),
        upstream=doc.get("upstream"),
        desiredUpdate=_request(desired),
        overrides=[dict(o) for o in mappings(doc.get("overrides"))] or None,
    )
    status = _present(
        observedGeneration=doc.get("observedGeneration"),
        desired=_release(desired) if isinstance(desired, Mapping) else None,
        history=_history(doc) or None,
        conditions=[_condition(c) for c in mappings(doc.get("conditions"))] or None,
    )
    if updates.get("availableUpdatesNull") is True:
        status["availableUpdates"] = None
    else:
        status["availableUpdates"] = [_release(t) for t in mappings(updates.get("available"))]
    if updates.get("conditionalUpdatesAbsent") is not True:
        status["conditionalUpdates"] = _conditional_updates(updates)
    _capabilities(doc.get("capabilities"), spec, status)
    return {
        "apiVersion": _API_VERSION,
        "kind": _KIND,
        "metadata": _present(name=OBJECT_NAME, generation=doc.get("generation")),
        "spec": spec,
        "status": status,
    }


def _present(**fields: Any) -> dict[str, Any]:
    """The fields that say something: None means the object did not say."""
    return {key: value for key, value in fields.items() if value is not None}


def _request(desired: Any) -> dict[str, Any] | None:
    """spec.desiredUpdate: the fields the status file says were requested, with the values it
    recorded (older files: status.desired's, the release the operator reconciles towards)."""
    if not isinstance(desired, Mapping) or desired.get("requested") is not True:
        return None
    recorded = mapping(desired.get("request"))
    fields = texts(desired.get("requestFields"))
    # The values requested, where the file records them; older files only name the fields.
    source = recorded if recorded else desired
    out: dict[str, Any] = {f: source[f] for f in fields if text(source.get(f))}
    if desired.get("forced") is True:
        out["force"] = True
    accepted = texts(desired.get("acceptRisks"))
    if accepted:
        out["acceptRisks"] = [{"name": name} for name in accepted]
    return out


def _release(raw: Mapping[str, Any]) -> dict[str, Any]:
    return _present(
        version=raw.get("version"),
        image=raw.get("image"),
        url=raw.get("url"),
        architecture=raw.get("architecture"),
        channels=list(texts(raw.get("channels"))) or None,
    )


def _history(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    shown = mapping(doc.get("history"))
    entries = list(mappings(shown.get("entries")))
    current = doc.get("current")
    # Past the entries shown, only the latest Completed one is known: keep it as the cluster's
    # current version when it is further down.
    if isinstance(current, Mapping) and current not in entries:
        entries.append(current)
    return [
        _present(
            version=e.get("version"),
            state=e.get("state"),
            image=e.get("image"),
            startedTime=e.get("started"),
            completionTime=e.get("completed"),
            verified=e.get("verified"),
            acceptedRisks=e.get("acceptedRisks"),
        )
        for e in entries
    ]


def _condition(raw: Mapping[str, Any]) -> dict[str, Any]:
    return _present(
        type=raw.get("type"),
        status=raw.get("status"),
        reason=raw.get("reason"),
        message=raw.get("message"),
        lastTransitionTime=raw.get("since"),
    )


def _conditional_updates(updates: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The recommended ones (listed with the available updates, with their risks) and the
    rest, each risk expanded from the file's table of distinct risks. The file names a
    target's risks only: when one name has variants (a message edited between releases),
    each variant goes to as many targets as the table counts for it."""
    table: dict[str, list[tuple[dict[str, Any], list[int]]]] = {}
    for risk in mappings(updates.get("risks")):
        name = text(risk.get("name"))
        expanded: dict[str, Any] = {
            "name": name,
            "url": text(risk.get("url")),
            "message": text(risk.get("message")),
            "matchingRules": [{"type": rule} for rule in texts(risk.get("rules"))],
        }
        if text(risk.get("applies")):
            expanded["conditions"] = [{"type": "Applies", "status": text(risk.get("applies"))}]
        table.setdefault(name, []).append((expanded, [integer(risk.get("updates")) or 1]))

    def expand(name: str) -> dict[str, Any]:
        variants = table.get(name)
        if not variants:
            return {"name": name}
        risk, left = next((v for v in variants if v[1][0] > 0), variants[0])
        left[0] -= 1
        return risk

    def risks(target: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [expand(name) for name in texts(target.get("risks"))]

    out = [
        {
            "release": _release(target),
            "risks": risks(target),
            "conditions": [{"type": "Recommended", "status": "True"}],
        }
        for target in mappings(updates.get("available"))
        if texts(target.get("risks"))
    ]
    for target in mappings(updates.get("notRecommended")):
        recommended = _present(
            type="Recommended", status=target.get("recommended"), reason=target.get("reason")
        )
        out.append(
            {
                "release": _release(target),
                "risks": risks(target),
                "conditions": [recommended] if len(recommended) > 1 else [],
            }
        )
    return out


def _capabilities(raw: Any, spec: dict[str, Any], status: dict[str, Any]) -> None:
    if not isinstance(raw, Mapping):
        return
    enabled = list(texts(raw.get("enabled")))
    status["capabilities"] = {
        "enabledCapabilities": enabled,
        "knownCapabilities": sorted({*enabled, *texts(raw.get("disabled"))}),
    }
    spec["capabilities"] = _present(
        baselineCapabilitySet=raw.get("baseline"),
        additionalEnabledCapabilities=list(texts(raw.get("additional"))) or None,
    )
