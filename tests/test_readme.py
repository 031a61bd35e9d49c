"""The README's Python example runs as written (doctest) and gives the same board as the
command line on the same votes."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "README.md has no ```python block"
    return blocks[0]


def test_readme_python_example_is_a_passing_doctest_equal_to_the_cli(tmp_path):
    text = _python_block()
    globs: dict = {}
    test = doctest.DocTestParser().get_doctest(text, globs, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test, clear_globs=False)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 3 and result.failed == 0

    board = test.globs["board"].to_frame()
    votes_csv = tmp_path / "votes.csv"
    test.globs["votes"].to_csv(votes_csv, index=False)
    from openarena.cli.main import app

    out = tmp_path / "cli.csv"
    r = CliRunner().invoke(app, ["leaderboard", str(votes_csv), "--anchor", "mean", "--format", "csv", "-o", str(out), "-q"])
    assert r.exit_code == 0, r.output
    cli = pd.read_csv(out)
    cols = ["rank_ub", "model", "rating", "rating_q025", "rating_q975", "num_battles"]
    pd.testing.assert_frame_equal(cli[cols], board[cols].reset_index(drop=True), check_dtype=False, rtol=1e-9)


def test_import_openarena_is_cheap():
    """A CSV run must not pay for matplotlib, plotly or the web stack at import time."""
    import subprocess
    import sys

    code = "import sys, openarena; print(','.join(m for m in ('pandas', 'matplotlib', 'plotly', 'fastapi', 'sqlalchemy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
    code = "import sys, openarena; openarena.load; print(','.join(m for m in ('matplotlib', 'plotly', 'fastapi', 'sqlalchemy') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == ""
