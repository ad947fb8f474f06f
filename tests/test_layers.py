"""The package's layers: imports flow one way, and no module needs itself to load.

``gateway → schema → resolvers → replica → upstream → state`` (DESIGN.md §2): the schema
shapes what the resolvers fetch, the resolvers decide what to fetch and whether the replica
(DESIGN.md §8) holds it, the upstream client sends it.  A lower layer that imports a higher
one ties rows to GraphQL shapes again.
``sandbox`` imports nothing from the rest: it is written from Cliniko's contract, so a bug
in our client cannot hide behind a matching bug in our stand-in.

Every import counts, also one inside a function or under ``TYPE_CHECKING``.  Within the
read path (``schema`` and ``resolvers``) no module imports one that imports it back: a
cycle there is two modules that are really one, or a lower one that knows too much.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import appointments_gateway

PACKAGE = Path(appointments_gateway.__file__).parent
NAME = "appointments_gateway"

#: Packages in which no module may be part of an import cycle.
ACYCLIC = {"schema", "resolvers", "replica"}

#: Package → the packages it must never import.
FORBIDDEN = {
    "upstream": {"replica", "resolvers", "schema", "gateway"},
    "replica": {"resolvers", "schema", "gateway"},
    "resolvers": {"schema", "gateway"},
    "schema": {"gateway"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """The package's modules ``path`` imports, relative imports resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            found.update(n for n in [target, *names] if n.startswith(NAME))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith(NAME))
    return found


def layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_flow_one_way(path: Path) -> None:
    own = layer(module_name(path))
    wrong = sorted(m for m in imported_modules(path) if layer(m) in FORBIDDEN.get(own, ()))
    assert wrong == [], f"{own} must not import {', '.join(sorted(FORBIDDEN[own]))}"


def cycles() -> list[list[str]]:
    """The import cycles among the package's modules (strongly connected components)."""
    modules = {module_name(path): path for path in MODULES}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = set()
        for target in imported_modules(path):
            while target and target not in modules:  # a name imported from a module
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for target in graph[module]:
            if target not in order:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], order[target])
        if low[module] == order[module]:
            component = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in order:
            visit(module)
    return found


def test_the_read_path_has_no_import_cycle() -> None:
    assert [c for c in cycles() if any(layer(m) in ACYCLIC for m in c)] == []


def test_sandbox_imports_nothing_else_from_the_package() -> None:
    import appointments_gateway.sandbox as sandbox

    for path in Path(sandbox.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, path
                assert not (node.module or "").startswith("appointments_gateway"), path
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("appointments_gateway") for a in node.names), path
