"""Simultaneous intervals and rank intervals: coverage of all true ranks at once on simulated
arenas with known strengths (seeded), anchor independence, and the leaderboard columns."""

from __future__ import annotations

import numpy as np
import pytest

from openarena.analysis.leaderboard import COLUMNS, build_leaderboard
from openarena.ratings.bradley_terry import fit_bradley_terry
from openarena.ratings.intervals import bootstrap_thetas
from openarena.ratings.scale import POINTS_PER_LOGIT, Anchor, to_elo
from openarena.ratings.simulate import simulate_counts
from openarena.ratings.simultaneous import (
    bootstrap_rank_intervals,
    critical_value,
    fit_rank_intervals,
    rank_bounds,
    pairwise_sd,
    true_ranks,
)

M = 10
THETA = np.linspace(-0.6, 0.6, M)  # 0.13 logits (23 points) between neighbours
# the least favourable case for rank intervals: equal strengths in groups, so every ordering
# declared inside a group is false (a model's true rank is any rank its group can take)
GROUPS = np.repeat([-0.3, 0.0, 0.3], [3, 4, 3])


def _covers(lower, upper, theta) -> bool:
    """Every model's set of true ranks (1 + #strictly better .. M - #strictly worse) inside its
    interval, for all models at once."""
    theta = np.asarray(theta)
    best = true_ranks(theta)
    worst = len(theta) - (theta[None, :] < theta[:, None]).sum(axis=1)
    return bool(np.all((lower <= best) & (worst <= upper)))


def _all_covered(ri, theta) -> bool:
    return _covers(ri.rank_lower, ri.rank_upper, theta)


def _coverage(method: str, sims: int, basis: str = "sandwich", theta=GROUPS) -> tuple[float, float]:
    """Share of simulations in which every true rank is inside its interval, and the same for
    the naive rule (pairwise 95% intervals, no multiplicity correction)."""
    THETA = theta
    hits = naive = 0
    for s in range(sims):
        counts = simulate_counts(THETA, 4000, seed=1000 + s)
        fit = fit_bradley_terry(counts)
        ratings = to_elo(fit.theta, counts.models, Anchor())
        if basis == "sandwich":
            ri = fit_rank_intervals(counts.models, ratings, fit=fit, method=method)
        else:
            tb, _ = bootstrap_thetas(fit, 150, seed=s, n_jobs=1)
            ri = bootstrap_rank_intervals(counts.models, ratings, to_elo(tb, counts.models, Anchor()), method=method)
        hits += _all_covered(ri, THETA)
        sd = pairwise_sd(POINTS_PER_LOGIT**2 * fit.covariance())
        lo, hi = rank_bounds(ratings, sd, 1.959964)
        naive += _covers(lo, hi, THETA)
    return hits / sims, naive / sims


@pytest.mark.parametrize("method", ["maxz", "chi2", "bonferroni"])
def test_sandwich_rank_intervals_cover_all_true_ranks_at_once(method):
    cover, naive = _coverage(method, 100)
    # nominal 95%; 100 runs: binomial sd 2.2 points
    assert cover >= 0.91, (method, cover)
    if method == "maxz":
        # without a multiplicity correction, tied groups are split wrongly far too often
        assert naive < 0.8, (naive, cover)
        assert cover <= 0.995  # and max-|z| is not needlessly conservative


def test_rank_intervals_cover_distinct_strengths():
    cover, _ = _coverage("maxz", 60, theta=THETA)
    assert cover >= 0.95


def test_bootstrap_rank_intervals_cover_all_true_ranks_at_once():
    cover, _ = _coverage("maxz", 40, basis="bootstrap")
    assert cover >= 0.88, cover


def test_critical_values_are_ordered_and_bonferroni_closed_form():
    counts = simulate_counts(THETA, 4000, seed=1)
    V = fit_bradley_terry(counts).covariance()
    c_max, c_chi, c_bon = (critical_value(V, m) for m in ("maxz", "chi2", "bonferroni"))
    assert 1.96 < c_max < c_bon < c_chi  # Tukey-type < Bonferroni over 45 pairs < Scheffe with 9 df
    assert c_bon == pytest.approx(3.26077, abs=1e-4)  # z_{1 - 0.05 / 90}
    assert c_chi == pytest.approx(np.sqrt(16.918978), abs=1e-5)  # chi2_9(0.95)


def test_rank_intervals_do_not_depend_on_the_anchor():
    counts = simulate_counts(THETA, 3000, seed=7)
    fit = fit_bradley_terry(counts)
    a1, a2 = Anchor(), Anchor("m03", 1200.0)
    r1 = fit_rank_intervals(counts.models, to_elo(fit.theta, counts.models, a1), fit=fit, anchor=a1)
    r2 = fit_rank_intervals(counts.models, to_elo(fit.theta, counts.models, a2), fit=fit, anchor=a2)
    assert np.array_equal(r1.rank_lower, r2.rank_lower) and np.array_equal(r1.rank_upper, r2.rank_upper)
    assert r2.upper[3] - r2.lower[3] == pytest.approx(0.0, abs=1e-9)  # the anchor model is fixed


def test_leaderboard_rank_interval_columns_follow_the_six_standard_ones():
    counts = simulate_counts(THETA, 3000, seed=3)
    for ci in ("sandwich", "bootstrap"):
        lb = build_leaderboard(counts, ci=ci, rounds=50, rank_intervals="maxz")
        assert list(lb.table.columns[:8]) == COLUMNS + ["rank_lower", "rank_upper"]
        t = lb.table
        assert (t.rank_lower <= t.rank_upper).all()
        # rank (UB) from non-overlapping marginal intervals sits inside the simultaneous interval
        assert (t.rank_lower <= t.rank_ub).all()
