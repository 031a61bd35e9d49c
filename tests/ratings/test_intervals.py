"""Confidence intervals: coverage of the truth in seeded simulations, determinism of the
bootstrap, and the rank (UB) rule."""

from __future__ import annotations

import numpy as np
import pytest

from openarena.analysis.leaderboard import build_leaderboard
from openarena.ratings.bradley_terry import fit_bradley_terry
from openarena.ratings.intervals import bootstrap_thetas, rank_ub, resample_counts
from openarena.ratings.scale import POINTS_PER_LOGIT
from openarena.ratings.simulate import simulate_counts

THETA = np.array([0.0, 0.3, -0.2, 0.8, -0.6, 0.5, 0.1, -0.9])
TRUE_RATING = POINTS_PER_LOGIT * (THETA - THETA.mean()) + 1000.0
N_SIMS = 200


def _coverage(ci: str, model: str = "bt", ties: str = "half", k=None) -> float:
    hits = []
    for seed in range(N_SIMS):
        counts = simulate_counts(THETA, 2500, model=model, k=k, seed=1000 + seed)
        lb = build_leaderboard(counts, ci=ci, ties=ties, anchor="mean", rounds=100, seed=seed, n_jobs=1)
        t = lb.table.set_index("model").loc[list(counts.models)]
        hits.append((t.rating_q025.to_numpy() <= TRUE_RATING) & (TRUE_RATING <= t.rating_q975.to_numpy()))
    return float(np.mean(hits))


@pytest.mark.slow
def test_sandwich_95_intervals_cover_the_truth_92_to_98_percent():
    cov = _coverage("sandwich")
    assert 0.92 <= cov <= 0.98, cov


@pytest.mark.slow
def test_bootstrap_95_intervals_cover_the_truth_92_to_98_percent():
    cov = _coverage("bootstrap")
    assert 0.92 <= cov <= 0.98, cov


@pytest.mark.slow
def test_davidson_sandwich_intervals_cover_the_truth():
    cov = _coverage("sandwich", model="davidson", ties="davidson", k=np.log(0.6))
    assert 0.92 <= cov <= 0.98, cov


def test_bootstrap_depends_on_seed_only_not_on_workers_or_chunks():
    counts = simulate_counts(THETA, 3000, seed=2)
    fit = fit_bradley_terry(counts)
    a, _ = bootstrap_thetas(fit, 30, seed=7, n_jobs=1, chunk=30)
    b, _ = bootstrap_thetas(fit, 30, seed=7, n_jobs=2, chunk=4)
    c, _ = bootstrap_thetas(fit, 30, seed=8, n_jobs=1)
    np.testing.assert_allclose(a, b, atol=1e-12)
    assert np.abs(a - c).max() > 1e-3


def test_resampled_tables_keep_the_total_and_the_cells():
    counts = simulate_counts(THETA, 3000, seed=2)
    tables = resample_counts(counts.counts, 5, seed=0)
    assert tables.shape == (5,) + counts.counts.shape
    assert np.all(tables.sum(axis=(1, 2)) == 3000)
    assert np.all(tables[:, counts.counts == 0] == 0)
    # the mean of many resamples is the table itself
    many = resample_counts(counts.counts, 400, seed=1).mean(axis=0)
    assert np.abs(many - counts.counts).max() < 5 * np.sqrt(counts.counts.max())


def test_anchor_model_interval_has_zero_width_and_others_do_not():
    counts = simulate_counts(THETA, 3000, seed=2)
    lb = build_leaderboard(counts, anchor="m03=1200")
    t = lb.table.set_index("model")
    assert t.loc["m03", "rating"] == pytest.approx(1200)
    assert t.loc["m03", "rating_q975"] - t.loc["m03", "rating_q025"] == pytest.approx(0, abs=1e-9)
    assert (t.drop("m03").rating_q975 - t.drop("m03").rating_q025 > 1).all()


def test_rank_ub_counts_models_surely_above():
    lower = np.array([10.0, 8.0, 5.0, 1.0])
    upper = np.array([12.0, 11.0, 9.0, 4.0])
    # model 1 [8, 11]: no lower bound above 11 -> 1; model 2 [5, 9]: 10 > 9 -> 2;
    # model 3 [1, 4]: 10, 8, 5 > 4 -> 4
    assert rank_ub(lower, upper).tolist() == [1, 1, 2, 4]


def test_a_board_of_ties_only_gets_the_model_based_interval_not_zero():
    """Two models, two ties: the MLE fits every vote exactly, the sandwich's meat is 0 and so
    was the interval (the web board showed +0/-0 after its first votes). The model-based
    variance is used instead: Var(x - y) = 1 / (N p (1 - p)) = 1 / (2 * 0.25) logits^2, and with
    the mean anchor each rating is half the difference: 0.5 logits^2, i.e. 15,088.94 points^2."""
    import pandas as pd

    import openarena

    frame = pd.DataFrame({"model_a": ["x", "y"], "model_b": ["y", "x"], "winner": ["tie", "tie"]})
    with pytest.warns(UserWarning, match="robust \\(sandwich\\) variance of x, y is zero"):
        t = openarena.leaderboard(frame, ci="sandwich", anchor="mean").to_frame().set_index("model")
    assert t["variance"].tolist() == pytest.approx([0.5 * POINTS_PER_LOGIT**2] * 2, rel=1e-12)
    assert t.loc["x", "rating_q975"] - t.loc["x", "rating"] == pytest.approx(1.959963984540054 * np.sqrt(0.5) * POINTS_PER_LOGIT, rel=1e-12)
    # a board whose votes are not all fitted exactly keeps the sandwich, with no warning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_leaderboard(simulate_counts(THETA, 3000, seed=2), anchor="m03=1200")
