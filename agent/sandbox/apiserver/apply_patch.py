"""An applied configuration as server-side apply reads it, before any merge: the YAML body
decoded as Go's sigs.k8s.io/yaml does, its kind checked, and the typed patch object built.

Pure. Wording follows kube-apiserver's apply patcher and field manager, and
sigs.k8s.io/structured-merge-diff's validation errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scanner import ScannerError

from agent.sandbox.apiserver import fieldsets as fs
from agent.sandbox.apiserver.field_errors import go_float, go_sharp_v
from agent.sandbox.apiserver.statuses import ApiError, bad_request, status
from agent.sandbox.apiserver.typemodel import TypeNode

# --- decoding ----------------------------------------------------------------------------


class _GoYamlConstructor(SafeConstructor):
    """Go's YAML decoder: timestamps stay the strings they were written as, and a repeated
    key takes the last value."""

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            self.repeated_key(key_node.start_mark.line + 1, key)
        return True

    def repeated_key(self, line: int, key: Any) -> None:
        """Told of each repeated key (`line` counts from 1)."""


def _noting_repeated_keys(found: list[str]) -> type[_GoYamlConstructor]:
    # ruamel builds its own loader object around the class (libyaml's parser with our
    # constructor), so a class per decoding is how the notes get back to the caller.
    class Noting(_GoYamlConstructor):
        def repeated_key(self, line: int, key: Any) -> None:
            found.append(f"line {line}: key {go_sharp_v(key)} already set in map")

    return Noting


_GoYamlConstructor.add_constructor(
    "tag:yaml.org,2002:timestamp", SafeConstructor.construct_yaml_str
)


def _go_yaml_error(exc: YAMLError) -> str:
    """go-yaml's message for a syntax error: `yaml: line N: <problem>`. go-yaml numbers lines
    from 0 and prints the problem's line (plus one for a scanner error), else the context's.
    ruamel parses with libyaml, of which go-yaml is a port: the problem texts are the same."""
    if not isinstance(exc, MarkedYAMLError):
        return f"yaml: {exc}"
    line = 0
    if exc.problem_mark is not None and exc.problem_mark.line != 0:
        line = exc.problem_mark.line + (1 if isinstance(exc, ScannerError) else 0)
    elif exc.context_mark is not None:
        line = exc.context_mark.line
    where = f"line {line}: " if line else ""
    return f"yaml: {where}{exc.problem or 'unknown problem parsing YAML content'}"


_CONVERTING = "error decoding YAML: error converting YAML to JSON: "
_JSON_TYPES = {bool: "bool", int: "number", float: "number", str: "string", list: "array"}


@dataclass(frozen=True)
class AppliedBody:
    """A decoded apply body: the object (None for a null body) and, for the strict decoding
    after the apply, go-yaml's `line N: key "k" already set in map` for each repeated key."""

    object: dict[str, Any] | None
    repeated_keys: tuple[str, ...] = ()


def decode_apply_body(raw: bytes | str) -> AppliedBody:
    """The apply body decoded as sigs.k8s.io/yaml decodes it; a 400 where Go's would fail."""
    repeated: list[str] = []
    yaml = YAML(typ="safe")
    yaml.Constructor = _noting_repeated_keys(repeated)
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        loaded = yaml.load(text)
    except UnicodeDecodeError as exc:
        raise bad_request(f"{_CONVERTING}yaml: invalid leading UTF-8 octet") from exc
    except YAMLError as exc:
        raise bad_request(f"{_CONVERTING}{_go_yaml_error(exc)}") from exc
    if loaded is None or isinstance(loaded, dict):
        return AppliedBody(_json_keys(loaded), tuple(repeated))
    found = _JSON_TYPES.get(type(loaded), "object")
    raise bad_request(
        "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot "
        f"unmarshal {found} into Go value of type map[string]interface {{}}"
    )


def repeated_key_warnings(body: AppliedBody, field_validation: str) -> tuple[str, ...]:
    """After a successful apply, the server decodes the YAML strictly once more: a repeated
    key fails a Strict request with a 400 and is a warning under Warn (the default)."""
    if not body.repeated_keys or field_validation == "Ignore":
        return ()
    if field_validation == "Strict":
        errors = "\n".join(f"  {line}" for line in body.repeated_keys)
        raise bad_request(
            "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal "
            f"errors:\n{errors}"
        )
    return body.repeated_keys


