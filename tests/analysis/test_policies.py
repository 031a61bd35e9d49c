"""Sampling policies as pure functions: the floor, a new unrated model, bad statistics."""

from __future__ import annotations

import numpy as np
import pytest

from openarena.analysis.policies import active_pairs, check_statistics, fastchat_pairs, mix, targeted_pairs, uniform_pairs
from openarena.errors import DataError
from openarena.ratings.design import design_variances


def _arena(n_old=7, per_pair=400.0):
    n = n_old + 1
    N = np.full((n, n), per_pair)
    N[-1, :] = N[:, -1] = 3.0  # the new model: 3 votes against each
    np.fill_diagonal(N, 0)
    return n, N


def test_targeted_resolves_an_unrated_new_model_instead_of_balancing_counts():
    n, N = _arena()
    ok = ~np.eye(n, dtype=bool)
    floor = uniform_pairs(ok)
    ratings = np.linspace(900, 1200, n)
    ratings[-1] = np.nan  # never lost: the leaderboard cannot rate it yet
    P = targeted_pairs(ratings, N, ok, floor, 0.2)
    new_share = P[-1].sum()  # probability that the next battle involves the new model
    assert new_share > 0.6
    # every allowed pair keeps at least its floor share
    iu = np.triu_indices(n, 1)
    assert np.all(P[iu] >= 0.2 * floor[iu] - 1e-12)
    assert np.isclose(P[iu].sum(), 1) and np.allclose(P, P.T)
    # the same without any rating at all (the whole board failed): still the new model
    P0 = targeted_pairs(np.full(n, np.nan), N, ok, floor, 0.2)
    assert P0[-1].sum() > 0.6
    # the paper's rule also favours unseen pairs, but uniform gives the new model 2/n
    assert np.isclose(uniform_pairs(ok)[-1].sum(), 2 / n)


def test_targeted_moves_votes_to_the_widest_intervals_of_a_spread_arena():
    n = 10
    ok = ~np.eye(n, dtype=bool)
    ratings = np.linspace(700, 1300, n)
    N = np.full((n, n), 200.0)
    np.fill_diagonal(N, 0)
    P = targeted_pairs(ratings, N, ok, uniform_pairs(ok), 0.2)
    theta = (ratings - ratings.mean()) / (400 / np.log(10))
    # after 10,000 more votes from it, the widest interval is narrower than under uniform
    vu = design_variances(theta, N + 10000 * uniform_pairs(ok))
    vt = design_variances(theta, N + 10000 * P)
    assert vt.max() < 0.9 * vu.max()


def test_fastchat_and_mix_and_allowed_pairs():
    ok = ~np.eye(3, dtype=bool)
    ok[0, 1] = ok[1, 0] = False  # two anonymous-only models never meet
    P = fastchat_pairs(np.array([1.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0]), ok)
    assert P[0, 1] == 0 and np.isclose(np.triu(P, 1).sum(), 1)
    A = active_pairs(np.array([1000.0, np.nan, 1000.0]), np.zeros((3, 3)), ok)
    M = mix(A, P, 0.3)
    assert M[0, 1] == 0 and np.isclose(np.triu(M, 1).sum(), 1)
    assert np.allclose(mix(np.zeros((3, 3)), P, 0.3), P)


@pytest.mark.parametrize(
    "kwargs, field, who",
    [
        ({"ratings": {"b": float("nan")}}, "rating", "'b'"),
        ({"ratings": {"b": float("inf")}}, "rating", "'b'"),
        ({"votes": {"c": -1}}, "votes", "'c'"),
        ({"votes": {"c": float("nan")}}, "votes", "'c'"),
        ({"pair_votes": {frozenset(("a", "c")): -5.0}}, "pair_votes", "a vs c"),
        ({"weights": [1.0, -2.0, 1.0]}, "weight", "'b'"),
        ({"weights": [1.0, float("nan"), 1.0]}, "weight", "'b'"),
    ],
)
def test_bad_statistics_are_a_data_error_naming_the_model_and_field(kwargs, field, who):
    with pytest.raises(DataError) as err:
        check_statistics(["a", "b", "c"], **kwargs)
    assert err.value.field == field and who in str(err.value)
