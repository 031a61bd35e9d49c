"""``openarena redteam leaderboard`` end to end: the documented CSV columns, JSON boards, a
Parquet source, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from openarena.cli.main import app
from openarena.ratings.extended_bt import simulate_rounds

runner = CliRunner()


def _rounds_file(tmp_path, suffix=".csv"):
    rng = np.random.default_rng(0)
    rounds = simulate_rounds(rng.normal(0, 1, 25), rng.normal(0, 0.7, 4), rng.normal(0, 0.7, 3), 24, seed=1)
    frame = rounds.frame.copy()
    frame["outcome"] = np.where(frame.pop("won"), "win", "loss")
    path = tmp_path / f"rounds{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_csv_has_the_documented_columns_and_three_kinds(tmp_path):
    src = _rounds_file(tmp_path)
    out = tmp_path / "board.csv"
    r = run("redteam", "leaderboard", src, "--format", "csv", "-o", out)
    assert r.exit_code == 0, r.output
    t = pd.read_csv(out)
    assert list(t.columns) == ["kind", "name", "rating", "rating_q025", "rating_q975", "num_rounds"]
    assert t.groupby("kind").size().to_dict() == {"model": 4, "player": 25, "target": 3}
    assert (t["rating_q025"] < t["rating"]).all() and (t["rating"] < t["rating_q975"]).all()
    # each round counted once per kind
    assert (t.groupby("kind")["num_rounds"].sum() == 25 * 24).all()
    # models and targets have mean 1000 (mean-zero robustness and difficulty on the Elo scale)
    assert abs(t[t.kind == "model"]["rating"].mean() - 1000) < 1e-3  # 4 decimals in the CSV


def test_json_and_parquet_and_bootstrap(tmp_path):
    src = _rounds_file(tmp_path, ".parquet")
    r = run("redteam", "leaderboard", src, "--format", "json", "--ci", "bootstrap", "--rounds", "20")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"options", "players", "models", "targets"}
    assert doc["options"]["bootstrap_rounds"] == 20 and len(doc["models"]) == 4
    assert set(doc["players"][0]) == {"name", "rating", "rating_q025", "rating_q975", "num_rounds"}


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("player,model,target,outcome\nann,m1,t1,win\nbob,m1,t1,maybe\n")
    r = run("redteam", "leaderboard", bad)
    assert r.exit_code == 2
    assert "row 2, field 'outcome': unknown outcome 'maybe'" in r.output
    r = run("redteam", "leaderboard", tmp_path / "missing.csv")
    assert r.exit_code == 2 and "no such file" in r.output
    r = run("redteam", "leaderboard", _rounds_file(tmp_path), "--player-prior", "-3")
    assert r.exit_code == 2 and "--player-prior" in r.output
    r = run("redteam", "leaderboard", _rounds_file(tmp_path), "--level", "1.5")
    assert r.exit_code == 2


def test_robustness_beside_the_arena_score(tmp_path):
    """`leaderboard --robustness ROUNDS`: each red-teamed model's robustness (with interval) in
    the board's CSV and table; models never red-teamed get NaN and 0 rounds."""
    battles = tmp_path / "battles.csv"
    rng = np.random.default_rng(3)
    models = ["m000", "m001", "m002", "chat-only"]
    rows = []
    for _ in range(600):
        a, b = rng.choice(4, 2, replace=False)
        rows.append((models[a], models[b], ["model_a", "model_b", "tie"][rng.integers(3)]))
    pd.DataFrame(rows, columns=["model_a", "model_b", "winner"]).to_csv(battles, index=False)
    rounds = _rounds_file(tmp_path)  # models m000..m003
    r = run("leaderboard", battles, "--robustness", rounds, "--format", "csv", "-q")
    assert r.exit_code == 0, r.output
    from io import StringIO

    t = pd.read_csv(StringIO(r.stdout)).set_index("model")
    assert {"robustness", "robustness_q025", "robustness_q975", "redteam_rounds"} <= set(t.columns)
    assert np.isnan(t.loc["chat-only", "robustness"]) and t.loc["chat-only", "redteam_rounds"] == 0
    assert t.loc["m000", "robustness_q025"] < t.loc["m000", "robustness"] < t.loc["m000", "robustness_q975"]
    r = run("leaderboard", battles, "--robustness", rounds, "-q")
    assert r.exit_code == 0 and "Robustness" in r.stdout  # (the header may wrap in a narrow terminal)
    bad = run("leaderboard", battles, "--robustness", tmp_path / "nope.csv", "-q")
    assert bad.exit_code == 2 and "no such file" in bad.output
