"""The server's PairSampler with the ``targeted`` policy: exact stored probabilities (chi-square
over many draws), the floor, a new model that cannot be rated yet, and statistics that no
policy can use (a clear DataError at update time, never a crash in sample())."""

from __future__ import annotations

import collections

import numpy as np
import pytest
from scipy import stats

from openarena.errors import DataError
from openarena.serving.sampling import PairSampler, SamplingConfig

MODELS = [("a", 1.0, None), ("b", 1.0, None), ("c", 2.0, None), ("d", 1.0, 100), ("e", 1.0, None)]
RATINGS = {"a": 1250.0, "b": 1100.0, "c": 1050.0, "d": 1000.0, "e": 850.0}


def _pairs(n_per_pair=300.0, skip=()):
    names = [m[0] for m in MODELS]
    return {frozenset((x, y)): (3.0 if skip and (x in skip or y in skip) else n_per_pair) for i, x in enumerate(names) for y in names[i + 1 :]}


def _chi_square(s: PairSampler, draws: int) -> tuple[float, dict]:
    M = s.pair_matrix()
    iu = np.triu_indices(len(s.names), 1)
    expected = M[iu]
    index = {frozenset((s.names[i], s.names[j])): k for k, (i, j) in enumerate(zip(*iu))}
    seen = np.zeros(len(expected))
    stored = {}
    for _ in range(draws):
        p = s.sample()
        k = index[frozenset((p.model_a, p.model_b))]
        seen[k] += 1
        stored[k] = p.prob
    keep = expected > 0
    assert seen[~keep].sum() == 0  # a pair of probability zero is never drawn
    return stats.chisquare(seen[keep], expected[keep] * draws).pvalue, {k: (stored[k], expected[k]) for k in stored}


def test_targeted_stored_probabilities_are_exact():
    s = PairSampler(MODELS, SamplingConfig(policy="targeted"), seed=7)
    s.update(votes={"d": 10}, pair_votes=_pairs(), ratings=RATINGS)
    p, stored = _chi_square(s, 40_000)
    assert p > 1e-3
    for prob, exact in stored.values():  # the probability stored with the battle is the matrix entry
        assert prob == exact
    # the design is not the floor: the extremes' pairs gain over fastchat's distribution
    base = PairSampler(MODELS, SamplingConfig(policy="fastchat"), seed=7)
    base.update(votes={"d": 10})
    assert s.probability("a", "b") > base.probability("a", "b")


def test_chi_square_detects_a_wrong_stored_probability():
    # the exactness test has power: against a distribution off by 10% on one pair it fails
    s = PairSampler(MODELS, SamplingConfig(policy="targeted"), seed=3)
    s.update(pair_votes=_pairs(), ratings=RATINGS)
    M = s.pair_matrix()
    iu = np.triu_indices(5, 1)
    wrong = M[iu].copy()
    wrong[0] *= 1.1
    wrong /= wrong.sum()
    counts = collections.Counter()
    for _ in range(40_000):
        p = s.sample()
        i, j = sorted((s.names.index(p.model_a), s.names.index(p.model_b)))
        counts[(i, j)] += 1
    seen = np.array([counts[(i, j)] for i, j in zip(*iu)], dtype=float)
    assert stats.chisquare(seen, wrong * seen.sum()).pvalue < 1e-3


def test_targeted_keeps_the_floor_and_the_boost():
    cfg = SamplingConfig(policy="targeted", explore=0.3)
    s = PairSampler(MODELS, cfg, seed=1)
    s.update(votes={"d": 10}, pair_votes=_pairs(), ratings=RATINGS)
    floor = PairSampler(MODELS, SamplingConfig(policy="fastchat"), seed=1)
    floor.update(votes={"d": 10})  # d below its vote target: boosted in the floor
    P, F = s.pair_matrix(), floor.pair_matrix()
    iu = np.triu_indices(5, 1)
    assert np.all(P[iu] >= 0.3 * F[iu] - 1e-12)
    assert P[3].sum() >= 0.3 * F[3].sum() - 1e-12


def test_targeted_favours_a_new_model_the_board_cannot_rate_yet():
    s = PairSampler(MODELS, SamplingConfig(policy="targeted"), seed=1)
    # e has 3 votes per pair and won them all: no finite MLE, so the board has no ratings at all
    s.update(votes={}, pair_votes=_pairs(skip=("e",)), ratings={})
    share = s.pair_matrix()[s.names.index("e")].sum()
    assert share > 0.6
    # with ratings for the others only
    s.update(ratings={k: v for k, v in RATINGS.items() if k != "e"})
    assert s.pair_matrix()[s.names.index("e")].sum() > 0.6


@pytest.mark.parametrize("policy", ["fastchat", "uniform", "active", "targeted"])
@pytest.mark.parametrize(
    "kwargs, field, who",
    [
        ({"ratings": {"b": float("nan")}}, "rating", "'b'"),
        ({"votes": {"c": -3}}, "votes", "'c'"),
        ({"pair_votes": {frozenset(("a", "b")): -1.0}}, "pair_votes", "a vs b"),
        ({"pair_votes": {frozenset(("a", "b")): float("nan")}}, "pair_votes", "a vs b"),
    ],
)
def test_bad_statistics_are_rejected_at_update_and_sampling_goes_on(policy, kwargs, field, who):
    s = PairSampler(MODELS, SamplingConfig(policy=policy), seed=1)
    s.update(votes={"d": 10}, pair_votes=_pairs(), ratings=RATINGS)
    before = s.pair_matrix()
    with pytest.raises(DataError) as err:
        s.update(**kwargs)
    assert err.value.field == field and who in str(err.value)
    assert np.array_equal(s.pair_matrix(), before)  # previous statistics kept
    p = s.sample()
    assert p.prob > 0


def test_a_bad_registry_weight_is_a_data_error():
    with pytest.raises(DataError, match="'b'"):
        PairSampler([("a", 1.0, None), ("b", float("nan"), None)], SamplingConfig())
    with pytest.raises(DataError, match="weight"):
        PairSampler([("a", 1.0, None), ("b", -1.0, None)], SamplingConfig())
