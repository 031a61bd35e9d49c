"""Drift: power at a planted change, false-alarm rate without one (seeded simulations with known
truth), p-value adjustment against statsmodels-free closed forms, and the cumulative-board
closed form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openarena.analysis.trust.drift import adjust_pvalues, cumulative_expected_sd, drift_test, history_moves
from openarena.data.battles import BattleTable
from openarena.errors import DataError
from openarena.ratings.simulate import simulate_battles

THETA = np.linspace(-0.5, 0.5, 8)
DAY = 86400.0


def _two_periods(seed: int, change: float = 0.0, votes: int = 6000) -> BattleTable:
    """Votes over 2 x 7 days; model m03 gains ``change`` logits in the second week."""
    t2 = THETA.copy()
    t2[3] += change
    f1 = simulate_battles(THETA, votes, seed=2 * seed).frame
    f2 = simulate_battles(t2, votes, seed=2 * seed + 1).frame
    rng = np.random.default_rng(seed)
    f1["tstamp"] = 1.7e9 + rng.uniform(0, 7 * DAY, votes)
    f2["tstamp"] = 1.7e9 + rng.uniform(7 * DAY, 14 * DAY, votes)
    return BattleTable(pd.concat([f1, f2], ignore_index=True), source="sim")


def test_power_at_a_planted_change_and_false_alarms_without_one():
    sims = 40
    power = false_alarm = 0
    for s in range(sims):
        hit = drift_test(_two_periods(s, change=0.25), window="7d").table.set_index("model")
        power += bool(hit.loc["m03", "drifted"])
        null = drift_test(_two_periods(100 + s, change=0.0), window="7d").table
        false_alarm += bool(null["drifted"].any())
    # 0.25 logits = 43 points, se ~ 15 points: power near 0.9; Holm keeps the family-wise rate <= 5%
    assert power / sims >= 0.6, power / sims  # bench/trust.py: 0.72 over 100 runs
    assert false_alarm / sims <= 0.125, false_alarm / sims


def test_delta_estimates_the_planted_change_with_a_calibrated_se():
    z = []
    for s in range(40):
        t = drift_test(_two_periods(200 + s, change=0.25), split=pd.Timestamp(1.7e9 + 7 * DAY, unit="s").isoformat(), models=["m03"]).table.iloc[0]
        z.append((t.delta - 0.25 * 400 / np.log(10)) / t.se)
    z = np.array(z)
    assert abs(z.mean()) < 0.5 and 0.65 < z.std() < 1.4, (z.mean(), z.std())


def test_holm_and_bh_match_their_definitions():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    assert np.allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])
    assert np.allclose(adjust_pvalues(p, "bh"), [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5][:1] + [0.05333333, 0.05333333, 0.5])


def test_drift_needs_timestamps_and_a_valid_window():
    b = simulate_battles(THETA, 500, seed=1)
    with pytest.raises(DataError, match="tstamp"):
        drift_test(b)
    with pytest.raises(DataError, match="window"):
        drift_test(_two_periods(1), window="soon")


def test_cumulative_board_closed_form_matches_simulation():
    """Nested estimates: the move of an unchanged model between n1 and n2 votes has sd
    se1 * sqrt(1 - n1/n2); checked on win-rate means with known truth."""
    rng = np.random.default_rng(0)
    n1, n2 = 2000, 5000
    y = rng.random((4000, n2)) < 0.5
    m1, m2 = y[:, :n1].mean(1), y.mean(1)
    se1 = 0.5 / np.sqrt(n1)
    assert np.std(m2 - m1) == pytest.approx(cumulative_expected_sd(se1, n1, n2), rel=0.05)
    h = pd.DataFrame({"model": ["x", "x", "y", "y"], "date": [1, 2, 1, 2], "rating": [1000, 1030, 1000, 1001], "votes": [2000, 5000, 2000, 5000], "ci_half": [10, 6, 10, 6]})
    moves = history_moves(h).set_index("model")
    assert moves.loc["x", "exceeds"] and not moves.loc["y", "exceeds"]


def test_a_cumulative_board_dilutes_a_change_the_windowed_test_sees_it():
    """m03 gains 0.4 logits (69 points) after the first week; the second week has as many
    votes. The cumulative board moves m03 by about half the change (its later votes are half
    of all its votes); the windowed delta recovers the whole change."""
    from openarena.analysis.leaderboard import build_leaderboard

    moves, deltas = [], []
    for s in range(6):
        b = _two_periods(300 + s, change=0.4)
        first = b.with_frame(b.frame[b.frame.tstamp < 1.7e9 + 7 * DAY])
        r1 = build_leaderboard(first, anchor="mean").table.set_index("model")
        r2 = build_leaderboard(b, anchor="mean").table.set_index("model")
        # relative to the other models (the mean moves with m03)
        rel = lambda r: r.loc["m03", "rating"] - r.drop("m03")["rating"].mean()  # noqa: E731
        moves.append(rel(r2) - rel(r1))
        deltas.append(drift_test(b, window="7d", models=["m03"]).table.iloc[0].delta)
    change = 0.4 * 400 / np.log(10)
    assert np.mean(moves) == pytest.approx(change / 2, abs=8)
    assert np.mean(deltas) == pytest.approx(change, abs=8)
