"""Sampling-aware estimates on simulated arenas with non-uniform pair sampling and a misspecified
(intransitive) truth: the plain MLE lands on the BT projection under the sampling distribution,
inverse-propensity weighting on the projection under uniform pairs, arena-rank's reweighting
near the latter; the sandwich intervals cover their targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.ratings.bradley_terry import fit_bradley_terry
from openarena.ratings.weighting import fit_weighted, population_target

N_MODELS = 6
BASE = np.linspace(-0.8, 0.8, N_MODELS)


def _truth(gamma: float = 0.6) -> np.ndarray:
    """P(i beats j): BT plus an intransitive (cyclic) component; P + P^T = 1."""
    i, j = np.meshgrid(np.arange(N_MODELS), np.arange(N_MODELS), indexing="ij")
    cyc = gamma * np.sin(2 * np.pi * (i - j) / N_MODELS)
    return expit(BASE[:, None] - BASE[None, :] + cyc)


def _sampling() -> np.ndarray:
    """Unordered-pair probabilities (symmetric, upper triangle sums to 1): the two top models
    battle each other and everyone else far more often."""
    q = np.ones((N_MODELS, N_MODELS))
    q[-2:, :] *= 6
    q[:, -2:] *= 6
    np.fill_diagonal(q, 0)
    return q / np.triu(q, 1).sum()


def _simulate(n_votes: int, seed: int) -> BattleTable:
    rng = np.random.default_rng(seed)
    q, P = _sampling(), _truth()
    iu, ju = np.triu_indices(N_MODELS, 1)
    k = rng.choice(len(iu), size=n_votes, p=q[iu, ju])
    a, b = iu[k], ju[k]
    flip = rng.random(n_votes) < 0.5
    a, b = np.where(flip, b, a), np.where(flip, a, b)
    win = rng.random(n_votes) < P[a, b]
    names = np.array([f"m{i}" for i in range(N_MODELS)], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": np.where(win, "model_a", "model_b"), "sampling_prob": q[iu, ju][k]})
    return BattleTable(frame, source="sim")


def test_each_estimate_lands_on_its_own_target():
    P, q = _truth(), _sampling()
    t_sampled = population_target(P, q)
    t_uniform = population_target(P, np.ones_like(q))
    gap = np.abs(t_sampled - t_uniform).max()
    assert gap > 0.08  # the sampling policy moves the misspecified target
    b = _simulate(400_000, seed=1)
    plain = fit_bradley_terry(b.frame.pipe(BattleTable))
    for method, target in (("none", t_sampled), ("ipw", t_uniform), ("arena-rank", t_uniform)):
        f = fit_weighted(b, method)
        se = np.sqrt(np.diag(f.cov) + f.cov[0, 0] - 2 * f.cov[0])  # contrasts to m0
        est = f.theta - f.theta[0]
        tgt = target - target[0]
        z = (est - tgt)[1:] / se[1:]
        assert np.abs(z).max() < 4.0, (method, z)
        other = t_uniform if method == "none" else t_sampled
        assert np.abs(est - (other - other[0])).max() > 0.05, method
    assert np.allclose(fit_weighted(b, "none").theta, plain.theta, atol=1e-9)


def test_ipw_sandwich_intervals_cover_the_uniform_target():
    t_uniform = population_target(_truth(), np.ones((N_MODELS, N_MODELS)))
    c = np.zeros(N_MODELS)
    c[-1], c[0] = 1, -1
    hits = 0
    sims = 150
    for s in range(sims):
        f = fit_weighted(_simulate(8_000, seed=100 + s), "ipw")
        d, sd = c @ f.theta, np.sqrt(c @ f.cov @ c)
        hits += abs(d - c @ t_uniform) <= 1.96 * sd
    assert 0.91 <= hits / sims <= 0.99, hits / sims


def test_ipw_needs_valid_sampling_probabilities():
    b = _simulate(200, seed=3)
    with pytest.raises(DataError, match="sampling_prob"):
        fit_weighted(BattleTable(b.frame.drop(columns="sampling_prob")), "ipw")
    bad = b.frame.copy()
    bad.loc[7, "sampling_prob"] = 0.0
    with pytest.raises(DataError, match="row"):
        fit_weighted(BattleTable(bad), "ipw")
