"""Private variants: selection bias of the best of k (LMArena's +11 points after 50 tests of
3,000 votes), Bonferroni coverage of the selected variant vs the unadjusted interval, and the
report on simulated data with known truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openarena.analysis.trust.variants import COLUMNS, selection_bias, simulate_best_of_k, variant_report
from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.ratings.simulate import simulate_battles


def test_best_of_50_tests_of_3000_votes_is_about_11_points_too_high():
    bias = simulate_best_of_k(50, 3000, reps=6, public_votes=60_000, seed=1)
    # LMArena: "about +11"; E[max of 50 N(0, 1)] = 2.25 sd and sd ~ 5 points at 3,000 votes, 34% ties
    assert 8.0 < bias.mean() < 15.0, bias


def test_parametric_bias_of_equal_variants_is_expected_max_of_normals():
    # E[max of k iid N(0,1)]: k=2 -> 1/sqrt(pi) = 0.5642; k=50 -> 2.2491
    assert selection_bias(np.zeros(2), np.eye(2), draws=200_000) == pytest.approx(0.5642, abs=0.01)
    assert selection_bias(np.zeros(50), 25 * np.eye(50), draws=100_000) == pytest.approx(5 * 2.2491, abs=0.05)
    # one variant far ahead: no selection, no bias
    assert abs(selection_bias(np.array([100.0, 0, 0]), np.eye(3), draws=50_000)) < 0.02


def _variant_arena(seed: int, k: int = 12, votes: int = 1000):
    n_pub = 8
    theta = np.concatenate([np.linspace(-0.8, 0.8, n_pub), np.full(k, 0.1)])  # equally strong variants
    n = len(theta)
    names = [f"p{i}" for i in range(n_pub)] + [f"v{i}" for i in range(k)]
    w = np.zeros((n, n))
    w[:n_pub, :] = w[:, :n_pub] = 1.0
    w[n_pub:, n_pub:] = 0.0
    votes_total = votes * k * 2
    b = simulate_battles(theta, votes_total, seed=seed, models=names, pair_weights=w)
    return b, names[n_pub:], theta, names


def test_bonferroni_covers_the_selected_variant_and_the_marginal_interval_does_not():
    """Truth known: coverage of the released (best-rated) variant's true rating."""
    hit_adj = hit_raw = 0
    sims = 100
    for s in range(sims):
        b, variants, theta, names = _variant_arena(s)
        rep = variant_report(b, variants, anchor="p0=1000", draws=2000)
        row = rep.table[rep.table.selected].iloc[0]
        true = 1000 + (theta[names.index(row.model)] - theta[0]) * 400 / np.log(10)
        hit_adj += row.adj_lower <= true <= row.adj_upper
        hit_raw += row.rating_q025 <= true <= row.rating_q975
    assert hit_adj / sims >= 0.92, hit_adj / sims
    assert hit_raw / sims < 0.85, hit_raw / sims  # the winner's curse, visible


def test_report_columns_selection_and_provisional_flag():
    b, variants, theta, names = _variant_arena(3)
    rep = variant_report(b, variants)
    assert list(rep.table.columns) == COLUMNS
    assert rep.table.selected.sum() == 1 and rep.table.selected.iloc[0]  # best-rated by default
    assert rep.selection_bias_equal >= rep.selection_bias > 0
    assert rep.corrected_rating == pytest.approx(rep.table.rating.iloc[0] - rep.selection_bias)
    assert rep.provisional == (rep.fresh_votes < 2000)
    rep2 = variant_report(b, variants, released=variants[0], provisional_votes=10)
    assert rep2.released == variants[0] and not rep2.provisional
    # fresh votes are counted from the release date when timestamps exist
    f = b.frame.assign(tstamp=np.arange(len(b.frame), dtype=float) * 10.0)
    t_half = pd.Timestamp(f.tstamp.iloc[len(f) // 2], unit="s").isoformat()
    rep3 = variant_report(BattleTable(f), variants, released=variants[0], released_at=t_half)
    assert 0 < rep3.fresh_votes < rep2.fresh_votes


def test_bad_variants_are_named():
    b, variants, *_ = _variant_arena(1)
    with pytest.raises(DataError, match="nope"):
        variant_report(b, variants + ["nope"])
    with pytest.raises(DataError, match="released"):
        variant_report(b, variants, released="p1")
