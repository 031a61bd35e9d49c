"""The figures people expect beside the leaderboard (issue 9): every model's CI plot, the
predicted and observed win-rate heatmaps and the battle-count matrix as PNG and interactive HTML,
style coefficients with intervals; the matrices hold the right numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from openarena.analysis.report import matrices
from openarena.api import leaderboard
from openarena.cli.main import app
from openarena.ratings.simulate import simulate_battles

PNG = b"\x89PNG\r\n\x1a\n"


def _votes(tmp_path, n=800):
    f = simulate_battles(np.array([0.0, 0.6, -0.4, 1.0]), n, seed=3).frame[["model_a", "model_b", "winner"]]
    path = tmp_path / "votes.csv"
    f.to_csv(path, index=False)
    return path, f


def test_out_dir_writes_heatmaps_and_counts_as_png_and_html(tmp_path):
    src, _ = _votes(tmp_path)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["leaderboard", str(src), "--out-dir", str(out), "-q"])
    assert r.exit_code == 0, r.output
    for kind in ("predicted", "observed", "counts"):
        assert (out / f"leaderboard_{kind}.png").read_bytes()[:8] == PNG
        page = (out / f"leaderboard_{kind}.html").read_text()
        assert "plotly" in page and "m03" in page
    assert (out / "leaderboard_ci.png").read_bytes()[:8] == PNG
    assert (out / "plotly.min.js").stat().st_size > 1_000_000  # the pages work offline


def test_matrices_hold_the_right_numbers(tmp_path):
    _, frame = _votes(tmp_path)
    lb = leaderboard(frame, anchor="mean")
    m = matrices(lb)
    r = lb.table.set_index("model")["rating"]
    a, b = lb.models[0], lb.models[1]
    assert m["predicted"].loc[a, b] == np.float64(1 / (1 + 10 ** ((r[b] - r[a]) / 400)))
    assert abs(m["predicted"].loc[a, b] + m["predicted"].loc[b, a] - 1) < 1e-12
    pair = frame[((frame.model_a == a) & (frame.model_b == b)) | ((frame.model_a == b) & (frame.model_b == a))]
    assert m["counts"].loc[a, b] == m["counts"].loc[b, a] == len(pair)
    wins_a = ((pair.model_a == a) & (pair.winner == "model_a")).sum() + ((pair.model_b == a) & (pair.winner == "model_b")).sum()
    decisive = pair.winner.isin(["model_a", "model_b"]).sum()
    assert abs(m["observed"].loc[a, b] - wins_a / decisive) < 1e-12
    assert lb.plot("counts")[:8] == PNG and lb.to_csv().startswith("rank_ub,model")


def test_style_board_writes_its_coefficients_with_intervals(tmp_path):
    _, frame = _votes(tmp_path, 1200)
    frame = frame.copy()
    frame["len_a"], frame["len_b"] = np.arange(len(frame)) % 7, np.arange(len(frame)) % 5
    lb = leaderboard(frame, control="len", anchor="mean")
    paths = lb.write(tmp_path / "style")
    assert paths["coefficients plot"].read_bytes()[:8] == PNG
    coef = pd.read_csv(paths["coefficients"])
    assert list(coef["name"]) == ["len"] and (coef.coef_q025 < coef.coef).all() and (coef.coef < coef.coef_q975).all()
