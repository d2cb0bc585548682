"""The apply merge: a configuration merged into the live object the way structured-merge-diff
merges it: maps per field, set and map lists per item in a stable order, the rest whole.

Pure: values and their type in, a new value out; ownership is fieldmanager's.
"""

from __future__ import annotations

import copy
from typing import Any

from agent.sandbox.apiserver import fieldsets as fs
from agent.sandbox.apiserver.fieldsets import Path
from agent.sandbox.apiserver.typemodel import ListType, TypeNode

_MISSING: Any = object()


def merge(live: Any, config: Any, node: TypeNode | None, path: Path = ()) -> Any:
    """`config` merged into `live`: maps per field, set and map lists per item, the rest whole."""
    if isinstance(config, dict) and not (node is not None and node.atomic):
        out = dict(live) if isinstance(live, dict) else {}
        for name, value in config.items():
            child_path = (*path, fs.field_element(name))
            child = node.child(name) if node is not None else None
            out[name] = merge(out.get(name, _MISSING), value, child, child_path)
        return out
    kind = fs.list_type(node)
    if isinstance(config, list) and kind.kind != "atomic":
        current = live if isinstance(live, list) else []
        return _merge_list(current, config, kind, element_type(node), path)
    return copy.deepcopy(config)


def element_type(node: TypeNode | None) -> TypeNode | None:
    return node.element if node is not None else None


def _index(items: list[Any], kind: ListType, path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, item in enumerate(items):
        out.setdefault(fs.item_element(item, index, kind, path), item)
    return out


def _merge_list(
    live: list[Any], config: list[Any], kind: ListType, item_type: TypeNode | None, path: Path
) -> list[Any]:
    old, new = _index(live, kind, path), _index(config, kind, path)
    out: list[Any] = []
    for element in _ordered_union(list(old), list(new)):
        if element not in new:
            out.append(old[element])
        elif kind.kind == "map":
            previous = old.get(element, _MISSING)
            out.append(merge(previous, new[element], item_type, (*path, element)))
        else:
            out.append(copy.deepcopy(new[element]))
    return out


def _ordered_union(live: list[str], config: list[str]) -> list[str]:
    """Item order after a merge: the config's order, with live-only items kept in place."""
    in_config, in_live = set(config), set(live)
    shared = iter([element for element in config if element in in_live])
    waiting = next(shared, None)
    out: list[str] = []
    li = ri = 0
    while li < len(live) or ri < len(config):
        here = live[li] if li < len(live) else None
        if here is not None and ri < len(config):
            if here == config[ri]:
                out.append(here)
                li, ri, waiting = li + 1, ri + 1, next(shared, None)
                continue
            if here in in_config and waiting is not None and waiting != here:
                li += 1
                continue
        if here is not None and here not in in_config:
            out.append(here)
            li += 1
        elif ri < len(config):
            out.append(config[ri])
            if config[ri] == waiting:
                waiting = next(shared, None)
            ri += 1
        else:
            li += 1
    return out
