"""The architecture as a test: lower layers never import upper ones, and the CLI is the only
place that imports everything."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "openarena"

# layer -> layers it may import (besides itself and openarena.errors / openarena.__init__)
ALLOWED = {
    "providers": set(),
    "demo": {"providers"},  # the mock OpenAI server and the demo registry (serve --demo)
    "data": {"providers"},
    "engines": {"data"},  # aggregation where the votes live (numpy, DuckDB, Spark) -> PairCounts
    "ratings": {"data", "engines"},
    "analysis": {"data", "ratings", "engines"},
    "storage": {"data"},
    "judging": {"data", "ratings", "analysis", "providers"},
    "routing": {"data", "ratings", "analysis", "providers"},
    "serving": {"data", "ratings", "analysis", "providers", "demo", "storage", "api"},
    "cli": {"data", "ratings", "analysis", "providers", "demo", "storage", "serving", "judging", "routing", "api", "engines"},
}
# the public API module (src/openarena/api.py): the one pipeline, above analysis and storage,
# below serving and cli
API_ALLOWED = {"data", "ratings", "analysis", "storage"}


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


def test_the_public_api_module_sits_between_analysis_and_the_entry_points():
    assert _imports(PKG / "api.py") - API_ALLOWED - {"api", "errors"} == set()
    # nothing below the API imports it
    bad = [str(p.relative_to(PKG)) for layer in ("data", "ratings", "analysis", "storage", "providers") for p in (PKG / layer).rglob("*.py") if "api" in _imports(p)]
    assert not bad, bad


def test_lower_layers_name_parameters_not_cli_flags():
    """Errors below the CLI name fields and values (``min_battles=N``), never a flag (``--min-battles``):
    the CLI translates them (openarena.cli.common.as_flags), the web page uses plain words."""
    import re

    flag = re.compile(r"(^|[\s(/'\"])--[a-z][a-z-]+")
    bad = []
    files = [PKG / "api.py"] + [p for layer in ("data", "ratings", "analysis") for p in (PKG / layer).rglob("*.py")]
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and flag.search(node.value):
                bad.append(f"{path.relative_to(PKG)}:{node.lineno}: {node.value[:80]!r}")
    assert not bad, "\n".join(bad)
