"""The trust analyses side by side (openarena.trust_report, the arena's Trust page): every part
checked against simulated truth or an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import openarena
from openarena.analysis.trust.variants import provisional_flags
from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.ratings.simulate import simulate_battles

DAY = 86400.0
#: four models far apart (true ranks 1..4 known) and one close pair
THETA = np.array([1.6, 0.8, 0.0, -0.8, -0.75])
NAMES = ["ace", "bolt", "core", "dune", "echo"]
ORGS = {"ace": "Alpha Labs", "bolt": "Alpha Labs", "core": "Beta AI", "dune": "Gamma"}  # echo: no organisation
PRICES = pd.DataFrame([("ace", 10.0, 30.0), ("bolt", 1.0, 3.0), ("core", 2.0, 6.0), ("dune", 0.1, 0.3)], columns=["model", "input_price", "output_price"])


def _votes(change: float = 0.0, n: int = 6000, seed: int = 0, days: float = 14.0) -> BattleTable:
    """Votes over ``days`` days in two halves; 'core' gains ``change`` logits in the second."""
    t2 = THETA.copy()
    t2[2] += change
    f1 = simulate_battles(THETA, n, seed=2 * seed, models=NAMES).frame
    f2 = simulate_battles(t2, n, seed=2 * seed + 1, models=NAMES).frame
    rng = np.random.default_rng(seed)
    f1["tstamp"] = 1.7e9 + rng.uniform(0, days / 2 * DAY, n)
    f2["tstamp"] = 1.7e9 + rng.uniform(days / 2 * DAY, days * DAY, n)
    return BattleTable(pd.concat([f1, f2], ignore_index=True), source="sim")


def test_every_part_against_truth_or_an_independent_count():
    data = _votes(change=0.6)
    f = data.frame
    votes = pd.concat([f["model_a"], f["model_b"]]).value_counts()
    n_prov = int(votes.median())  # N among the models' vote counts: some provisional, some not
    rep = openarena.trust_report(data, organizations=ORGS, prices=PRICES, window="7d", provisional_votes=n_prov)
    assert rep.missing == {}
    assert rep.n_votes == len(f) == 12000

    # provider shares: battles in which a model of the provider took part, counted directly
    prov = rep.providers.providers.set_index("provider")
    for org in ("Alpha Labs", "Beta AI", "Gamma", "(unknown)"):
        mine = {m for m in NAMES if ORGS.get(m, "(unknown)") == org}
        n = int((f["model_a"].isin(mine) | f["model_b"].isin(mine)).sum())
        assert prov.loc[org, "battles"] == n and prov.loc[org, "vote_share"] == pytest.approx(n / len(f))

    # provisional: fewer than N votes since first seen (all of a model's votes here)
    flags = rep.provisional.set_index("model")
    for m in NAMES:
        assert flags.loc[m, "votes"] == votes[m] and flags.loc[m, "provisional"] == (votes[m] < n_prov)
    assert flags["provisional"].sum() == 2 and rep.provisional_votes == n_prov
    assert flags.loc["ace", "since"] == pd.Timestamp(f.loc[(f.model_a == "ace") | (f.model_b == "ace"), "tstamp"].min(), unit="s", tz="UTC")

    # drift: the planted change (0.6 logits = 104 points) is the one alarm, with its size
    d = rep.drift.table.set_index("model")
    assert list(d.index[d["drifted"]]) == ["core"]
    assert abs(d.loc["core", "delta"] - 0.6 * 400 / np.log(10)) < 4 * d.loc["core", "se"]

    # frontier: statuses equal a brute-force dominance check on the blended 3:1 price
    fr = rep.frontier.table.set_index("model")
    blended = {r.model: (3 * r.input_price + r.output_price) / 4 for r in PRICES.itertuples()}
    assert set(fr.index) == set(blended) and rep.frontier.unpriced == ["echo"]
    for m in fr.index:
        dominated = any(blended[o] <= blended[m] and fr.loc[o, "rating"] >= fr.loc[m, "rating"]
                        and (blended[o] < blended[m] or fr.loc[o, "rating"] > fr.loc[m, "rating"]) for o in fr.index if o != m)
        assert fr.loc[m, "price"] == pytest.approx(blended[m]) and bool(fr.loc[m, "on_frontier"]) == (not dominated)
    assert bool(fr.loc["ace", "on_frontier"]) and bool(fr.loc["dune", "on_frontier"])

    # rank intervals: simultaneous, so every true rank inside; far-apart models pinned
    ranks = rep.ranks.set_index("model")
    true_rank = {"ace": 1, "bolt": 2, "core": 3, "dune": 4, "echo": 5}  # core's second half (0.6) stays below bolt (0.8)
    for m, r in true_rank.items():
        assert ranks.loc[m, "rank_lower"] <= r <= ranks.loc[m, "rank_upper"], (m, ranks.loc[m].to_dict())
    assert (ranks.loc["ace", "rank_lower"], ranks.loc["ace", "rank_upper"]) == (1, 1)
    assert ranks.loc["dune", "rank_upper"] == 5 and ranks.loc["echo", "rank_lower"] == 4  # 0.05 logits apart: not separable


def test_parts_the_data_cannot_support_are_named_not_raised():
    short = _votes(n=1500, days=2.0)  # two days: one 7-day window
    rep = openarena.trust_report(short, organizations=ORGS, prices=None, window="7d")
    assert rep.missing == {"drift": "not_enough_data", "frontier": "no_prices"}
    assert rep.drift is None and rep.frontier is None and rep.ranks is not None
    one_price = PRICES.iloc[:1]
    rep = openarena.trust_report(short.frame[["model_a", "model_b", "winner"]], prices=one_price)
    assert rep.missing == {"drift": "no_timestamps", "frontier": "few_prices"}
    assert set(rep.providers.providers["provider"]) == {"(unknown)"}
    with pytest.raises(DataError, match="window"):
        openarena.trust_report(short, window="soon")


def test_provisional_counts_votes_since_a_release_date():
    data = _votes(n=1000)
    cut = pd.Timestamp(1.7e9 + 7 * DAY, unit="s", tz="UTC")
    flags = provisional_flags(data, released_at={"core": cut.isoformat()}, provisional_votes=500).set_index("model")
    f = data.frame
    fresh = int((((f.model_a == "core") | (f.model_b == "core")) & (f.tstamp >= cut.timestamp())).sum())
    assert flags.loc["core", "fresh_votes"] == fresh and flags.loc["core", "since"] == cut
    assert flags.loc["core", "provisional"] == (fresh < 500) and flags.loc["core", "votes"] > fresh
    with pytest.raises(DataError, match="released_at"):
        provisional_flags(data, released_at={"nobody": "2024-01-01"})


def test_trust_report_names_a_malformed_organizations_or_prices_argument(tmp_path):
    """Passing what the CLI takes (paths) works; passing something else is a DataError naming
    the parameter, not a raw ValueError/TypeError from inside."""
    import pandas as pd
    import pytest

    import openarena
    from openarena.api import _trust_inputs
    from openarena.errors import DataError

    with pytest.raises(DataError, match="organizations must map each model"):
        _trust_inputs(["acme"], None)
    with pytest.raises(DataError, match="prices must be a table"):
        _trust_inputs(None, {"m": [1.0, 2.0]})
    f = tmp_path / "prices.csv"
    f.write_text("model,input_price,output_price\nm-one,1.0,3.0\n")
    orgs, prices = _trust_inputs({"m-one": "Acme"}, f)
    assert orgs == {"m-one": "Acme"} and isinstance(prices, pd.DataFrame) and prices["model"].tolist() == ["m-one"]
    assert openarena.trust_report is openarena.api.trust_report
