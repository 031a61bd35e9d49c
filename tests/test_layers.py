"""The architecture as a test: lower layers never import upper ones, and the CLI is the only
place that imports everything."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "openarena"

# layer -> layers it may import (besides itself and openarena.errors / openarena.__init__)
ALLOWED = {
    "providers": set(),
    "data": {"providers"},
    "engines": {"data"},  # aggregation where the votes live (numpy, DuckDB, Spark) -> PairCounts
    "ratings": {"data", "engines"},
    "analysis": {"data", "ratings", "engines"},
    "storage": {"data"},
    "judging": {"data", "ratings", "analysis", "providers"},
    "serving": {"data", "ratings", "analysis", "providers", "storage"},
    "cli": {"data", "ratings", "analysis", "providers", "storage", "serving", "judging", "engines"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("openarena."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("openarena."):
                    out.add(alias.name.split(".")[1])
    return out


def test_every_layer_imports_only_the_layers_below_it():
    bad = []
    for layer, allowed in ALLOWED.items():
        for path in (PKG / layer).rglob("*.py"):
            for dep in _imports(path) - allowed - {layer, "errors"}:
                bad.append(f"{path.relative_to(PKG)} imports openarena.{dep}")
    assert not bad, "\n".join(bad)


def test_every_package_folder_is_a_known_layer():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= set(ALLOWED), folders - set(ALLOWED)
