"""Anomalous-voter detection on simulated arenas with planted adversaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import kstest

from openarena.analysis.voters import detect_anomalous_voters, drop_voters, leaderboard_shift, vote_pvalues
from openarena.data.battles import BattleTable
from openarena.errors import DataError

THETA = np.linspace(-1.2, 1.2, 10)
NAMES = np.array([f"m{i}" for i in range(10)], dtype=object)


def arena_with_voters(n_honest=500, seed=0, adversaries=("bad-1", "bad-2")):
    """Honest voters vote from Bradley-Terry (with 20% ties); each adversary always votes for
    the weaker model of the pair."""
    rng = np.random.default_rng(seed)
    rows = []
    voters = [f"user{k:04d}" for k in range(n_honest)] + list(adversaries)
    for v in voters:
        k = int(rng.integers(10, 120)) if not v.startswith("bad") else int(rng.integers(60, 150))
        a = rng.integers(0, 10, k)
        b = (a + rng.integers(1, 10, k)) % 10
        if v.startswith("bad"):
            w = np.where(THETA[a] < THETA[b], "model_a", "model_b")
        else:
            p = expit(THETA[a] - THETA[b])
            u = rng.random(k)
            tie = rng.random(k) < 0.2
            w = np.where(tie, "tie", np.where(u < p, "model_a", "model_b"))
        rows.append(pd.DataFrame({"model_a": NAMES[a], "model_b": NAMES[b], "winner": w, "judge": v, "tstamp": rng.random(k)}))
    return BattleTable(pd.concat(rows, ignore_index=True), source="simulated")


def test_pvalues_of_honest_votes_are_uniform():
    battles = arena_with_voters(adversaries=())
    p = vote_pvalues(battles, seed=1)
    assert np.isfinite(p).mean() > 0.99
    assert kstest(p[np.isfinite(p)], "uniform").pvalue > 0.01


def test_planted_adversaries_flagged_and_honest_voters_at_most_alpha():
    battles = arena_with_voters(seed=3)
    report = detect_anomalous_voters(battles, alpha=0.05)
    v = report.voters.set_index("judge")
    assert v.loc["bad-1", "flagged"] and v.loc["bad-2", "flagged"]
    honest = v.drop(index=["bad-1", "bad-2"])
    rate = honest["flagged"].mean()
    assert rate <= 0.05, rate
    # the adversaries' evidence is overwhelming, not borderline
    assert v.loc["bad-1", "min_adjusted_p"] < 1e-6


def test_removing_flagged_voters_moves_the_leaderboard_back():
    battles = arena_with_voters(seed=4, adversaries=tuple(f"bad-{i}" for i in range(40)))
    report = detect_anomalous_voters(battles)
    assert {f"bad-{i}" for i in range(40)} <= set(report.flagged)
    shift = leaderboard_shift(battles, report.flagged, anchor="mean").set_index("model")
    # the adversaries pulled the strongest model down and the weakest up
    assert shift.loc["m9", "delta"] > 10 and shift.loc["m0", "delta"] < -10
    cleaned = drop_voters(battles, report.flagged)
    assert cleaned.steps[-1].name == "anomalous_voters"
    assert cleaned.steps[-1].removed == len(battles) - len(cleaned)


def test_missing_judge_column_is_a_data_error():
    battles = arena_with_voters(n_honest=5, adversaries=())
    bare = BattleTable(battles.frame.drop(columns="judge"), source="votes.csv")
    with pytest.raises(DataError, match="votes.csv.*judge"):
        detect_anomalous_voters(bare)


@pytest.mark.parametrize("kw", [{"looks": ()}, {"looks": (0, 5)}, {"alpha": 2.0}, {"alpha": 0.0}])
def test_invalid_looks_and_alpha_are_refused(kw):
    from openarena.errors import OpenArenaError

    with pytest.raises(OpenArenaError):
        detect_anomalous_voters(arena_with_voters(n_honest=5, adversaries=()), **kw)
