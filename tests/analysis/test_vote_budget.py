"""The vote-budget simulator: agreement with the Fisher-information prediction, paired seeds,
targeted against uniform on a spread arena, a new model joining an arena, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from openarena.analysis.vote_budget import ArenaSpec, expected_votes, read_strengths, simulate_policy
from openarena.errors import DataError, OpenArenaError
from openarena.ratings.scale import POINTS_PER_LOGIT


def _spec(theta, **kw):
    n = len(theta)
    return ArenaSpec(tuple(f"m{i}" for i in range(n)), 1000 + POINTS_PER_LOGIT * np.asarray(theta), **kw)


def test_uniform_votes_to_target_match_the_fisher_prediction():
    spec = _spec(np.zeros(6))
    target = 15.0
    predicted = expected_votes(spec, target)  # about 4,300 votes
    res = simulate_policy(spec, "uniform", seeds=range(12), target_halfwidth=target, votes_per_refit=50)
    assert np.all(np.isfinite(res.votes_to_target))
    assert abs(np.median(res.votes_to_target) / predicted - 1) < 0.06
    assert np.all(res.max_halfwidth < target) and np.all(res.median_halfwidth <= res.max_halfwidth)
    assert np.all(res.votes_to_median <= res.votes_to_target)
    assert np.allclose(res.votes_per_model.sum(axis=1), 2 * res.votes_to_target)


def test_seeds_are_paired_across_policies_and_reproducible():
    spec = _spec(np.linspace(-1, 1, 5))  # equal weights, no boost: fastchat is uniform
    a = simulate_policy(spec, "uniform", seeds=[3, 4], target_halfwidth=60)
    b = simulate_policy(spec, "fastchat", seeds=[3, 4], target_halfwidth=60)
    c = simulate_policy(spec, "uniform", seeds=[3, 4], target_halfwidth=60)
    assert np.array_equal(a.votes_to_target, b.votes_to_target) and np.array_equal(a.max_halfwidth, b.max_halfwidth)
    assert np.array_equal(a.votes_to_target, c.votes_to_target)


def test_targeted_needs_fewer_votes_than_uniform_for_the_widest_interval_of_a_spread_arena():
    spec = _spec(np.linspace(-1.5, 1.5, 8))
    seeds = range(8)
    u = simulate_policy(spec, "uniform", seeds=seeds, target_halfwidth=35)
    t = simulate_policy(spec, "targeted", seeds=seeds, target_halfwidth=35)
    ratio = np.exp(np.mean(np.log(u.votes_to_target / t.votes_to_target)))
    assert ratio > 1.15
    assert t.summary()["votes_to_target"] < u.summary()["votes_to_target"]


def test_a_new_model_joining_an_arena():
    spec = _spec(np.array([0.0, 0.3, -0.3, 0.6, -0.6, 1.2]))
    kw = dict(seeds=range(4), target_halfwidth=30, new_model="m5", history=20_000)
    u = simulate_policy(spec, "uniform", **kw)
    t = simulate_policy(spec, "targeted", **kw)
    assert u.criterion == "model m5"
    # the old models had 20,000 votes; m5 starts from nothing and gets a third of the votes
    # under uniform (2/6), far more under targeted
    assert np.all(t.votes_to_target < 0.75 * u.votes_to_target)
    assert t.votes_per_model[:, 5].mean() > 0.5 * t.votes_to_target.mean()
    with pytest.raises(DataError, match="nope"):
        simulate_policy(spec, "uniform", seeds=[0], target_halfwidth=30, new_model="nope")


def test_bad_input():
    with pytest.raises(DataError, match="rating"):
        _spec(np.array([0.0, np.nan]))
    with pytest.raises(OpenArenaError, match="unknown sampling policy"):
        simulate_policy(_spec(np.zeros(3)), "best", target_halfwidth=10)
    with pytest.raises(OpenArenaError, match="half-width"):
        simulate_policy(_spec(np.zeros(3)), "uniform", target_halfwidth=-1)


def test_read_strengths(tmp_path):
    good = tmp_path / "s.csv"
    good.write_text("model,rating,weight,vote_target\na,1100,2,\nb,1000,1,500\nc,950,1,\n")
    spec = read_strengths(str(good))
    assert spec.models == ("a", "b", "c") and np.allclose(spec.weights, [2, 1, 1])
    assert np.isnan(spec.vote_targets[0]) and spec.vote_targets[1] == 500
    cases = {
        "model,score\na,1\nb,2\n": ("field 'rating'", None),
        "model,rating\na,1100\na,1000\n": ("row 2, field 'model'", "already on row 1"),
        "model,rating\na,1100\nb,abc\n": ("row 2, field 'rating'", "'abc'"),
        "model,rating,weight\na,1100,1\nb,1000,0\n": ("row 2, field 'weight'", None),
        "model,rating\na,1100\n": ("at least two models", None),
    }
    for k, (text, (where, what)) in enumerate(cases.items()):
        f = tmp_path / f"bad{k}.csv"
        f.write_text(text)
        with pytest.raises(DataError) as err:
            read_strengths(str(f))
        msg = str(err.value)
        assert str(f) in msg and where in msg and (what is None or what in msg), msg
