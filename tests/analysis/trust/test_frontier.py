"""Pareto frontier (known answers), price readers on the arena's and litellm's real files, and
price control on the 10k real votes compared with LMArena's published price-controlled ranking."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from openarena.analysis.trust.frontier import (
    DOMINATED,
    FRONTIER,
    POSSIBLY,
    build_frontier,
    pareto_frontier,
    parse_weights,
    price_control,
    read_prices,
    read_ratings,
)
from openarena.errors import DataError
from tests.conftest import shared_file


def test_frontier_by_hand():
    price = np.array([1.0, 2.0, 2.0, 4.0, 8.0, 0.5])
    rating = np.array([1100, 1150, 1140, 1145, 1200, 1000.0])
    upper = rating + np.array([5, 5, 15, 3, 5, 5])
    s = pareto_frontier(price, rating, upper)
    # 2.0/1140 is beaten by 2.0/1150 at the same price but its interval reaches 1150
    # 4.0/1145 is beaten by the cheaper 1150 and its upper bound 1148 does not reach it
    assert list(s) == [FRONTIER, FRONTIER, POSSIBLY, DOMINATED, FRONTIER, FRONTIER]


def test_blended_price_weights(tmp_path):
    r = pd.DataFrame({"model": ["a", "b"], "rating": [1000.0, 1100.0], "rating_q025": [990.0, 1090.0], "rating_q975": [1010.0, 1110.0]})
    p = pd.DataFrame({"model": ["a", "b"], "input_price": [1.0, 2.0], "output_price": [5.0, 10.0]})
    fr = build_frontier(r, p, parse_weights("3:1"))
    assert fr.table.set_index("model").loc["a", "price"] == pytest.approx(2.0)  # (3*1 + 5) / 4
    with pytest.raises(DataError, match="price_weights"):
        parse_weights("three:one")


def test_readers_on_the_arena_files():
    d = shared_file("arena_catalog/data")
    sp = read_prices(d / "scatterplot-data.json").set_index("model")
    assert sp.loc["o1-preview", "input_price"] == 15 and sp.loc["o1-preview", "output_price"] == 60
    pt = read_prices(d / "pricing_table.csv").set_index("model")
    assert pt.loc["chatgpt-4o-latest-20240903", "output_price"] == 15
    lite = read_prices(shared_file("litellm/model_prices_and_context_window_backup.json")).set_index("model")
    assert lite.loc["gpt-4o-mini", "input_price"] == pytest.approx(0.15)
    r = read_ratings(d / "leaderboard-text.json")
    assert len(r) == 282
    fr = build_frontier(r, [read_prices(d / "scatterplot-data.json"), read_prices(d / "pricing_table.csv")])
    f = fr.table[fr.table.on_frontier]
    assert f["rating"].is_monotonic_increasing and f["price"].is_monotonic_increasing
    assert f.iloc[-1]["model"] == fr.table.loc[fr.table.rating.idxmax(), "model"]  # the best model closes the frontier


def test_bad_price_file_is_named(tmp_path):
    p = tmp_path / "prices.csv"
    p.write_text("model,input_price,output_price\na,1,2\nb,cheap,3\n")
    with pytest.raises(DataError, match=r"prices.csv: row 2, field .input_price."):
        read_prices(p)


def test_price_control_on_real_votes_moves_cheap_models_up_as_published():
    """Different data (10k English votes of mid-2024 vs the arena's Nov 2024 board), so we
    compare the coefficient's sign and the direction of each model's shift, not values."""
    from openarena.data.readers import read_battles

    d = shared_file("arena_catalog")
    prices = pd.concat([read_prices(d / "data" / "scatterplot-data.json"), read_prices(d / "data" / "pricing_table.csv")])
    b = read_battles(d / "topic_clustering/data/embedding_ablation/mpnet/recent_english_llm_category.csv")
    lb, plain, excluded = price_control(b, prices, prior=1.0)
    c = lb.coefficients.iloc[0]
    assert c["coef_q025"] > 0  # expensive models win more votes: controlling lifts cheap ones
    pub_raw = pd.read_csv(d / "data_rankings/overall_raw_ranking_with_index.csv").set_index("Model")["Score"]
    pub_pc = pd.read_csv(d / "data_rankings/overall_ranking_controlled_for_price.csv").set_index("Model")["Score"]
    ours = lb.table.set_index("model")["rating"] - plain.table.set_index("model")["rating"]
    shared_models = [m for m in ours.index if m in pub_raw.index and m in pub_pc.index]
    assert len(shared_models) >= 40
    rho = spearmanr(ours[shared_models], (pub_pc - pub_raw)[shared_models])[0]
    assert rho > 0.6, rho


@pytest.mark.parametrize("name,content", [
    ("latin1.csv", b"\xff\xfemodel,price\nx,1\n"),  # not UTF-8: was a UnicodeDecodeError traceback
    ("empty.csv", b""),  # was pandas' EmptyDataError
    ("scalar.json", b"5"),  # was a TypeError
    ("quoted.csv", b'model,price\n"a,1\n'),  # an unterminated quote: pandas' ParserError
])
def test_unreadable_price_files_are_one_data_error(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DataError, match=name):
        read_prices(p)
