"""Parse the bytes of one file into ClusterVersion documents with the position of every field.

Pure: bytes and a display path in, a ParsedFile out. Handles YAML and JSON, several
documents per file, `kind: List` wrappers (what `oc get -o yaml` prints), and refuses
hostile input (size, encoding, duplicate keys, alias bombs, deep nesting) with located
findings instead of exceptions.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from agent.model import findings as rules
from agent.model.clusterversion_api import KIND, LIST_KINDS
from agent.model.documents import ManifestDocument, ParsedFile
from agent.model.findings import Finding
from agent.model.source import FieldPath, Position, PositionMap, SourceLocation
from agent.spec.yaml_events import BuiltDocument, YamlStructureError, build_documents

_LibyamlParser: type[Any] | None
try:
    from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]  # clib or clibz

    _LibyamlParser = CParser
except ImportError:  # ruamel.yaml.clib is absent (PyPy, say): the pure-Python parser
    _LibyamlParser = None

T = TypeVar("T")

MAX_FILE_BYTES = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"

_STRUCTURE_RULES = {
    "syntax": rules.YAML_SYNTAX,
    "alias": rules.YAML_ALIAS_EXPANSION,
    "unsupported": rules.YAML_UNSUPPORTED,
}


def yaml_events(text: str) -> Iterator[Any]:
    """Parser events for `text`: libyaml's parser when ruamel.yaml.clib is installed.

    A fresh parser per call: ruamel.yaml's YAML object keeps per-call state (and grows a
    list with every call), so it is neither thread-safe nor fit for a long-running agent.
    The bare C parser, not a loader: CBaseLoader's constructor and resolver (unused here)
    point the object at itself, and that cycle kept libyaml's buffers (tens of kB a parse,
    unseen by tracemalloc) until a full garbage collection, minutes apart in `cvsync run`;
    the bare parser is freed when the last event is read or the reading stops.
    """
    if _LibyamlParser is None:
        yield from YAML(typ="safe", pure=True).parse(text)
        return
    parser = _LibyamlParser(text)
    while parser.check_event():
        yield parser.get_event()


def decode_utf8(data: bytes, file: str) -> tuple[str | None, Finding | None]:
    """Decode strictly; on failure point at the first bad byte's line and column."""
    try:
        return data.removeprefix(_UTF8_BOM).decode("utf-8"), None
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        where = SourceLocation(file, line, column)
        return None, rules.FILE_NOT_UTF8.at(
            where,
            f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not valid UTF-8",
            "save the file as UTF-8 (Kubernetes manifests are always UTF-8)",
        )


def too_large_finding(file: str, size: int) -> Finding:
    return rules.FILE_TOO_LARGE.at(
        SourceLocation(file, 1, 1),
        f"the file is {size:,} bytes; the limit is {MAX_FILE_BYTES:,} (1 MiB)",
        "a ClusterVersion spec is a few hundred bytes: split the file or remove the status "
        "copied from the cluster",
    )


def parse_file(data: bytes, file: str) -> ParsedFile:
    """Parse one file's bytes; never raises for bad input."""
    if len(data) > MAX_FILE_BYTES:
        return ParsedFile(file, findings=(too_large_finding(file, len(data)),))
    text, problem = decode_utf8(data, file)
    if text is None:
        assert problem is not None
        return ParsedFile(file, findings=(problem,))
    return parse_text(text, file)


def parse_text(text: str, file: str) -> ParsedFile:
    documents: list[ManifestDocument] = []
    found: list[Finding] = []
    empty: list[str] = []  # what each document without a ClusterVersion holds instead
    try:
        for index, built in enumerate(build_documents(yaml_events(text))):
            found.extend(duplicate_key_findings(built, file))
            if built.duplicate_keys:
                continue
            if built.body is None:
                empty.append(f"document {index + 1} is empty (---, null or ~)")
                continue
            if _is_empty_list(built.body):
                empty.append(f"document {index + 1} is a {built.body['kind']} with no items")
            _classify(built, file, index, documents, found)
    except YamlStructureError as exc:
        found.append(structure_finding(exc, file))
    except MarkedYAMLError as exc:
        found.append(syntax_finding(exc, file, text))
    except (YAMLError, RecursionError) as exc:
        found.append(
            rules.YAML_SYNTAX.at(
                SourceLocation(file, 1, 1),
                f"the file cannot be parsed: {exc}",
                "check the file with a YAML linter",
            )
        )
    if not documents and not found:
        found.append(_no_cluster_version(file, empty))
    return ParsedFile(file, tuple(documents), tuple(found))


def _is_empty_list(body: Any) -> bool:
    return isinstance(body, dict) and body.get("kind") in LIST_KINDS and body.get("items") == []


def _no_cluster_version(file: str, empty: list[str]) -> Finding:
    """A file with nothing else wrong and no ClusterVersion: kubectl applies nothing from it
    ("no objects passed to apply"), and the agent has no spec to follow."""
    reasons = "; ".join(empty[:3]) + ("; ..." if len(empty) > 3 else "")
    return rules.FILE_EMPTY.at(
        SourceLocation(file, 1, 1),
        f"the file holds no ClusterVersion: {reasons or 'it holds no YAML document'}",
        "add the ClusterVersion spec, or remove the file",
    )


