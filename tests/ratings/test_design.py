"""Experimental design for Bradley-Terry: Fisher information against the fitter's Hessian,
the exact one-vote variance reduction, optimality of the designs (equivalence theorem) and the
optimal-design bound."""

from __future__ import annotations

import numpy as np

from openarena.data.battles import PairCounts
from openarena.ratings.bradley_terry import BatchRefitter, fit_bradley_terry
from openarena.ratings.design import (
    _covariance,
    _sensitivity,
    design_bound,
    design_variances,
    fisher_information,
    interval_variances,
    laplacian,
    one_vote_reduction,
    optimal_design,
    win_variance,
)
from openarena.ratings.simulate import simulate_counts


def _votes_matrix(counts: PairCounts) -> np.ndarray:
    n = counts.n_models
    N = np.zeros((n, n))
    tot = counts.counts.sum(axis=1)
    N[counts.pairs[:, 0], counts.pairs[:, 1]] = tot
    N[counts.pairs[:, 1], counts.pairs[:, 0]] = tot
    return N


def test_fisher_information_is_the_fitters_inverse_covariance():
    # Bradley-Terry is a logistic model: observed = expected information at the MLE, so the
    # design's variances equal the fitter's model-based (non-robust) variances exactly
    theta = np.random.default_rng(3).normal(0, 0.8, 7)
    counts = simulate_counts(theta, 4000, seed=5)
    fit = fit_bradley_terry(counts)
    info = fisher_information(fit.theta, _votes_matrix(counts))
    V = fit.covariance(robust=False)
    C = np.eye(7) - 1 / 7
    assert np.allclose(interval_variances(info), np.diag(C @ V @ C), rtol=1e-9, atol=0)
    # and with an anchor model: variances of theta_k - theta_0
    A = np.eye(7)
    A[:, 0] -= 1
    assert np.allclose(interval_variances(info, A), np.diag(A @ V @ A.T), rtol=1e-9, atol=1e-15)


def test_batch_refitter_matches_the_single_fit_and_its_sandwich():
    theta = np.random.default_rng(4).normal(0, 0.7, 6)
    tables = [simulate_counts(theta, 3000, seed=s) for s in (1, 2)]
    n = 6
    iu, ju = np.triu_indices(n, 1)
    template = PairCounts(tables[0].models, np.column_stack([iu, ju]), np.zeros((len(iu), 4)))
    stack = np.zeros((2, len(iu), 4))
    for r, t in enumerate(tables):
        pos = {tuple(p): k for k, p in enumerate(template.pairs.tolist())}
        for p, c in zip(t.pairs.tolist(), t.counts):
            stack[r, pos[tuple(p)]] = c
    th, cov = BatchRefitter(template, tol=1e-11).fit(stack)
    for r, t in enumerate(tables):
        fit = fit_bradley_terry(t)
        assert np.allclose(th[r], fit.theta, atol=1e-9)
        C = np.eye(n) - 1 / n
        assert np.allclose(C @ cov[r] @ C, C @ fit.covariance(robust=True) @ C, atol=1e-12)


def test_one_vote_reduction_is_exact():
    rng = np.random.default_rng(0)
    n = 5
    theta = rng.normal(0, 1, n)
    N = rng.integers(0, 30, (n, n)).astype(float)
    N = np.triu(N, 1) + np.triu(N, 1).T
    info = fisher_information(theta, N, prior=0.01)
    red = one_vote_reduction(info, theta)
    v0 = interval_variances(info)
    for i, j in [(0, 1), (2, 4), (3, 1)]:
        M = N.copy()
        M[i, j] += 1
        M[j, i] += 1
        v1 = interval_variances(fisher_information(theta, M, prior=0.01))
        assert np.allclose(red[i, j], v0 - v1, rtol=1e-9, atol=1e-14)
        assert np.allclose(red[j, i], red[i, j])
    assert np.all(red[np.arange(n), np.arange(n)] == 0)


def test_equal_strengths_make_uniform_optimal_and_the_bound_one():
    b = design_bound(np.zeros(8))
    assert abs(b.max_factor - 1) < 0.01 and abs(b.median_factor - 1) < 0.01


def test_a_optimal_design_satisfies_the_equivalence_theorem():
    # Kiefer-Wolfowitz / Silvey: a design minimises sum_k v_k iff no pair's sensitivity
    # w_a g_a exceeds the design's average sensitivity sum_b pi_b w_b g_b (with equality on its
    # support)
    theta = np.random.default_rng(1).normal(0, 1.0, 9)
    d = optimal_design(theta, power=1.0, iters=3000, prior=1e-10)
    w = win_variance(theta)
    S = _covariance(laplacian(w * d) + 1e-10 * np.eye(9))
    _, g = _sensitivity(S, np.eye(9) - 1 / 9, 1.0)
    s = w * g
    avg = (np.triu(d, 1) * np.triu(s, 1)).sum()
    iu = np.triu_indices(9, 1)
    assert s[iu].max() / avg < 1.01
    support = d[iu] > 1e-3
    assert np.allclose(s[iu][support] / avg, 1, atol=0.02)
    # and it beats uniform on the sum of variances
    vu = design_variances(theta, np.ones((9, 9)) - np.eye(9))
    assert design_variances(theta, d).sum() < vu.sum()


def test_minimax_design_beats_uniform_on_the_widest_interval_of_a_spread_arena():
    theta = np.linspace(-1.5, 1.5, 10)  # 520 points from weakest to strongest
    b = design_bound(theta, floor_share=0.2)
    # uniform starves the extremes (their votes are lopsided): an ideal design saves votes
    assert b.max_factor > 1.3
    assert 1.0 < b.floor_max_factor <= b.max_factor + 1e-9
    d = optimal_design(theta, power=64.0, iters=1500, prior=1e-9)
    v = design_variances(theta, d)
    assert np.isclose(v.max(), b.optimal_max, rtol=1e-6)
    # the minimax design equalises the widest intervals (both extremes tie at the top)
    top = np.sort(v)[-2:]
    assert top[0] / top[1] > 0.97


def test_batched_design_equals_one_by_one():
    rng = np.random.default_rng(2)
    thetas = rng.normal(0, 0.8, (3, 6))
    N = rng.integers(0, 50, (3, 6, 6)).astype(float)
    N = np.triu(N, 1) + np.swapaxes(np.triu(N, 1), 1, 2)
    base = fisher_information(thetas, N, prior=0.5)
    batch = optimal_design(thetas, base=base, horizon=np.array([100.0, 200.0, 50.0]), iters=20)
    for r, h in enumerate([100.0, 200.0, 50.0]):
        one = optimal_design(thetas[r], base=base[r], horizon=h, iters=20)
        assert np.allclose(batch[r], one)
        assert np.isclose(np.triu(one, 1).sum(), 1) and np.allclose(one, one.T)
