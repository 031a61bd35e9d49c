"""The large-n numerics give the results of the straightforward formulas they replaced: the
incidence products without a dense design, the sandwich variances without three-operand einsum
and four dense products, Cholesky solves, the numpy strong-connectivity check and logistic
functions. Sizes are small here; bench/scale.py times them at 2,000 models."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from openarena.data.battles import PairCounts
from openarena.errors import ConvergenceError, DataError
from openarena.ratings import bradley_terry as bt
from openarena.ratings.intervals import bootstrap_thetas
from openarena.ratings.logistic import expit, log_expit
from openarena.ratings.scale import Anchor
from openarena.ratings.simulate import simulate_counts


def sparse_counts(n_models: int, n_votes: int, opponents: int = 8, seed: int = 0) -> PairCounts:
    """Each model battles a few random opponents (plus a ring, so the graph is connected)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 1, n_models)
    i = np.repeat(np.arange(n_models), opponents // 2)
    j = (i + rng.integers(1, n_models, len(i))) % n_models
    ring = np.arange(n_models)
    i, j = np.concatenate([i, ring]), np.concatenate([j, (ring + 1) % n_models])
    key = np.unique(np.minimum(i, j) * n_models + np.maximum(i, j))
    lo, hi = key // n_models, key % n_models
    per = rng.multinomial(n_votes, np.full(len(key), 1 / len(key)))
    p = 1 / (1 + np.exp(-(theta[lo] - theta[hi])))
    tie = rng.binomial(per, 0.15)
    wa = rng.binomial(per - tie, p)
    C = np.column_stack([wa, per - tie - wa, tie // 2, tie - tie // 2]).astype(float)
    return PairCounts(tuple(f"m{x:04d}" for x in range(n_models)), np.column_stack([lo, hi]), C)


def dense_design(problem: bt._Problem) -> np.ndarray:
    """The (n_pairs, n_models - 1) incidence matrix the fit used to build."""
    P = len(problem.i)
    D = np.zeros((P, problem.n))
    D[np.arange(P), problem.i] = 1.0
    D[np.arange(P), problem.j] = -1.0
    return D[:, problem.keep]


@pytest.mark.parametrize("ties", ["half", "davidson"])
def test_incidence_products_equal_the_dense_design(ties):
    counts = simulate_counts(np.linspace(-1, 1, 9), 3000, model="davidson", k=-0.5, seed=3)
    problem = bt._Problem(counts, ties, ref=4)
    v = np.random.default_rng(0).normal(size=(3, len(counts.pairs)))
    np.testing.assert_allclose(problem._incidence(v), v @ dense_design(problem), rtol=0, atol=1e-12)
    assert not any(isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[0] == len(counts.pairs) and a.shape[1] > 2 for a in vars(problem).values())


@pytest.mark.parametrize("ties", ["half", "rao-kupper"])
@pytest.mark.parametrize("n_models", [12, 320])  # below and above the Cholesky / sparse thresholds
@pytest.mark.parametrize("robust", [True, False])
def test_sandwich_variances_equal_the_einsum_formula(ties, n_models, robust):
    counts = sparse_counts(n_models, 40 * n_models, opponents=6, seed=n_models)
    fit = bt.fit_bradley_terry(counts, ties=ties)
    for anchor in (Anchor(None, 1000.0), Anchor(counts.models[5], 1114.0)):
        A = anchor.contrast(fit.models)
        Hinv = np.linalg.inv(-fit.hessian)
        V = Hinv @ fit.meat @ Hinv if robust else Hinv
        n = counts.n_models
        full = np.zeros((n, n))
        keep = np.delete(np.arange(n), fit.ref)
        full[np.ix_(keep, keep)] = V[: n - 1, : n - 1]
        old = np.einsum("ij,jk,ik->i", A, full, A)
        new = fit.contrast_variances(anchor.weights(fit.models), robust=robust)
        np.testing.assert_allclose(new, old, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(fit.covariance(robust), full, rtol=1e-9, atol=1e-13)


def test_cholesky_fit_equals_the_lu_fit():
    counts = sparse_counts(330, 30_000, seed=1)
    fit = bt.fit_bradley_terry(counts)
    old = bt._CHOLESKY_FROM
    try:
        bt._CHOLESKY_FROM = 10**9
        ref = bt.fit_bradley_terry(counts)
    finally:
        bt._CHOLESKY_FROM = old
    np.testing.assert_allclose(fit.theta, ref.theta, rtol=0, atol=1e-12)


def test_bootstrap_does_not_depend_on_the_memory_bounded_chunk():
    counts = sparse_counts(40, 8000, seed=2)
    fit = bt.fit_bradley_terry(counts)
    a, _ = bootstrap_thetas(fit, rounds=6, seed=5, n_jobs=1, chunk=1)
    b, _ = bootstrap_thetas(fit, rounds=6, seed=5, n_jobs=1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_strong_connectivity_agrees_with_scipy():
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(7)
    seen = set()
    for trial in range(300):
        n = int(rng.integers(2, 9))
        pairs = np.array([(a, b) for a in range(n) for b in range(a + 1, n)])
        take = rng.random(len(pairs)) < 0.6
        if not take.any():
            continue
        C = rng.integers(0, 2, size=(take.sum(), 4)).astype(float) * (rng.random((take.sum(), 4)) < 0.4)
        C[C.sum(axis=1) == 0, int(rng.integers(0, 2))] = 1.0
        counts = PairCounts(tuple(f"m{k}" for k in range(n)), pairs[take], C)
        g, _, _ = bt._win_graph(counts)
        expected = connected_components(g, directed=True, connection="strong")[0] == 1
        assert bt.strongly_connected(counts) == expected
        seen.add(expected)
        if expected:
            bt.check_identifiable(counts)
            assert bt.unrated_models(counts) == {}
        else:
            with pytest.raises((ConvergenceError, DataError)):
                bt.check_identifiable(counts)
    assert seen == {True, False}


def test_logistic_functions_match_scipy():
    x = np.concatenate([np.linspace(-700, 700, 100_001), [0.0, -0.0, 1e-300, -1e-300, np.inf, -np.inf]])
    np.testing.assert_allclose(expit(x), scipy.special.expit(x), rtol=1e-15, atol=0)
    f = np.isfinite(scipy.special.log_expit(x))
    np.testing.assert_allclose(log_expit(x)[f], scipy.special.log_expit(x)[f], rtol=1e-15, atol=1e-300)
    assert np.array_equal(log_expit(x)[~f], scipy.special.log_expit(x)[~f])


@pytest.mark.parametrize("ties,prior", [("half", 0.0), ("davidson", 0.0), ("rao-kupper", 0.3), ("half", 0.05)])
def test_conjugate_gradient_newton_equals_the_dense_newton(ties, prior):
    """From bt._SPARSE_FROM models on, Newton steps come from conjugate gradients on the pair
    Laplacian; the fit (strengths, tie parameter, Hessian, meat, intervals) is the dense one."""
    counts = sparse_counts(bt._SPARSE_FROM + 20, 30_000, opponents=6, seed=11)
    sparse = bt.fit_bradley_terry(counts, ties=ties, prior=prior)
    old = bt._SPARSE_FROM
    try:
        bt._SPARSE_FROM = 10**9
        dense = bt.fit_bradley_terry(counts, ties=ties, prior=prior)
    finally:
        bt._SPARSE_FROM = old
    points = 400 / np.log(10)
    np.testing.assert_allclose(sparse.theta * points, dense.theta * points, rtol=0, atol=1e-10)
    if ties != "half":
        assert abs(sparse.tie_param - dense.tie_param) < 1e-11
    np.testing.assert_allclose(sparse.hessian, dense.hessian, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(sparse.meat, dense.meat, rtol=1e-12, atol=1e-9)
    c = np.full(counts.n_models, 1 / counts.n_models)
    np.testing.assert_allclose(sparse.contrast_variances(c), dense.contrast_variances(c), rtol=1e-9)


def test_conjugate_gradient_batch_equals_the_dense_batch():
    counts = sparse_counts(bt._SPARSE_FROM + 5, 20_000, opponents=8, seed=12)
    fit = bt.fit_bradley_terry(counts, ties="davidson")
    rng = np.random.default_rng(0)
    N = counts.counts.sum()
    tables = rng.multinomial(int(N), (counts.counts / N).ravel(), size=4).reshape(4, -1, 4).astype(float)
    a_theta, a_k = bt.fit_bradley_terry_batch(fit, tables, check=False)
    old = bt._SPARSE_FROM
    try:
        bt._SPARSE_FROM = 10**9
        b_theta, b_k = bt.fit_bradley_terry_batch(fit, tables, check=False)
    finally:
        bt._SPARSE_FROM = old
    np.testing.assert_allclose(a_theta, b_theta, rtol=0, atol=1e-11)
    np.testing.assert_allclose(a_k, b_k, rtol=0, atol=1e-11)


def test_pcg_reports_no_convergence_instead_of_a_wrong_answer():
    A = np.diag(np.logspace(0, 8, 50))
    rhs = np.ones((1, 50))
    assert bt._pcg(lambda v: v @ A, rhs, lambda r: r, maxiter=3) is None
    x = bt._pcg(lambda v: v @ A, rhs, lambda r: r / np.diag(A))
    np.testing.assert_allclose(x[0], 1 / np.diag(A), rtol=1e-12)


def test_aggregate_with_many_models_equals_the_sorting_path():
    """Above 1,024 models the pairs present are found with a lookup table instead of np.unique
    over the rows; the counts are the same (weighted and unweighted)."""
    import pandas as pd

    from openarena.data import battles as bm

    rng = np.random.default_rng(4)
    n, rows = 1500, 200_000
    names = np.array([f"m{k:04d}" for k in range(n)], dtype=object)
    a = rng.integers(0, n, rows)
    b = (a + rng.integers(1, 40, rows)) % n
    winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], rows)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": winner})
    w = rng.random(rows)
    new, new_w = bm.aggregate(frame), bm.aggregate(frame, w)
    old = bm._LOOKUP_PAIR_LIMIT
    try:
        bm._LOOKUP_PAIR_LIMIT = 0
        ref, ref_w = bm.aggregate(frame), bm.aggregate(frame, w)
    finally:
        bm._LOOKUP_PAIR_LIMIT = old
    assert new.models == ref.models and np.array_equal(new.pairs, ref.pairs) and np.array_equal(new.counts, ref.counts)
    assert np.array_equal(new_w.pairs, ref_w.pairs) and np.array_equal(new_w.counts, ref_w.counts)
