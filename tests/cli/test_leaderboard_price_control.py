"""`openarena leaderboard SOURCE --control price --prices FILE`: price as a per-model covariate
of the leaderboard's own contextual fit (openarena.leaderboard(control={"log_price": ...})),
equal to the separate `trust price-control` analysis on simulated and real votes."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import openarena
from openarena.analysis.trust.frontier import price_control
from openarena.cli.main import app
from openarena.errors import OpenArenaError
from openarena.ratings.simulate import simulate_battles
from tests.conftest import shared_file

runner = CliRunner()
TEN_K = "arena_catalog/topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def sim(tmp_path):
    """Six models; dearer ones stronger (the truth a price covariate picks up); m05 has no price."""
    theta = np.linspace(-1.0, 1.0, 6)
    votes = tmp_path / "votes.csv"
    simulate_battles(theta, 6000, seed=3).frame.to_csv(votes, index=False)
    prices = pd.DataFrame([(f"m{i:02d}", 0.5 * 3**i, 1.5 * 3**i) for i in range(5)], columns=["model", "input_price", "output_price"])
    path = tmp_path / "prices.csv"
    prices.to_csv(path, index=False)
    return votes, path, prices


def test_price_control_equals_the_trust_analysis(sim, tmp_path):
    votes, path, prices = sim
    out = tmp_path / "lb.csv"
    r = run("leaderboard", votes, "--control", "price", "--prices", path, "--prior", "1", "--format", "csv", "-o", out)
    assert r.exit_code == 0, r.output
    assert "left out 1 model(s) without a log_price value: m05" in r.output
    got = pd.read_csv(out).set_index("model")["rating"].sort_index()
    ref, plain, excluded = price_control(openarena.load(votes), prices, prior=1.0)
    assert excluded == ["m05"]
    assert np.allclose(got, ref.table.set_index("model")["rating"].sort_index(), atol=1e-6)
    # the public API, three lines, same board and the coefficient's sign (dearer = stronger here)
    lb = openarena.leaderboard(openarena.load(votes), control={"log_price": openarena.api.model_prices(prices)}, prior=1.0)
    assert np.allclose(lb.table.set_index("model")["rating"].sort_index(), got, atol=1e-6)
    coef = lb.coefficients.set_index("name").loc["log_price"]
    assert coef["coef"] > 0 and coef["coef_q025"] > 0
    assert coef["coef"] == pytest.approx(float(ref.coefficients.set_index("name").loc["log_price", "coef"]))
    assert [s.name for s in lb.counts.steps] == ["no_value"]


def test_price_control_with_style_names_and_errors(sim):
    votes, path, _ = sim
    r = run("leaderboard", votes, "--control", "price", "--prices", path)
    assert r.exit_code == 2 and "--prior 1" in r.output and "prior=" not in r.output
    r = run("leaderboard", votes, "--control", "price", "--prior", "1")
    assert r.exit_code == 2 and "--prices" in r.output
    r = run("leaderboard", votes, "--prices", path)
    assert r.exit_code == 2 and "--control price" in r.output
    r = run("leaderboard", votes, "--control", "price", "--prices", path, "--prior", "1", "--price-weights", "x")
    assert r.exit_code == 2 and "--price-weights" in r.output
    with pytest.raises(OpenArenaError, match="prior=1"):
        openarena.leaderboard(openarena.load(votes), control={"log_price": {"m00": 0.0}})
    with pytest.raises(OpenArenaError, match="finite"):
        openarena.leaderboard(openarena.load(votes), control=[{"log_price": {"m00": "cheap"}}], prior=1.0)


def test_price_control_on_real_votes_matches_trust_price_control():
    src = shared_file(TEN_K)
    d = shared_file("arena_catalog/data")
    prices = ["--prices", d / "scatterplot-data.json", "--prices", d / "pricing_table.csv"]
    r = run("leaderboard", src, "--control", "price", *prices, "--prior", "1", "--format", "csv", "-q")
    assert r.exit_code == 0, r.output
    board = pd.read_csv(io.StringIO(r.stdout)).set_index("model")["rating"].sort_index()
    r = run("trust", "price-control", src, *prices, "--format", "json", "-q")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    ref = pd.DataFrame(doc["rows"]).set_index("model")
    assert set(board.index) == set(ref.index) and len(board) > 10
    assert np.allclose(board, ref["rating"].sort_index(), atol=1e-6)


def test_an_unreadable_price_file_is_one_line_and_exit_2(sim, tmp_path):
    votes, _, _ = sim
    bad = tmp_path / "prices.csv"
    bad.write_bytes(b"\xff\xfemodel,price\nm00,1\n")  # not UTF-8: was a UnicodeDecodeError traceback
    r = run("leaderboard", votes, "--control", "price", "--prices", bad, "--prior", "1")
    assert r.exit_code == 2 and "prices.csv" in r.output and "UTF-8" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_the_table_title_names_the_covariate_not_style(sim):
    votes, path, prices = sim
    r = run("leaderboard", votes, "--control", "price", "--prices", path, "--prior", "1")
    assert r.exit_code == 0, r.output
    title = " ".join(r.output.split())
    assert "controlled for log_price" in title and "style control" not in title
