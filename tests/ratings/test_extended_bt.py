"""Extended Bradley-Terry (red-team arena): exactness against an independent logistic
regression, recovery and interval coverage on simulated games with known truth, the online
estimate in time order, and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openarena.data.rounds import aggregate_rounds, rounds_from_frame
from openarena.errors import ConvergenceError, DataError
from openarena.ratings.extended_bt import (
    bootstrap_extended_bt,
    fit_extended_bt,
    online_extended_bt,
    simulate_rounds,
)


def _truth(seed, P, M, T, sd_player=1.0, level=0.3):
    rng = np.random.default_rng(seed)
    s = rng.normal(level, sd_player, P)
    r = rng.normal(0, 0.7, M)
    d = rng.normal(0, 0.7, T)
    return s, r - r.mean(), d - d.mean()


def test_maximum_likelihood_equals_an_independent_logistic_regression():
    """Unpenalised fit vs scikit-learn's exact Newton solver on the one-hot design (rows
    weighted by round counts): same skills, robustness and difficulty to 1e-6 logits."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    s, r, d = _truth(0, 12, 5, 4)
    rounds = simulate_rounds(s, r, d, 120, seed=1)
    fit = fit_extended_bt(rounds, player_prior=0)
    c = aggregate_rounds(rounds)
    P, M, T = len(c.players), len(c.models), len(c.targets)
    X = np.zeros((len(c.cells), P + M + T))
    k = np.arange(len(c.cells))
    X[k, c.cells[:, 0]] = 1
    X[k, P + c.cells[:, 1]] = -1
    X[k, P + M + c.cells[:, 2]] = -1
    keep = np.delete(np.arange(P + M + T), [P, P + M])  # the same two constraints, pinned
    Xr = np.vstack([X[:, keep], X[:, keep]])
    y = np.concatenate([np.ones(len(k)), np.zeros(len(k))])
    w = np.concatenate([c.wins, c.losses])
    lr = sklearn.LogisticRegression(C=np.inf, fit_intercept=False, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    lr.fit(Xr[w > 0], y[w > 0], sample_weight=w[w > 0])
    full = np.zeros(P + M + T)
    full[keep] = lr.coef_[0]
    sk, rk, dk = full[:P], full[P:P + M], full[P + M:]
    ref_s = sk - rk.mean() - dk.mean()
    np.testing.assert_allclose(fit.robustness, rk - rk.mean(), atol=1e-6)
    np.testing.assert_allclose(fit.difficulty, dk - dk.mean(), atol=1e-6)
    np.testing.assert_allclose(fit.skill, ref_s, atol=1e-6)
    from scipy.special import log_expit

    eta = X[:, keep] @ lr.coef_[0]
    assert abs(fit.loglik - float(c.wins @ log_expit(eta) + c.losses @ log_expit(-eta))) < 1e-6


def test_parameters_recovered_and_intervals_cover_for_players_with_few_rounds_too():
    """12 seeded games, 150 players with 3 to 60 rounds each (a quarter with at most 8), 8
    models, 6 targets: 95% intervals cover the truth in 92-98% of cases for players (all, and
    those with <= 8 rounds) and for models and targets; the prior sd is recovered."""
    inside = {"player": [], "few": [], "fixed": []}
    taus = []
    for seed in range(12):
        s, r, d = _truth(seed, 150, 8, 6)
        per = np.random.default_rng(seed + 50).integers(3, 61, 150)
        per[:40] = np.random.default_rng(seed).integers(3, 9, 40)
        fit = fit_extended_bt(simulate_rounds(s, r, d, per, seed=seed + 100))
        order = np.argsort([int(p[1:]) for p in fit.counts.players])
        iv = fit.skill_intervals()[order]
        hit = (iv[:, 0] <= s) & (s <= iv[:, 1])
        inside["player"].extend(hit)
        inside["few"].extend(hit[per <= 8])
        se = np.sqrt(np.diag(fit.covariance(robust=True)))[150:]
        z = (np.concatenate([fit.robustness, fit.difficulty]) - np.concatenate([r, d])) / se
        inside["fixed"].extend(np.abs(z) < 1.959964)
        taus.append(fit.tau)
    cover = {k: float(np.mean(v)) for k, v in inside.items()}
    assert 0.92 <= cover["player"] <= 0.98, cover
    assert 0.92 <= cover["few"] <= 0.98, cover
    assert 0.90 <= cover["fixed"] <= 0.99, cover  # 168 intervals: binomial sd 1.7 points
    assert abs(np.mean(taus) - 1.0) < 0.08, taus


def test_sandwich_intervals_cover_without_a_prior():
    """Maximum likelihood with many rounds per player: Wald intervals from the sandwich cover
    all three kinds at about 95%."""
    hits = []
    for seed in range(20):
        s, r, d = _truth(seed, 10, 6, 5)
        fit = fit_extended_bt(simulate_rounds(s, r, d, 200, seed=seed + 7), player_prior=0)
        se = np.sqrt(np.diag(fit.covariance()))
        truth = np.concatenate([s - 0.0, r, d])
        hits.extend(np.abs(fit.params - truth) / se < 1.959964)
    assert 0.92 <= np.mean(hits) <= 0.98, np.mean(hits)


def test_bootstrap_agrees_with_the_sandwich():
    s, r, d = _truth(3, 10, 6, 5, sd_player=0.5)
    fit = fit_extended_bt(simulate_rounds(s, r, d, 150, seed=4), player_prior=0)
    draws = bootstrap_extended_bt(fit, 200, seed=1)
    assert not np.isnan(draws).any()  # no resample without a finite estimate here
    ratio = draws.std(axis=0) / np.sqrt(np.diag(fit.covariance()))
    assert 0.8 < np.median(ratio) < 1.2, np.median(ratio)
    again = bootstrap_extended_bt(fit, 200, seed=1)
    np.testing.assert_array_equal(draws, again)


def test_a_resample_without_a_finite_estimate_is_reported_not_fatal():
    """A player who won 9 of 10 rounds: some resamples give them 10 of 10 (no MLE without a
    prior); those rows are NaN and counted, the rest are kept."""
    frame = pd.DataFrame({
        "player": ["ace"] * 10 + ["bo"] * 30,
        "model": ["m1", "m2"] * 20,
        "target": ["t1"] * 20 + ["t2"] * 20,
        "outcome": ["win"] * 9 + ["loss"] + ["win", "loss", "loss"] * 10,
    })
    fit = fit_extended_bt(rounds_from_frame(frame), player_prior=0)
    draws = bootstrap_extended_bt(fit, 100, seed=0)
    failed = np.isnan(draws).any(axis=1)
    assert 10 < failed.sum() < 90  # P(10 of 10 | p = 0.9) = 0.35 per resample, roughly
    assert np.isfinite(draws[~failed]).all()


def test_online_estimate_follows_time_not_file_order():
    s, r, d = _truth(1, 40, 6, 5)
    rounds = simulate_rounds(s, r, d, 40, seed=2)
    shuffled = rounds_from_frame(rounds.frame.sample(frac=1.0, random_state=0).assign(outcome=lambda f: f.pop("won")))
    a = online_extended_bt(rounds)
    b = online_extended_bt(shuffled)
    np.testing.assert_allclose(a.params, b.params, atol=1e-12)
    c = online_extended_bt(shuffled, order="file")
    assert np.abs(c.params - a.params).max() > 1e-3
    batch = fit_extended_bt(rounds)
    assert np.corrcoef(a.robustness, batch.robustness)[0, 1] > 0.9


def test_no_finite_estimate_names_the_entity_and_a_prior_fixes_players():
    frame = pd.DataFrame({
        "player": ["ann"] * 4 + ["bob"] * 4,
        "model": ["m1", "m2"] * 4,
        "target": ["t1", "t1", "t2", "t2"] * 2,
        "outcome": ["win"] * 4 + ["win", "loss", "loss", "win"],
    })
    rounds = rounds_from_frame(frame, "r.csv")
    with pytest.raises(ConvergenceError, match="player 'ann'"):
        fit_extended_bt(rounds, player_prior=0)
    fit = fit_extended_bt(rounds, player_prior=1.0)
    assert np.isfinite(fit.skill).all() and fit.skill[0] > fit.skill[1]


def test_bad_rounds_are_named():
    frame = pd.DataFrame({"player": ["a", "b"], "model": ["m", "m"], "target": ["t", "t"], "outcome": ["win", "draw"]})
    with pytest.raises(DataError, match=r"r.csv: row 2, field 'outcome': unknown outcome 'draw'"):
        rounds_from_frame(frame, "r.csv")
    with pytest.raises(DataError, match="missing column"):
        rounds_from_frame(frame.drop(columns="target"), "r.csv")
    with pytest.raises(DataError, match="field 'player_prior'"):
        fit_extended_bt(rounds_from_frame(frame.assign(outcome=["win", "loss"])), player_prior=-1)
