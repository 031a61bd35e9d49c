"""Bradley-Terry fits: exactness against independent implementations, derivatives, recovery of
known strengths and tie parameters, invariances and the errors of ill-posed data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit

from openarena.data.battles import BattleTable, PairCounts, aggregate
from openarena.errors import ConvergenceError, DataError
from openarena.ratings.bradley_terry import _Problem, fit_bradley_terry
from openarena.ratings.simulate import simulate_battles, simulate_counts
from openarena.ratings.ties import initial_tie_param

TRUE_THETA = np.array([0.0, 0.3, -0.2, 0.8, -0.6, 0.5, 0.1, -0.9])


def small_counts(seed=1, n_battles=3000, model="davidson", k=np.log(0.7)):
    return simulate_counts(TRUE_THETA, n_battles, model=model, k=k, seed=seed)


# ---------------------------------------------------------------- derivatives


@pytest.mark.parametrize("ties", ["half", "rao-kupper", "davidson"])
def test_gradient_and_hessian_match_finite_differences(ties):
    counts = small_counts()
    prob = _Problem(counts, ties, ref=0)
    m = counts.n_models - 1 + (ties != "half")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (1, m))
    if ties == "rao-kupper":
        x[0, -1] = 0.5
    C = counts.counts[None]
    ll, g, H = prob.evaluate(x, C)
    h = 1e-5
    g_fd = np.empty(m)
    H_fd = np.empty((m, m))
    for a in range(m):
        e = np.zeros((1, m))
        e[0, a] = h
        lp, gp, _ = prob.evaluate(x + e, C, order=1)
        lm, gm, _ = prob.evaluate(x - e, C, order=1)
        g_fd[a] = (lp[0] - lm[0]) / (2 * h)
        H_fd[a] = (gp[0] - gm[0]) / (2 * h)
    np.testing.assert_allclose(g[0], g_fd, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(H[0], H_fd, rtol=1e-6, atol=1e-3)


# ------------------------------------------------------- independent optimisers


def _rows(counts: PairCounts):
    """Expand counts to (i, j, outcome, weight) arrays for a from-scratch likelihood."""
    i, j, o, w = [], [], [], []
    for (a, b), c in zip(counts.pairs, counts.counts):
        for out in range(4):
            if c[out] > 0:
                i.append(a), j.append(b), o.append(out), w.append(c[out])
    return np.array(i), np.array(j), np.array(o), np.array(w, float)


def _scipy_fit(counts: PairCounts, ties: str):
    """Plain scipy BFGS on a likelihood written independently of openarena.ratings.ties."""
    i, j, o, w = _rows(counts)
    n = counts.n_models
    tie = o >= 2

    def nll(x):
        th = np.concatenate([[0.0], x[: n - 1]])
        s = th[i] - th[j]
        if ties == "half":
            y = np.select([o == 0, o == 1], [1.0, 0.0], 0.5)
            return -np.sum(w * (y * np.log(expit(s)) + (1 - y) * np.log(expit(-s))))
        k = x[-1]
        if ties == "rao-kupper":
            pw, pl = expit(s - k), expit(-s - k)
            pt = 1 - pw - pl
        else:
            nu = np.exp(k)
            z = np.exp(s / 2) + np.exp(-s / 2) + nu
            pw, pl, pt = np.exp(s / 2) / z, np.exp(-s / 2) / z, nu / z
        p = np.where(o == 0, pw, np.where(o == 1, pl, pt))
        return -np.sum(w * np.log(np.maximum(p, 1e-300)))

    x0 = np.zeros(n - 1 + (ties != "half"))
    if ties != "half":
        x0[-1] = initial_tie_param(ties, (w[tie]).sum() / w.sum())
    res = minimize(nll, x0, method="BFGS", options={"gtol": 1e-9, "maxiter": 10000})
    th = np.concatenate([[0.0], res.x[: n - 1]])
    return th - th.mean(), (res.x[-1] if ties != "half" else None)


@pytest.mark.parametrize("ties", ["half", "rao-kupper", "davidson"])
def test_agrees_with_an_independent_scipy_fit(ties):
    counts = small_counts(model="rao-kupper" if ties == "rao-kupper" else "davidson", k=0.5 if ties == "rao-kupper" else np.log(0.7))
    fit = fit_bradley_terry(counts, ties=ties)
    th, k = _scipy_fit(counts, ties)
    np.testing.assert_allclose(fit.theta, th, atol=2e-5)
    if k is not None:
        assert fit.tie_param == pytest.approx(k, abs=2e-5)


def test_half_agrees_with_zermelo_mm_iteration_to_1e_10():
    """Zermelo/Hunter MM: pi_i <- W_i / sum_j n_ij / (pi_i + pi_j), ties as half wins."""
    counts = simulate_counts(TRUE_THETA, 20000, model="davidson", k=0.0, seed=5)
    n = counts.n_models
    W = np.zeros(n)
    N = np.zeros((n, n))
    for (a, b), c in zip(counts.pairs, counts.counts):
        h = (c[2] + c[3]) / 2
        W[a] += c[0] + h
        W[b] += c[1] + h
        N[a, b] = N[b, a] = c.sum()
    pi = np.ones(n)
    for _ in range(20000):
        new = W / (N / (pi[:, None] + pi[None, :])).sum(axis=1)
        new /= np.exp(np.log(new).mean())
        if np.abs(new - pi).max() < 1e-15:
            break
        pi = new
    fit = fit_bradley_terry(counts)
    np.testing.assert_allclose(fit.theta, np.log(pi) - np.log(pi).mean(), atol=1e-10)


# ----------------------------------------------------------------- recovery


def test_recovers_known_strengths_within_standard_errors():
    theta = np.linspace(-1.5, 1.5, 20)
    counts = simulate_counts(theta, 200_000, seed=11)
    fit = fit_bradley_terry(counts)
    true = theta - theta.mean()
    V = fit.covariance(robust=True)
    A = np.eye(20) - 1 / 20
    se = np.sqrt(np.diag(A @ V @ A.T))
    z = (fit.theta - true) / se
    assert np.abs(z).max() < 4
    assert np.abs(fit.theta - true).max() < 0.05
    assert fit.n_iter <= 10


@pytest.mark.parametrize("model,k", [("rao-kupper", 0.6), ("davidson", np.log(0.8))])
def test_tie_models_recover_their_tie_parameter(model, k):
    theta = np.linspace(-1, 1, 10)
    counts = simulate_counts(theta, 100_000, model=model, k=k, seed=3)
    fit = fit_bradley_terry(counts, ties=model)
    se = fit.tie_param_se()
    assert abs(fit.tie_param - k) < 3 * se
    assert abs(fit.tie_param - k) < 0.03
    assert np.abs(fit.theta - (theta - theta.mean())).max() < 0.06


def test_half_ties_shrink_strengths_when_data_have_ties():
    """With many ties, the tie model's strengths are larger in magnitude than half-wins (the
    half pseudo-likelihood reads a tie as evidence of equality)."""
    theta = np.linspace(-1, 1, 6)
    counts = simulate_counts(theta, 50_000, model="davidson", k=np.log(1.5), seed=4)
    half = fit_bradley_terry(counts, ties="half").theta
    dav = fit_bradley_terry(counts, ties="davidson").theta
    assert np.abs(dav).sum() > np.abs(half).sum()


# --------------------------------------------------------------- invariances


def test_rows_and_counts_give_the_same_fit_and_order_does_not_matter():
    battles = simulate_battles(TRUE_THETA, 5000, seed=9)
    f1 = fit_bradley_terry(battles)
    f2 = fit_bradley_terry(aggregate(battles))
    shuffled = battles.frame.sample(frac=1.0, random_state=1)
    swapped = shuffled.rename(columns={"model_a": "model_b", "model_b": "model_a"}).copy()
    swapped["winner"] = swapped["winner"].replace({"model_a": "model_b", "model_b": "model_a"})
    f3 = fit_bradley_terry(BattleTable(swapped))
    np.testing.assert_allclose(f1.theta, f2.theta, atol=1e-12)
    np.testing.assert_allclose(f1.theta, f3.theta, atol=1e-12)
    assert f1.models == f3.models


def test_reference_model_does_not_change_estimates_or_contrast_variances():
    counts = small_counts(n_battles=8000)
    f0 = fit_bradley_terry(counts, ref=0)
    f5 = fit_bradley_terry(counts, ref=5)
    np.testing.assert_allclose(f0.theta, f5.theta, atol=1e-11)
    c = np.zeros(counts.n_models)
    c[2], c[6] = 1, -1
    assert c @ f0.covariance() @ c == pytest.approx(c @ f5.covariance() @ c, rel=1e-9)


def test_weighted_counts_equal_replicated_counts():
    counts = small_counts(n_battles=4000)
    doubled = PairCounts(counts.models, counts.pairs, counts.counts * 2)
    np.testing.assert_allclose(fit_bradley_terry(counts).theta, fit_bradley_terry(doubled).theta, atol=1e-12)


# ------------------------------------------------------------------- errors


def test_disconnected_comparison_graph_is_a_data_error():
    frame = pd.DataFrame(
        {"model_a": ["a", "b", "c", "d"], "model_b": ["b", "a", "d", "c"], "winner": ["model_a", "model_a", "model_a", "tie"]}
    )
    with pytest.raises(DataError, match="never battle the rest"):
        fit_bradley_terry(BattleTable(frame, source="x.csv"))


def test_undefeated_model_has_no_finite_mle():
    frame = pd.DataFrame(
        {"model_a": ["a", "a", "b", "c"], "model_b": ["b", "c", "c", "b"], "winner": ["model_a", "model_a", "model_a", "model_a"]}
    )
    with pytest.raises(ConvergenceError, match="a never lost"):
        fit_bradley_terry(BattleTable(frame))
    # a prior makes it finite
    fit = fit_bradley_terry(BattleTable(frame), prior=1.0)
    assert np.argmax(fit.theta) == fit.models.index("a")
