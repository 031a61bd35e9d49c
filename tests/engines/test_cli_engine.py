"""`openarena leaderboard FOLDER --engine duckdb|numpy` gives the same board; what needs rows is
refused with exit 2; a glob works; the incremental store is used on the second run."""

from __future__ import annotations

import io

import pandas as pd
from typer.testing import CliRunner

from openarena.cli.main import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_engines_give_the_same_board(parquet_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENARENA_COUNTS_CACHE", str(tmp_path / "store"))
    boards = {}
    for engine in ("numpy", "duckdb"):
        out = tmp_path / f"{engine}.csv"
        r = run("leaderboard", parquet_folder, "--engine", engine, "--anony", "--exclude", "model-02", "-f", "csv", "-o", out, "-q")
        assert r.exit_code == 0, r.output
        boards[engine] = pd.read_csv(out).set_index("model").sort_index()
    pd.testing.assert_frame_equal(boards["numpy"], boards["duckdb"], check_exact=False, rtol=1e-12)
    assert "model-02" not in boards["duckdb"].index and len(boards["duckdb"]) == 11
    r = runner.invoke(app, ["leaderboard", str(parquet_folder / "*" / "*.parquet"), "--engine", "duckdb", "--anony", "--exclude", "model-02", "-f", "csv"])
    assert r.exit_code == 0, r.output
    assert "4 from the stored aggregate" in r.stderr  # the second run read no file
    glob_board = pd.read_csv(io.StringIO(r.stdout)).set_index("model").sort_index()
    pd.testing.assert_frame_equal(glob_board, boards["duckdb"], check_exact=False, rtol=1e-12)


def test_row_features_are_refused_with_an_engine(parquet_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENARENA_COUNTS_CACHE", "off")
    r = run("leaderboard", parquet_folder, "--engine", "duckdb", "--rating", "elo")
    assert r.exit_code == 2
    assert "--engine duckdb aggregates votes to pair counts, but --rating elo needs battle rows" in r.output
    r = run("leaderboard", parquet_folder, "--engine", "polars")
    assert r.exit_code == 2
