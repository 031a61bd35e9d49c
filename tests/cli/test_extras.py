"""`pip install openarena` is the analysis library: a CSV leaderboard imports neither the web
stack nor database drivers nor the LLM client; a command that needs an extra says which."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pair_counts_small.json"
HEAVY = ("fastapi", "uvicorn", "sqlalchemy", "psycopg", "openai", "jinja2", "matplotlib", "plotly")


def test_a_file_leaderboard_needs_no_extra():
    code = (
        "import sys; sys.argv = ['openarena', 'leaderboard', %r, '-q', '-f', 'csv']\n"
        "from openarena.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', ','.join(m for m in %r if m in sys.modules))" % (str(FIXTURE), HEAVY)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("rank_ub,model") and out.strip().splitlines()[-1] == "LOADED"


def test_a_missing_extra_is_named():
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def imp(name, *a, **k):\n"
        "    if name.split('.')[0] == 'fastapi':\n"
        "        raise ModuleNotFoundError('No module named fastapi', name='fastapi')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = imp\n"
        "sys.argv = ['openarena', 'serve', '--demo']\n"
        "from openarena.cli.main import run\nrun()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and "pip install 'openarena[serve]'" in r.stderr and "Traceback" not in r.stderr


def test_a_command_imports_its_own_module_only_and_python_m_works():
    """`python -m openarena leaderboard` builds the leaderboard command alone: the other
    command modules (judge, serve, trust, ...) and their parameters are not loaded."""
    code = (
        "import runpy, sys; sys.argv = ['openarena', 'leaderboard', %r, '-q', '-f', 'csv']\n"
        "try:\n    runpy.run_module('openarena', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', ','.join(sorted(m for m in sys.modules if m.startswith('openarena.cli.'))))" % str(FIXTURE)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("rank_ub,model")
    assert out.strip().splitlines()[-1] == "LOADED openarena.cli.common,openarena.cli.leaderboard,openarena.cli.main"


def _leaderboard_csv_imports(source: Path) -> tuple[str, set[str]]:
    """stdout of `python -m openarena leaderboard SOURCE --ci sandwich -q -f csv` in a fresh
    interpreter, and which of the heavy libraries it imported."""
    heavy = ("pandas", "duckdb", "httpx", "matplotlib", "scipy", "sklearn", "pyarrow.dataset")
    code = (
        "import runpy, sys; sys.argv = ['openarena', 'leaderboard', %r, '--ci', 'sandwich', '-q', '-f', 'csv']\n"
        "try:\n    runpy.run_module('openarena', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED', ','.join(m for m in %r if m in sys.modules))" % (str(source), heavy)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    return "\n".join(lines[:-1]) + "\n", set(filter(None, lines[-1].removeprefix("LOADED").strip().split(",")))


def test_a_csv_leaderboard_of_pair_counts_or_one_parquet_file_imports_no_pandas(tmp_path):
    """The CSV leaderboard of pair counts (a registry dataset, a leaderbot JSON) or of one
    Parquet file of votes is read, fitted and written without pandas, DuckDB (it is not
    needed below openarena.engines.AUTO_DUCKDB_ROWS), httpx or matplotlib, and prints the
    same CSV as the library's pandas DataFrame of the board."""
    import pandas as pd

    import openarena

    text, loaded = _leaderboard_csv_imports(FIXTURE)
    assert loaded == set()
    board = openarena.leaderboard(str(FIXTURE))
    assert text == board.to_frame().to_csv(index=False, float_format="%.10g")

    votes = openarena.load(str(FIXTURE)).to_battles(seed=1).frame
    path = tmp_path / "votes.parquet"
    votes.to_parquet(path, index=False)
    text, loaded = _leaderboard_csv_imports(path)
    assert loaded == set()
    rows = openarena.leaderboard(pd.read_parquet(path))
    assert text == rows.to_frame().to_csv(index=False, float_format="%.10g")
    assert text.startswith("rank_ub,model,rating,rating_q025,rating_q975,num_battles,variance,win_rate\n") and len(text.splitlines()) == len(rows.table) + 1
