"""The layering rule of ARCHITECTURE.md: imports point downward only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "clusterset"

# a package may import only from the packages listed after it (and itself)
LAYERS = ["cli", "fleet", "inventory", "mcs", "dns", "placement", "work", "runtime", "client", "apiserver", "api"]
FEATURES = {"inventory", "mcs", "dns", "placement", "work"}
ALLOWED: dict[str, set[str]] = {
    "cli": set(LAYERS) | {"testing"},
    "fleet": set(LAYERS) - {"cli"},
    **{f: {f, "runtime", "client", "api"} for f in FEATURES},
    "runtime": {"runtime", "client", "api"},
    "client": {"client", "api"},
    "apiserver": {"apiserver", "api"},
    "api": {"api"},
    "testing": {"apiserver", "api", "fleet", "testing"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clusterset."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("clusterset."):
                    found.add(alias.name.split(".")[1])
    return found


def test_imports_point_downward() -> None:
    violations = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        package = rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__init__" else ""
        if package in ("", "__init__"):
            continue
        allowed = ALLOWED.get(package)
        assert allowed is not None, f"{rel}: package {package!r} is not in the layer table of tests/test_layers.py"
        for imported in _imports(path) - allowed:
            violations.append(f"{rel} imports clusterset.{imported}")
    assert violations == []
