"""Intervals on sparse data (issue 9): the bootstrap never aborts when a resample leaves a model
without a finite rating, drop_unrated drops all it must, a prior that decides a rating is said,
online Elo with bootstrap follows FastChat (median) without NaN intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.battles import BattleTable
from openarena.ratings.resampling import percentile_intervals
from openarena.ratings.simulate import simulate_battles

THETA = np.array([0.0, 0.4, -0.3, 0.9, -0.7])


def _with_four_one_model(seed: int = 0) -> BattleTable:
    """Five well-mixed models plus 'newcomer' with 4 wins and 1 loss: the full data has a finite
    MLE, but about a third of the resamples leave the newcomer undefeated."""
    base = simulate_battles(THETA, 600, seed=seed).frame[["model_a", "model_b", "winner"]]
    extra = pd.DataFrame(
        [("newcomer", "m00", "model_a"), ("m01", "newcomer", "model_b"), ("newcomer", "m02", "model_a"),
         ("m03", "newcomer", "model_b"), ("newcomer", "m04", "model_b")],
        columns=["model_a", "model_b", "winner"],
    )
    return BattleTable(pd.concat([base, extra], ignore_index=True))


def test_bootstrap_keeps_resamples_with_an_undefeated_model_and_says_so():
    battles = _with_four_one_model()
    lb = build_leaderboard(battles, ci="bootstrap", rounds=200, seed=0, anchor="mean", n_jobs=1)
    t = lb.table.set_index("model")
    # the newcomer is undefeated in ~ (4/5)^5 ... about a third of the resamples: its upper bound is unbounded
    assert t.loc["newcomer", "rating_q975"] == np.inf
    assert np.isfinite(t.loc["newcomer", "rating_q025"]) and np.isfinite(t.loc["newcomer", "rating"])
    # the others keep finite intervals around their ratings
    others = t.drop(index="newcomer")
    assert np.isfinite(others[["rating_q025", "rating_q975"]].to_numpy()).all()
    assert (others.rating_q025 < others.rating).all() and (others.rating < others.rating_q975).all()
    assert len(lb.notes) == 1 and "newcomer" in lb.notes[0] and "Unbounded" in lb.notes[0]
    n_partial = int(lb.notes[0].split("in ")[1].split(" of")[0])
    assert 30 < n_partial < 130
    assert lb.provenance["notes"] == lb.notes


def test_complete_resamples_give_the_same_intervals_as_before():
    battles = simulate_battles(THETA, 3000, seed=1)
    lb = build_leaderboard(battles, ci="bootstrap", rounds=50, seed=2, anchor="mean", n_jobs=1)
    from openarena.ratings.bradley_terry import fit_bradley_terry
    from openarena.ratings.intervals import bootstrap_intervals, bootstrap_thetas
    from openarena.ratings.scale import resolve_anchor, to_elo

    fit = fit_bradley_terry(lb.counts)
    theta, _ = bootstrap_thetas(fit, 50, 2, n_jobs=1)
    ref = bootstrap_intervals(to_elo(theta, lb.counts.models, resolve_anchor("mean", lb.counts.models)))
    t = lb.table.set_index("model").loc[list(lb.counts.models)]
    np.testing.assert_allclose(t.rating_q025, ref.lower, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.rating_q975, ref.upper, rtol=0, atol=1e-9)
    assert lb.notes == []


def test_percentile_intervals_with_infinite_and_missing_samples():
    s = np.array([[0.0, 1.0, np.nan], [1.0, np.inf, 2.0], [2.0, 3.0, 4.0], [3.0, np.inf, 6.0]])
    iv, unbounded = percentile_intervals(s, level=0.5)
    assert unbounded == [1]
    assert iv.upper[1] == np.inf and np.isfinite(iv.lower[1])
    np.testing.assert_allclose([iv.lower[0], iv.upper[0]], [0.75, 2.25])
    np.testing.assert_allclose([iv.lower[2], iv.upper[2]], [3.0, 5.0])  # NaN = no information, left out


def test_drop_unrated_repeats_until_every_model_left_is_rated():
    # 'top' never lost; 'second' lost only to 'top': once 'top' is left out, 'second' is undefeated too
    base = simulate_battles(THETA, 400, seed=3).frame[["model_a", "model_b", "winner"]]
    extra = pd.DataFrame(
        [("top", "second", "model_a"), ("top", "m00", "model_a"), ("second", "m01", "model_a"), ("second", "m02", "model_a")],
        columns=["model_a", "model_b", "winner"],
    )
    battles = BattleTable(pd.concat([base, extra], ignore_index=True))
    lb = build_leaderboard(battles, drop_unrated=True, anchor="mean")
    assert set(lb.models) == {f"m0{i}" for i in range(5)}
    step = lb.counts.steps[-1]
    assert step.name == "unrated" and "top" in step.detail and "second" in step.detail and step.removed == 4


def test_a_prior_that_sets_a_rating_is_said():
    battles = BattleTable(pd.DataFrame(
        [("a", "b", "model_a"), ("b", "a", "model_a"), ("a", "c", "model_b"), ("c", "b", "model_b"), ("u", "a", "model_a"), ("u", "b", "model_a")],
        columns=["model_a", "model_b", "winner"]))
    lb = build_leaderboard(battles, prior=1.0, anchor="mean")
    assert len(lb.notes) == 1 and "prior=1" in lb.notes[0] and "u (never lost" in lb.notes[0]
    assert build_leaderboard(battles.with_frame(battles.frame.iloc[:4]), prior=1.0, anchor="mean").notes == []


def test_online_elo_bootstrap_is_fastchat_median_without_nan():
    # m05 plays 6 times: many resamples lack it (NaN there before: NaN intervals, rank 1 for all)
    base = simulate_battles(THETA, 1500, seed=5).frame[["model_a", "model_b", "winner"]]
    rare = pd.DataFrame([("m05", "m00", "model_b")] * 6, columns=["model_a", "model_b", "winner"])
    battles = BattleTable(pd.concat([base, rare], ignore_index=True))
    lb = build_leaderboard(battles, rating="elo", ci="bootstrap", rounds=30, seed=0, anchor="mean")
    t = lb.table.set_index("model")
    assert np.isfinite(t[["rating", "rating_q025", "rating_q975"]].to_numpy()).all()
    assert t.rank_ub.max() > 1 and t.loc["m03", "rank_ub"] == 1
    samples = lb.intervals.samples
    order = list(lb.counts.models)
    np.testing.assert_allclose(t.loc[order, "rating"], np.nanmedian(samples, axis=0))
    assert any("median" in n for n in lb.notes)


def test_rating_elo_works_without_choosing_intervals(tmp_path):
    from typer.testing import CliRunner

    from openarena.cli.main import app

    f = tmp_path / "votes.csv"
    simulate_battles(THETA, 500, seed=6).frame[["model_a", "model_b", "winner"]].to_csv(f, index=False)
    r = CliRunner().invoke(app, ["leaderboard", str(f), "--rating", "elo", "--rounds", "10", "--format", "csv", "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("rank_ub,model") and "nan" not in r.stdout.lower()


@pytest.mark.parametrize("flag", [["--ci", "sandwich"]])
def test_rating_elo_with_sandwich_names_the_flags(tmp_path, flag):
    from typer.testing import CliRunner

    from openarena.cli.main import app

    f = tmp_path / "votes.csv"
    simulate_battles(THETA, 200, seed=6).frame[["model_a", "model_b", "winner"]].to_csv(f, index=False)
    r = CliRunner().invoke(app, ["leaderboard", str(f), "--rating", "elo", *flag, "-q"])
    assert r.exit_code == 2 and "--ci bootstrap" in r.stderr and "ci=" not in r.stderr


def test_every_method_exposes_one_rating_protocol():
    from openarena.ratings.protocol import RatingFit

    battles = simulate_battles(THETA, 1500, model="davidson", k=0.0, seed=7)  # with ties, for the tie models
    frame = battles.frame.copy()
    frame["len_a"], frame["len_b"] = np.arange(len(frame)) % 7, np.arange(len(frame)) % 5
    rows = BattleTable(frame)
    for kw in ({}, {"ties": "davidson"}, {"control": ["len"]}, {"rating": "elo", "ci": "bootstrap", "rounds": 5}):
        lb = build_leaderboard(rows, anchor="mean", **kw)
        r = lb.result
        assert isinstance(r, RatingFit)
        assert r.models == lb.counts.models and r.strengths.shape == (5,)
        boot = r.bootstrap(3, 0, n_jobs=1)
        assert boot.theta.shape == (3, 5)
        assert (boot.coef is not None) == ("control" in kw) and (boot.tie_param is not None) == ("ties" in kw)
        if kw.get("rating") == "elo":
            assert np.isnan(r.loglik)
            with pytest.raises(NotImplementedError):
                r.covariance()
        else:
            assert np.isfinite(r.loglik)
            V, M = r.covariance(robust=True), r.covariance(robust=False)
            assert V.shape == M.shape == (5, 5) and not np.allclose(V, M)
