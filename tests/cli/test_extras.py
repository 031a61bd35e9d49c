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
