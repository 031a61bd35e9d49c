"""Pair-sampling policies as pure functions: a distribution over unordered pairs of models.

The arena server (:class:`openarena.serving.sampling.PairSampler`) and the vote-budget simulator
(:mod:`openarena.analysis.vote_budget`) call these same functions, so what is simulated is what
is served. Every policy returns a symmetric (..., n, n) matrix with a zero diagonal whose upper
triangle sums to 1 (or is all zero when no pair can be drawn); the probability of the pair
actually drawn is an entry of it and is stored with the battle.

Policies (see :mod:`openarena.serving.sampling` for the serving side):

``fastchat``: FastChat's two-stage rule (fastchat/serve/gradio_block_arena_anony.py,
``get_battle_pair`` / ``get_sample_weight``): first model by weight (times ``boost`` below its
vote target), rival by weight among the allowed others, battle targets at
0.5 * total / len(targets). P{i, j} = p1(i) p2(j | i) + p1(j) p2(i | j).

``uniform``: every allowed pair equally likely.

``active``: the Chatbot Arena paper's rule (Chiang et al. 2024, section 5): w_a ∝
sqrt(Σ_a / n_a) − sqrt(Σ_a / (n_a + 1)), Σ_a = p_a (1 − p_a) (0.5 when a rating is unknown),
n_a = votes on pair a plus one; mixed with ``explore`` of the fastchat distribution.

``targeted``: aims at the leaderboard's own intervals. The design for the next ``horizon``
votes (default: a tenth of the votes so far, at least 10 per model) minimises sum_k v_k^power over the
Bradley-Terry rating variances v given the current ratings and the information of the votes so
far (:func:`openarena.ratings.design.optimal_design`; power 3 leans towards the widest interval
while still caring about the others), knowing that ``explore`` of the votes come from the
fastchat distribution (the floor: every allowed pair keeps a probability, boosted new models
keep their boost). Models without a rating (not fitted yet, e.g. a new model that has not lost)
get the mean rating and a weak N(0, (200 points)^2) prior, so their wide intervals draw the
votes that resolve them, instead of counts being balanced across the whole arena.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from openarena.errors import DataError
from openarena.ratings.design import fisher_information, normalise_pairs, optimal_design
from openarena.ratings.scale import POINTS_PER_LOGIT

__all__ = [
    "DESIGN_PRIOR",
    "POLICIES",
    "active_pairs",
    "check_statistics",
    "fastchat_pairs",
    "mix",
    "targeted_design",
    "targeted_pairs",
    "uniform_pairs",
]

POLICIES = ("fastchat", "uniform", "active", "targeted")

#: Precision (per logit^2) of the design's prior on each log-strength: N(0, (200 points)^2).
DESIGN_PRIOR = (POINTS_PER_LOGIT / 200.0) ** 2
#: Exponent of the targeted criterion sum_k v_k^power. In simulation (8-12 paired seeds, the
#: arenas of bench/sampling.py) 3 saves as many votes on the widest interval as 4 within 2% and
#: costs at most ~3-5% on the median interval (4: up to 4-6%); 1 (A-optimal) saves far less on
#: the widest.
TARGETED_POWER = 3.0
#: The targeted design is for the next HORIZON_SHARE x (votes so far) votes (at least 10 per
#: model): short enough to act on the widest intervals now (a new model), long enough not to
#: chase the noise of one refresh. In simulation 0.05-0.25 give the same votes to target on
#: published-rating arenas; 1.0 is twice as slow for a new model.
HORIZON_SHARE = 0.1
#: Multiplicative-algorithm iterations of the targeted design (warm-started when possible).
TARGETED_ITERS = 10


def check_statistics(
    names: Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    votes: Mapping[str, float] | None = None,
    pair_votes: Mapping[frozenset[str], float] | None = None,
    ratings: Mapping[str, float] | None = None,
) -> None:
    """Reject statistics no policy can use, naming the model and the field.

    Raises: DataError for a weight, vote count or pair vote count that is negative or not a
    finite number, or a rating that is not finite (NaN, inf). Unknown model names are allowed
    (a model removed from the registry keeps its votes).
    """
    def bad_count(x) -> bool:
        try:
            v = float(x)
        except (TypeError, ValueError):
            return True
        return not math.isfinite(v) or v < 0

    if weights is not None:
        for name, w in zip(names, weights):
            if bad_count(w):
                raise DataError(f"model {name!r} has sampling weight {w!r}", field="weight", expected="a finite number >= 0")
    for name, v in (votes or {}).items():
        if bad_count(v):
            raise DataError(f"model {name!r} has {v!r} votes", field="votes", expected="a finite count >= 0")
    for pair, v in (pair_votes or {}).items():
        if bad_count(v):
            shown = " vs ".join(sorted(map(str, pair)))
            raise DataError(f"pair {shown} has {v!r} votes", field="pair_votes", expected="a finite count >= 0")
    for name, r in (ratings or {}).items():
        try:
            ok = math.isfinite(float(r))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise DataError(f"model {name!r} has rating {r!r}", field="rating", expected="a finite Elo-scale rating")


def fastchat_pairs(first: np.ndarray, rival: np.ndarray, allowed: np.ndarray, battle_targets: Mapping[int, Sequence[int]] | None = None) -> np.ndarray:
    """FastChat's two-stage rule as a distribution over unordered pairs.

    Parameters: first, weights of the first draw (boosted), shape (n,); rival, weights of the
    rival draw (not boosted), (n,); allowed, bool (n, n) of pairs that may meet; battle_targets,
    {model index: rival indices favoured when it is drawn first}.
    Returns: (n, n) symmetric, upper triangle summing to 1 (all zero if nothing can be drawn).
    """
    n = len(first)
    total = float(first.sum())
    P = np.zeros((n, n))
    if total <= 0:
        return P
    p1 = first / total
    for i in range(n):
        if p1[i] == 0:
            continue
        w = np.where(allowed[i], rival, 0.0)
        targets = (battle_targets or {}).get(i, ())
        if targets:
            for j in targets:
                if w[j] > 0:
                    w[j] = 0.5 * total / len(targets)
        s = w.sum()
        if s > 0:
            P[i] += p1[i] * w / s
    return normalise_pairs(P + P.T)


def uniform_pairs(allowed: np.ndarray) -> np.ndarray:
    """Every allowed pair equally likely; allowed: bool (n, n)."""
    ok = np.asarray(allowed, dtype=bool) & ~np.eye(allowed.shape[-1], dtype=bool)
    return normalise_pairs(ok.astype(float))


def active_pairs(ratings: np.ndarray, pair_votes: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The Chatbot Arena paper's active-sampling weights, normalised (before the explore mix).

    Parameters: ratings, Elo-scale ratings (..., n), NaN where unknown (then p = 0.5);
    pair_votes, votes per unordered pair (..., n, n); allowed, bool (n, n).
    Returns: (..., n, n), upper triangle summing to 1.
    Source: Chiang et al. (2024), section 5, equation for w_a.
    """
    r = np.asarray(ratings, dtype=float)
    diff = r[..., None, :] - r[..., :, None]  # r_j - r_i
    with np.errstate(over="ignore", invalid="ignore"):
        p = 1.0 / (1.0 + 10.0 ** (diff / 400.0))
    p = np.where(np.isnan(p), 0.5, p)
    var = np.maximum(p * (1 - p), 1e-4)
    n_a = np.asarray(pair_votes, dtype=float) + 1.0
    W = np.sqrt(var / n_a) - np.sqrt(var / (n_a + 1.0))
    ok = np.asarray(allowed, dtype=bool) & ~np.eye(r.shape[-1], dtype=bool)
    return normalise_pairs(np.where(ok, W, 0.0))


