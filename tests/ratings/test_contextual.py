"""Contextual Bradley-Terry (style control): exactness, unbiased recovery of simulated style
coefficients, removal of a planted style confound, interval coverage and input errors."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.battles import BattleTable
from openarena.errors import DataError, OpenArenaError
from openarena.ratings.contextual import _ContextualProblem, fit_contextual_bt
from openarena.ratings.covariates import contextual_data, ratio_difference

PUBLISHED_BETA = np.array([0.249, 0.024, 0.031, 0.019])  # tokens, headers, lists, bold (LMArena 2024)
FEATURES = ("tokens", "headers", "lists", "bold")
LAMBDAS = {"tokens": 400, "headers": 2, "lists": 5, "bold": 3}


def simulate_style_arena(n_models=12, n_battles=60_000, beta=PUBLISHED_BETA, seed=0, tie_share=0.0, length_of=None):
    """Votes from logit P(a) = theta_a - theta_b + z(x) . beta, x the FastChat style ratios.

    length_of: optional per-model multiplier of answer length (a model that writes long).
    Returns (BattleTable, theta, the z-scored design).
    """
    rng = np.random.default_rng(seed)
    theta = rng.normal(0, 0.4, n_models)
    a = rng.integers(0, n_models, n_battles)
    b = (a + rng.integers(1, n_models, n_battles)) % n_models
    names = np.array([f"m{i:02d}" for i in range(n_models)], dtype=object)
    frame = pd.DataFrame({"model_a": names[a], "model_b": names[b]})
    cols = []
    for f in FEATURES:
        lam = LAMBDAS[f]
        fa, fb = rng.poisson(lam, n_battles), rng.poisson(lam, n_battles)
        if f == "tokens" and length_of is not None:
            fa = rng.poisson(lam * length_of[a])
            fb = rng.poisson(lam * length_of[b])
        frame[f + "_a"], frame[f + "_b"] = fa, fb
        cols.append(ratio_difference(fa, fb))
    X = np.column_stack(cols)
    Z = (X - X.mean(0)) / X.std(0)
    p = expit(theta[a] - theta[b] + Z @ beta)
    u = rng.random(n_battles)
    tie = rng.random(n_battles) < tie_share
    frame["winner"] = np.where(tie, "tie", np.where(u < p, "model_a", "model_b"))
    return BattleTable(frame, source="simulated"), theta, Z


def test_gradient_and_hessian_match_finite_differences():
    battles, _, _ = simulate_style_arena(n_models=5, n_battles=3000, tie_share=0.2)
    data, _ = contextual_data(battles, "style")
    prob = _ContextualProblem(data, ref=0, prior=0.3, coef_prior=0.1)
    w = np.ones(data.n)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.2, 4 + 4)
    g, H = prob.grad_hess(x, w)
    h = 1e-6
    for k in range(len(x)):
        e = np.zeros_like(x)
        e[k] = h
        assert g[k] == pytest.approx((prob.loglik(x + e, w) - prob.loglik(x - e, w)) / (2 * h), rel=1e-5, abs=1e-4)
        gp, _ = prob.grad_hess(x + e, w)
        gm, _ = prob.grad_hess(x - e, w)
        np.testing.assert_allclose(H[k], (gp - gm) / (2 * h), rtol=1e-5, atol=1e-3)


def test_agrees_with_scipy_on_the_row_likelihood():
    battles, _, _ = simulate_style_arena(n_models=6, n_battles=5000, tie_share=0.2, seed=3)
    data, _ = contextual_data(battles, "style")
    fit = fit_contextual_bt(data)
    a, b, y, X = data.a, data.b, data.y, data.X

    def nll(v):
        th = np.concatenate([[0.0], v[:5]])
        e = th[a] - th[b] + X @ v[5:]
        return -np.sum(y * log_expit(e) + (1 - y) * log_expit(-e))

    res = minimize(nll, np.zeros(9), method="BFGS", options={"gtol": 1e-9})
    th = np.concatenate([[0.0], res.x[:5]])
    np.testing.assert_allclose(fit.theta, th - th.mean(), atol=2e-5)
    np.testing.assert_allclose(fit.beta, res.x[5:], atol=2e-5)


def test_style_coefficients_recovered_within_two_standard_errors():
    battles, theta, _ = simulate_style_arena(n_models=20, n_battles=400_000, seed=7)
    lb = build_leaderboard(battles, control="style", anchor="mean")
    coef = lb.coefficients.set_index("name")
    z = (coef["coef"].to_numpy() - PUBLISHED_BETA) / coef["se"].to_numpy()
    assert np.abs(z).max() < 2.0, z
    # no shrinkage: the length coefficient is within 3% of the truth
    assert coef.loc["tokens", "coef"] == pytest.approx(0.249, rel=0.03)


def test_planted_length_confound_is_removed_by_style_control():
    """m00 is as strong as m01 but writes three times longer; voters like length (beta=0.6).
    Without control m00 is ahead; with control the two are tied within their interval."""
    n = 8
    length = np.ones(n)
    length[0] = 3.0
    battles, theta, _ = simulate_style_arena(n_models=n, n_battles=150_000, beta=np.array([0.6, 0, 0, 0]), seed=11, length_of=length)
    theta_true = theta - theta.mean()
    raw = build_leaderboard(battles, anchor="mean").table.set_index("model")
    ctl = build_leaderboard(battles, control="length", anchor="mean").table.set_index("model")
    from openarena.ratings.scale import POINTS_PER_LOGIT

    true_gap = POINTS_PER_LOGIT * (theta_true[0] - theta_true.mean())
    raw_gap = raw.loc["m00", "rating"] - 1000
    ctl_gap = ctl.loc["m00", "rating"] - 1000
    assert raw_gap - true_gap > 40  # the confound inflates m00 by tens of points
    half = (ctl.loc["m00", "rating_q975"] - ctl.loc["m00", "rating_q025"]) / 2
    assert abs(ctl_gap - true_gap) < half + 2


def test_zero_variance_feature_is_dropped_with_a_warning_not_nan():
    battles, _, _ = simulate_style_arena(n_models=5, n_battles=4000, seed=2)
    battles.frame["headers_a"] = 0
    battles.frame["headers_b"] = 0
    with pytest.warns(UserWarning, match="headers"):
        lb = build_leaderboard(battles, control="style", anchor="mean")
    assert lb.coefficients["name"].tolist() == ["tokens", "lists", "bold"]
    assert np.isfinite(lb.table["rating"]).all()


def test_a_negative_style_count_is_an_error_naming_its_row_not_a_dropped_covariate():
    # (f_a - f_b) / (f_a + f_b + 1) divides by zero at f_a + f_b = -1: the covariate became
    # inf / NaN and was dropped as having "no variance"
    battles, _, _ = simulate_style_arena(n_models=4, n_battles=500, seed=3)
    battles.frame.loc[7, ["tokens_a", "tokens_b"]] = [-1, 0]
    with pytest.raises(DataError) as err:
        contextual_data(battles, "length")
    assert (err.value.row, err.value.field) == (7, "tokens_a")
    assert "negative" in str(err.value)
    frame = battles.frame.astype({"headers_b": float})
    frame.loc[7, "tokens_a"] = 0
    frame.loc[9, "headers_b"] = -0.5
    with pytest.raises(DataError) as err:
        contextual_data(BattleTable(frame), "style")
    assert (err.value.row, err.value.field) == (9, "headers_b")


def test_missing_style_columns_and_aggregated_input_are_clear_errors():
    battles, _, _ = simulate_style_arena(n_models=4, n_battles=500)
    bare = BattleTable(battles.frame[["model_a", "model_b", "winner"]], source="votes.csv")
    with pytest.raises(DataError, match="votes.csv.*tokens"):
        build_leaderboard(bare, control="length")
    from openarena.data.battles import aggregate

    with pytest.raises(OpenArenaError, match="one row per battle"):
        build_leaderboard(aggregate(battles), control="length")


def test_per_model_covariate_needs_a_prior_and_works_with_one():
    battles, _, _ = simulate_style_arena(n_models=6, n_battles=20_000, seed=4)
    price = {f"m{i:02d}": float(i) for i in range(6)}
    with pytest.raises(OpenArenaError, match="collinear|prior"):
        build_leaderboard(battles, model_values={"price": price}, anchor="mean")
    lb = build_leaderboard(battles, model_values={"price": price}, prior=5.0, anchor="mean")
    assert lb.coefficients["name"].tolist() == ["price"]
