"""The layout a newcomer reads: no module of the agent imports itself back through others,
and the desired spec is normalized in one place, once per cycle, then handed on."""

from __future__ import annotations

import re

import grimp
from conftest import REPO_ROOT


def _strongly_connected(graph: grimp.ImportGraph) -> list[set[str]]:
    """Tarjan's algorithm over the module import graph; components of more than one module
    are import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if not imported.startswith("agent"):
                continue
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            found.append(component)

    for module in sorted(graph.modules):
        if module.startswith("agent") and module not in index:
            visit(module)
    return [component for component in found if len(component) > 1]


def test_no_module_of_the_agent_is_part_of_an_import_cycle() -> None:
    graph = grimp.build_graph("agent")
    assert _strongly_connected(graph) == []


def test_the_desired_spec_is_normalized_in_one_place() -> None:
    """diff, plan, drift policy and gates take the cycle's DesiredState; only
    spec/normalize.py turns git's document into it."""
    callers = sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "agent").rglob("*.py")
        if re.search(r"\bdesired_spec\(", path.read_text())
    )
    assert callers == ["agent/spec/normalize.py"]