def structure_finding(exc: YamlStructureError, file: str) -> Finding:
    rule = _STRUCTURE_RULES[exc.kind]
    hints = {
        "syntax": "fix the YAML at this position",
        "alias": "write the values out instead of repeating them through anchors and aliases",
        "unsupported": "use plain mappings, lists and scalars, as Kubernetes manifests do",
    }
    where = SourceLocation(file, exc.where.line, exc.where.column)
    return rule.at(where, exc.message, hints[exc.kind])


def syntax_finding(exc: MarkedYAMLError, file: str, text: str) -> Finding:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    context = f" ({exc.context})" if exc.context and exc.problem else ""
    return rules.YAML_SYNTAX.at(
        SourceLocation(file, line, column), f"{problem}{context}", _syntax_hint(text, line)
    )


def _syntax_hint(text: str, line: int) -> str:
    """What to do about a syntax error, told from the line it is on: the parser's own words
    for a tab ("cannot start any token") never say that the tab is the trouble."""
    lines = text.splitlines()
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indentation = here[: len(here) - len(here.lstrip(" \t"))]
    if "\t" in indentation:
        return "indent with spaces: YAML forbids tabs in indentation, and this line has one"
    if text.lstrip().startswith(("{", "[")):
        return "fix the JSON at this position: check commas, quotes and brackets"
    return "fix the YAML at this position: check indentation, colons and quotes"


def duplicate_key_findings(built: BuiltDocument, file: str) -> list[Finding]:
    return [
        rules.YAML_DUPLICATE_KEY.at(
            SourceLocation(file, again.line, again.column),
            f'the key "{key}" is repeated (first at line {first.line}, column {first.column})',
            "keep one of the two; the API server would silently use only the last one",
        )
        for key, first, again in built.duplicate_keys
    ]


def _classify(
    built: BuiltDocument,
    file: str,
    index: int,
    documents: list[ManifestDocument],
    found: list[Finding],
) -> None:
    positions = PositionMap(built.keys, built.values, built.start)
    body = built.body
    label = f"document {index + 1}"
    if not isinstance(body, dict):
        found.append(_not_mapping(file, positions.value(()), label, body))
        return
    kind = body.get("kind")
    if kind == KIND:
        documents.append(
            ManifestDocument(
                file, index, None, body, positions, built.yaml11_types, built.yaml11_keys
            )
        )
        return
    if kind in LIST_KINDS and isinstance(body.get("items"), list):
        for item_index, item in enumerate(body["items"]):
            prefix: FieldPath = ("items", item_index)
            item_positions = _rebase(positions, prefix)
            item_label = f"{label}, item {item_index + 1}"
            if not isinstance(item, dict):
                found.append(_not_mapping(file, item_positions.start, item_label, item))
            elif item.get("kind") != KIND:
                found.append(_other_kind(file, item_positions.start, item_label, item))
            else:
                types = _below(built.yaml11_types, prefix)
                keys = _below(built.yaml11_keys, prefix)
                documents.append(
                    ManifestDocument(file, index, item_index, item, item_positions, types, keys)
                )
        return
    found.append(_other_kind(file, positions.value(("kind",)), label, body))


def _below(table: Mapping[FieldPath, T], prefix: FieldPath) -> dict[FieldPath, T]:
    """The entries of `table` under `prefix`, with paths relative to it."""
    cut = len(prefix)
    return {path[cut:]: entry for path, entry in table.items() if path[:cut] == prefix}


def _rebase(positions: PositionMap, prefix: FieldPath) -> PositionMap:
    keys, values = _below(positions.keys, prefix), _below(positions.values, prefix)
    return PositionMap(keys, values, positions.value(prefix))


def _not_mapping(file: str, where: Position, label: str, body: Any) -> Finding:
    shape = "a list" if isinstance(body, list) else f"the scalar {str(body)[:40]!r}"
    return rules.DOCUMENT_NOT_MAPPING.at(
        SourceLocation(file, where.line, where.column),
        f"{label} is {shape}, not a mapping",
        "a ClusterVersion spec is a mapping with apiVersion, kind, metadata and spec",
    )


def _other_kind(file: str, where: Position, label: str, body: dict[str, Any]) -> Finding:
    kind = body.get("kind")
    if kind is None:
        message = f"{label} has no kind, so it is not a ClusterVersion"
    else:
        message = (
            f"{label} is a {kind} ({body.get('apiVersion', 'no apiVersion')}), not a ClusterVersion"
        )
    return rules.DOCUMENT_OTHER_KIND.at(
        SourceLocation(file, where.line, where.column),
        message,
        "keep only ClusterVersion documents (apiVersion: config.openshift.io/v1, "
        "kind: ClusterVersion) under the validated paths",
    )