def mix(main: np.ndarray, floor: np.ndarray, explore: float) -> np.ndarray:
    """(1 - explore) main + explore floor, both normalised first; the floor alone where main
    is all zero."""
    main, floor = normalise_pairs(main), normalise_pairs(floor)
    has = np.triu(main, 1).sum(axis=(-1, -2), keepdims=True) > 0
    return np.where(has, normalise_pairs((1 - explore) * main + explore * floor), floor)


def targeted_design(
    ratings: np.ndarray,
    pair_votes: np.ndarray,
    allowed: np.ndarray,
    floor: np.ndarray,
    explore: float,
    *,
    horizon: float | np.ndarray | None = None,
    power: float = TARGETED_POWER,
    prior: float = DESIGN_PRIOR,
    iters: int = TARGETED_ITERS,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The design part of the ``targeted`` policy (before the floor is mixed in).

    Parameters:
        ratings: Elo-scale ratings (..., n), NaN for models not fitted yet (they get the mean
            rating; the prior keeps their variance finite and large).
        pair_votes: votes so far per unordered pair (..., n, n).
        allowed: bool (n, n), the pairs that may meet (available models, anonymous-only rule).
        floor: the distribution mixed in, (..., n, n) (the fastchat distribution, with boosts).
        explore: share of the floor, 0..1 (the design is optimised knowing it).
        horizon: votes the design is for (default: HORIZON_SHARE of the votes so far, at least
            10 per model), scalar or shape (...,).
        power, prior, iters: see :func:`openarena.ratings.design.optimal_design`; start, the
            previous design (warm start: the optimum moves little between two refreshes).
    Returns: design, (..., n, n), upper triangle summing to 1 (all zero if no pair is allowed).
    Source: :mod:`openarena.ratings.design`.
    """
    r = np.asarray(ratings, dtype=float)
    n = r.shape[-1]
    known = ~np.isnan(r)
    cnt = known.sum(axis=-1, keepdims=True)
    centre = np.where(cnt > 0, np.where(known, r, 0.0).sum(axis=-1, keepdims=True) / np.maximum(cnt, 1), 0.0)
    theta = np.where(known, r - centre, 0.0) / POINTS_PER_LOGIT
    votes = np.asarray(pair_votes, dtype=float)
    ok = np.asarray(allowed, dtype=bool) & ~np.eye(n, dtype=bool)
    if not ok.any():
        return np.zeros(r.shape[:-1] + (n, n))
    floor = normalise_pairs(np.where(ok, np.asarray(floor, dtype=float), 0.0))
    if horizon is None:
        total = np.triu(votes, 1).sum(axis=(-1, -2))
        horizon = np.maximum(HORIZON_SHARE * total, 10.0 * n)
    base = fisher_information(theta, votes, prior)
    if start is not None:  # a fifth uniform, so that pairs the last design starved can come back
        start = 0.8 * normalise_pairs(np.where(ok, start, 0.0)) + 0.2 * normalise_pairs(ok.astype(float))
    return optimal_design(
        theta, base=base, horizon=horizon, allowed=ok, floor=floor, floor_share=explore,
        power=power, prior=0.0, iters=iters, start=start,
    )


def targeted_pairs(ratings: np.ndarray, pair_votes: np.ndarray, allowed: np.ndarray, floor: np.ndarray, explore: float, **kwargs) -> np.ndarray:
    """The ``targeted`` policy: (1 - explore) :func:`targeted_design` + explore floor,
    shape (..., n, n); keyword arguments as for :func:`targeted_design`."""
    ok = np.asarray(allowed, dtype=bool)
    return mix(targeted_design(ratings, pair_votes, allowed, floor, explore, **kwargs), np.where(ok, floor, 0.0), explore)
