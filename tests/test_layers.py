"""The layering rules of ARCHITECTURE.md: imports point downward only, and no module imports itself back.

Every import counts: at module level, under `if TYPE_CHECKING:` and inside functions, so that none of them
can hide an import cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "clusterset"

# a package may import only from the packages listed after it (and itself)
LAYERS = ["cli", "fleet", "deploy", "inventory", "mcs", "dns", "placement", "work", "workset", "runtime", "client",
          "apiserver", "api"]
FEATURES = {"inventory", "mcs", "dns", "placement", "work", "workset"}
ALLOWED: dict[str, set[str]] = {
    "cli": set(LAYERS) | {"testing"},
    "fleet": set(LAYERS) - {"cli"},
    "deploy": set(LAYERS) - {"cli", "fleet"},
    **{f: {f, "runtime", "client", "api"} for f in FEATURES},
    "runtime": {"runtime", "client", "api"},
    "client": {"client", "api"},
    "apiserver": {"apiserver", "api"},
    "api": {"api"},
    "testing": {"apiserver", "api", "fleet", "testing"},
}

# inside clusterset/apiserver, bottom first: a sub-package imports only from lower layers (and itself)
APISERVER_LAYERS: list[set[str]] = [
    {"meta", "storage"},
    {"patch", "schema"},
    {"registry"},
    {"kinds", "auth", "admission"},
    {"controllers", "http"},
    {"inprocess", "born"},
    {"server"},
    {"__init__"},
]


def _modules() -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = ["clusterset", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """The clusterset modules a file imports (a `from package import module` names the module)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clusterset"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in MODULES else node.module
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("clusterset"):
                    yield alias.name


GRAPH = {name: set(_imports(path)) & MODULES.keys() for name, path in MODULES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _apiserver_part(module: str) -> str:
    """`clusterset.apiserver.registry.rest` → "registry"; `clusterset.apiserver` → "__init__"."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 else "__init__"


def _layer(part: str) -> int:
    return next(i for i, names in enumerate(APISERVER_LAYERS) if part in names)


def test_imports_point_downward() -> None:
    violations = []
    for module, imported in GRAPH.items():
        package = _package(module)
        if not package:
            continue
        allowed = ALLOWED.get(package)
        assert allowed is not None, f"{module}: package {package!r} is not in the layer table of tests/test_layers.py"
        violations += [f"{module} imports {other}" for other in imported if _package(other) not in allowed]
    assert violations == []


def test_apiserver_layers_point_downward() -> None:
    violations = []
    for module, imported in GRAPH.items():
        if _package(module) != "apiserver":
            continue
        part = _apiserver_part(module)
        assert any(part in names for names in APISERVER_LAYERS), f"{module}: {part!r} is in no apiserver layer"
        for other in imported:
            if _package(other) != "apiserver":
                continue
            other_part = _apiserver_part(other)
            if other_part != part and _layer(other_part) >= _layer(part):
                violations.append(f"{module} imports {other}")
    assert violations == []


def test_other_packages_use_only_the_apiserver_public_face() -> None:
    """`clusterset.apiserver` (its `__init__`) is what the fleet, the CLI and `clusterset.testing` may use."""
    violations = [f"{module} imports {other}" for module, imported in GRAPH.items() if _package(module) != "apiserver"
                  for other in imported if _package(other) == "apiserver" and other != "clusterset.apiserver"]
    assert violations == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components: every component of two or more modules (or a module importing
    itself) is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles() -> None:
    assert find_cycles(GRAPH) == []


def test_the_checks_see_what_they_look_for() -> None:
    """The graph holds the imports the files make, and a cycle in it would be found."""
    assert "clusterset.apiserver.registry.rest" in GRAPH["clusterset.apiserver.registry.patching"]
    assert "clusterset.apiserver.storage.store" in GRAPH["clusterset.apiserver.registry.cluster"]
    with_cycle = {**GRAPH, "clusterset.apiserver.storage.store": {"clusterset.apiserver.registry.cluster"}}
    (cycle,) = find_cycles(with_cycle)
    assert {"clusterset.apiserver.registry.cluster", "clusterset.apiserver.storage.store"} <= set(cycle)
