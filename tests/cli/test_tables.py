"""Result tables in a narrow terminal: model names are never cut with an ellipsis, numbers are
written as people read them (10,000, not 1e+04), and `--help` text wraps to the terminal."""

from __future__ import annotations

import io
import re

import numpy as np
from rich.console import Console

from openarena.cli.common import format_number, results_table

LONG = "llama-3.1-nemotron-70b-instruct-hf-2024-10-15"


def _render(table, width: int) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(table)
    return buf.getvalue()


def test_model_names_fold_instead_of_truncating_at_80_columns():
    t = results_table("board", ("Rank (UB)", "Model", "Arena Score", "95% CI", "Votes", "Organization", "License"))
    t.add_row("1", LONG, "1315.2", "+5.1/-5.1", "14,514", "Nvidia", "Llama 3.1 Community")
    t.add_row("2", "gpt-4o-2024-05-13", "1285.8", "+12.9/-12.9", "1,677,509", "OpenAI", "Proprietary")
    out = _render(t, 80)
    assert "…" not in out
    # every character of every cell is on screen, in order, possibly over several lines
    rows = [line.split("│")[1:-1] for line in out.splitlines() if line.startswith("│")]
    column = lambda k: "".join(r[k].strip() for r in rows)
    assert column(1) == LONG + "gpt-4o-2024-05-13"
    assert column(3) == "+5.1/-5.1+12.9/-12.9"
    assert column(6).replace(" ", "") == "Llama3.1CommunityProprietary"


def test_format_number():
    assert format_number(10000.0) == "10,000"
    assert format_number(np.int64(1670250)) == "1,670,250"
    assert format_number(135.6123) == "135.6"
    assert format_number(12345.678) == "12,345.7"
    assert format_number(0.00012) == "1.20e-04"
    assert format_number(float("nan")) == ""
    assert format_number(True) == "True"
    assert format_number("gpt-4o") == "gpt-4o"


def test_help_paragraphs_wrap_to_the_terminal(monkeypatch):
    from typer.testing import CliRunner

    from openarena.cli.main import app

    monkeypatch.setenv("COLUMNS", "100")
    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "100"}).output
    # the docstring is hard-wrapped in the source after "--outage"; the help joins the lines
    assert "--outage names" in " ".join(out.split())
    assert re.search(r"--outage +names,", out), out  # on one line at 100 columns, not broken where the source is


def test_a_column_has_one_format():
    from openarena.cli.common import column_formatter

    f = column_formatter([951.0, 1218.4, float("nan"), 1000.25])
    assert [f(v) for v in (951.0, 1218.4, 1000.25)] == ["951.0", "1,218.4", "1,000.2"] and f(float("nan")) == ""
    shifts = column_formatter([33.0, 73.22, -6.417])
    assert [shifts(v) for v in (33.0, 73.22, -6.417)] == ["33.0", "73.2", "-6.4"]
    counts = column_formatter([np.int64(12), np.int64(1670250)])
    assert counts(np.int64(1670250)) == "1,670,250" and counts(np.int64(12)) == "12"
    p = column_formatter([0.5, 0.00012, 1.0])
    assert p(0.00012) == "1.20e-04" and p(0.5) == "0.5"
    z = column_formatter([7.181, 4.21, -4.326])
    assert [z(v) for v in (7.181, 4.21)] == ["7.181", "4.210"]
    words = column_formatter(["gpt-4o", "claude"])
    assert words("gpt-4o") == "gpt-4o"
