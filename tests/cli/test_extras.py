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
