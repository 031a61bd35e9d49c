"""Online Elo against a from-scratch transcription of FastChat's update rule."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from openarena.analysis.leaderboard import build_leaderboard
from openarena.ratings.elo import online_elo, online_elo_bootstrap
from openarena.ratings.simulate import simulate_battles

THETA = np.array([0.0, 0.4, -0.3, 0.9, -0.7])


def reference_elo(frame, K=4, SCALE=400, BASE=10, INIT=1000):
    rating = defaultdict(lambda: INIT)
    for a, b, w in frame[["model_a", "model_b", "winner"]].itertuples(index=False):
        ra, rb = rating[a], rating[b]
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        eb = 1 / (1 + BASE ** ((ra - rb) / SCALE))
        sa = {"model_a": 1, "model_b": 0}.get(w, 0.5)
        rating[a] += K * (sa - ea)
        rating[b] += K * (1 - sa - eb)
    return dict(rating)


def test_online_elo_equals_fastchat_rule():
    battles = simulate_battles(THETA, 4000, model="davidson", k=0.0, seed=3)
    models, ratings = online_elo(battles)
    ref = reference_elo(battles.frame)
    np.testing.assert_allclose(ratings, [ref[m] for m in models], atol=1e-9)
    assert ratings.mean() == pytest.approx(1000, abs=1e-9)


def test_online_elo_order_matters_and_k_scales_moves():
    battles = simulate_battles(THETA, 2000, seed=4)
    _, r1 = online_elo(battles)
    reversed_ = type(battles)(battles.frame.iloc[::-1], validate=False)
    _, r2 = online_elo(reversed_)
    assert np.abs(r1 - r2).max() > 0.5
    _, r0 = online_elo(battles, k=0.0)
    assert np.all(r0 == 1000)


def test_elo_bootstrap_samples_and_leaderboard():
    battles = simulate_battles(THETA, 3000, seed=5)
    models, samples = online_elo_bootstrap(battles, rounds=20, seed=1)
    assert samples.shape == (20, 5)
    assert np.isfinite(samples).all()
    lb = build_leaderboard(battles, rating="elo", ci="bootstrap", rounds=20, anchor="mean")
    t = lb.table
    assert (t.rating_q025 <= t.rating_q975).all()
    # the strongest true model leads
    assert t.model.iloc[0] == "m03"
