"""The architecture as a test: lower layers never import upper ones, the data layer calls no
model, no two modules import each other (directly or round a loop), and the CLI is the only
place that imports everything."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "openarena"

# base modules: every layer may import them; they import no layer
BASE = {"errors", "text"}  # the error types; message text and valid Unicode text

# layer -> layers it may import (besides itself, the BASE modules and openarena.__init__)
ALLOWED = {
    "providers": set(),
    "demo": {"providers"},  # the mock OpenAI server and the demo registry (serve --demo)
    "data": set(),  # calls no model: the LLM category taggers are judging/taggers.py
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
API_ALLOWED = {"data", "ratings", "analysis", "storage", "providers"}  # providers: the model registry (prices, organisations)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks (annotations only, never run)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            out.update(id(n) for n in ast.walk(node))
    return out


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
            for dep in _imports(path) - allowed - {layer} - BASE:
                bad.append(f"{path.relative_to(PKG)} imports openarena.{dep}")
    assert not bad, "\n".join(bad)


def test_every_package_folder_is_a_known_layer():
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders <= set(ALLOWED), folders - set(ALLOWED)
    modules = {p.stem for p in PKG.glob("*.py")} - {"__init__", "__main__"}
    assert modules <= BASE | {"api"}, modules - BASE - {"api"}


def test_base_modules_import_no_layer():
    for name in BASE:
        assert _imports(PKG / f"{name}.py") <= BASE - {name}, name


def test_the_data_layer_calls_no_model():
    """No module of data/ imports a model client (openai, the providers, the judges, the demo
    server), not even inside a function: the LLM category taggers live in judging/taggers.py."""
    bad = []
    for path in (PKG / "data").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.split(".")[0] == "openai" or name.split(".")[:2] in (["openarena", "providers"], ["openarena", "judging"], ["openarena", "demo"]):
                    bad.append(f"{path.relative_to(PKG)} imports {name}")
    assert not bad, "\n".join(bad)


def _module_graph() -> dict[str, set[str]]:
    """openarena module -> the openarena modules it imports, at module level or inside a
    function (a deferred import still ties the two), leaving out ``if TYPE_CHECKING:`` blocks.
    ``from openarena.x import y`` names the submodule x.y when there is one, else x."""
    def name(path: Path) -> str:
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    files = {name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_nodes(tree)
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("openarena"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    deps.add(sub if sub in files else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name in files)
        graph[mod] = (deps & set(files)) - {mod}
    return graph


def test_no_import_cycles():
    """No module reaches itself through imports (Tarjan's strongly connected components)."""
    graph = _module_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


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