def _json_keys(value: Any) -> Any:
    """YAML turned into JSON: every mapping key becomes a string, as Go converts them."""
    if isinstance(value, dict):
        return {_key_text(key): _json_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_keys(item) for item in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return go_float(key) if isinstance(key, float) else str(key)


# --- the kind ------------------------------------------------------------------------------


def group_version_kind(obj: dict[str, Any] | None) -> str:
    """schema.GroupVersionKind's String() for the object's apiVersion and kind."""
    api_version = _text((obj or {}).get("apiVersion"))
    kind = _text((obj or {}).get("kind"))
    group, slash, version = api_version.rpartition("/")
    if api_version.count("/") > 1:
        group, version, kind = "", "", ""  # unparseable: Go reports an empty kind
    elif not slash:
        group, version = "", api_version
    return f"{group}/{version}, Kind={kind}"


def _text(value: Any) -> str:
    """What Go's unstructured accessors read from a field: its string, else nothing."""
    return value if isinstance(value, str) else ""


def check_kind(obj: dict[str, Any] | None, api_version: str, kind: str) -> dict[str, Any]:
    """The field manager's version check: an apply of another kind or version is a 400."""
    if obj is None or obj.get("apiVersion") != api_version or obj.get("kind") != kind:
        raise bad_request(f"invalid object type: {group_version_kind(obj)}")
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("managedFields"), list):
        raise bad_request("metadata.managedFields must be nil")
    return obj


# --- the typed patch object --------------------------------------------------------------


def typed_patch_errors(obj: dict[str, Any], node: TypeNode) -> list[str]:
    """Every `path: problem` that keeps `obj` from being a value of type `node`.

    As structured-merge-diff validates: a struct stops at its first undeclared field (our
    walk takes keys in sorted order, where Go's map order is random), and a keyed list stops
    at its first item without its keys."""
    return [f"{path}: {problem}" if path else problem for path, problem in _walk(obj, node, "")]


def _walk(value: Any, node: TypeNode | None, path: str) -> Iterator[tuple[str, str]]:
    if node is None or node.kind == "untyped" or value is None:
        return
    if node.kind == "scalar":
        problem = _scalar_problem(value, node.scalar)
        if problem:
            yield path, problem
    elif node.kind == "map":
        if not isinstance(value, dict):
            yield path, f"expected map, got &{{{_go_v(value)}}}"
            return
        for name in sorted(value):
            child = node.child(name)
            if child is None:
                yield f"{path}.{name}", "field not declared in schema"
                return
            yield from _walk(value[name], child, f"{path}.{name}")
    elif not isinstance(value, list):
        yield path, f"expected list, got &{{{_go_v(value)}}}"
    else:
        yield from _walk_list(value, node, path)


def _walk_list(items: list[Any], node: TypeNode, path: str) -> Iterator[tuple[str, str]]:
    kind = node.list_type
    seen: set[str] = set()
    for index, item in enumerate(items):
        if kind.kind == "atomic":
            element = fs.index_element(index)
        else:
            problem = _item_problem(item, kind.kind, kind.keys)
            if problem:
                yield path, f"element {index}: {problem}"
                return
            element = fs.item_element(item, index, kind, ())
            if element in seen:
                yield path, f"duplicate entries for key {fs.format_element(element)}"
            seen.add(element)
        yield from _walk(item, node.element, path + fs.format_element(element))


def _item_problem(item: Any, kind: str, keys: tuple[str, ...]) -> str:
    if kind == "set":
        if isinstance(item, dict):
            return "associative list without keys has an element that's a map type"
        if isinstance(item, list):
            return "not supported: associative list with lists as elements"
        if item is None:
            return "associative list without keys has an element that's an explicit null"
        return ""
    if item is None:
        return "associative list with keys may not have a null element"
    if not isinstance(item, dict):
        return "associative list with keys may not have non-map elements"
    for name in keys:
        if name not in item:
            return (
                f"associative list with keys has an element that omits key field "
                f"{fs.go_quote(name)} (and doesn't have default value)"
            )
    return ""


def _scalar_problem(value: Any, scalar: str) -> str:
    if scalar == "string" and not isinstance(value, str):
        return f"expected string, got &value.valueUnstructured{{Value:{go_sharp_v(value)}}}"
    if scalar == "numeric" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"expected numeric (int or float), got {_go_type(value)}"
    if scalar == "boolean" and not isinstance(value, bool):
        return f"expected boolean, got &{{{_go_v(value)}}}"
    return ""


def _go_type(value: Any) -> str:
    """%T of a decoded JSON value."""
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return {bool: "bool", str: "string", int: "float64", float: "float64"}[type(value)]


def _go_v(value: Any) -> str:
    """%v of a decoded JSON value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_v(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_v(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def typed_patch_failure(obj: dict[str, Any], node: TypeNode) -> ApiError | None:
    """The 500 the field manager answers when the applied object is not of its kind's type.

    The server wraps the errors as a plain error, so the Status has no reason."""
    errors = typed_patch_errors(obj, node)
    if not errors:
        return None
    text = errors[0] if len(errors) == 1 else "errors:\n" + "\n".join(f"  {e}" for e in errors)
    metadata = obj.get("metadata")
    meta = metadata if isinstance(metadata, dict) else {}
    names = f"{_text(meta.get('namespace'))}/{_text(meta.get('name'))}"
    message = f"failed to create typed patch object ({names}; {group_version_kind(obj)}): {text}"
    return ApiError(status(500, "", message))
