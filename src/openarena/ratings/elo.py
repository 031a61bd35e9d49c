"""Online Elo, FastChat's legacy arena rating, and its bootstrap.

Each vote in time order moves both ratings by K * (S - E), with E = 1 / (1 + 10^((R_b - R_a)/400))
and S = 1, 0, 1/2, 1/2 for model_a, model_b, tie, tie (bothbad). Ratings start at 1000 and
updates are zero-sum, so the mean stays 1000. Online Elo depends on the order of votes and
weighs recent votes more; the Bradley-Terry MLE is the order-free replacement the arena
adopted in December 2023.

Source: FastChat ``compute_elo`` (lm-sys/FastChat, fastchat/serve/monitor/elo_analysis.py,
K=4, SCALE=400, BASE=10, INIT_RATING=1000) and ``get_bootstrap_result`` (resample votes with
replacement, in random order, then recompute).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from openarena.data.battles import BattleTable, PairCounts
from openarena.data.schema import factorize_models, winner_codes
from openarena.ratings.scale import BASE, INIT_RATING, SCALE

_SCORE = np.array([1.0, 0.0, 0.5, 0.5])


def _encode(battles: BattleTable) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    codes, models = factorize_models(battles.frame)
    score = _SCORE[winner_codes(battles.frame["winner"], battles.source)]
    return codes[0], codes[1], score, [str(m) for m in models]


def online_elo(
    battles: BattleTable | PairCounts,
    k: float = 4.0,
    scale: float = SCALE,
    base: float = BASE,
    init_rating: float = INIT_RATING,
    seed: int | None = 0,
) -> tuple[list[str], np.ndarray]:
    """Online Elo ratings after one pass over the votes in row order.

    Parameters: battles, rows in time order (sort by tstamp first; a PairCounts is expanded to
    rows shuffled with ``seed``, since it has no order); k, the K-factor.
    Returns: (models, ratings): sorted model keys and float64 ratings of shape (n_models,).
    """
    if isinstance(battles, PairCounts):
        battles = battles.to_battles(seed=seed)
    a, b, score, models = _encode(battles)
    ratings = [init_rating] * len(models)
    log_base = np.log(base)
    exp = np.exp
    for i, j, s in zip(a.tolist(), b.tolist(), score.tolist()):
        ra, rb = ratings[i], ratings[j]
        ea = 1.0 / (1.0 + exp(log_base * (rb - ra) / scale))
        delta = k * (s - ea)
        ratings[i] = ra + delta
        ratings[j] = rb - delta
    return models, np.asarray(ratings)


def online_elo_bootstrap(
    battles: BattleTable | PairCounts,
    rounds: int = 100,
    seed: int | None = 0,
    k: float = 4.0,
    scale: float = SCALE,
    base: float = BASE,
    init_rating: float = INIT_RATING,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Online Elo on ``rounds`` resamples of the votes (drawn with replacement, random order).

    All rounds advance together, one vote per step, vectorised over rounds.
    Returns: (models, samples) with samples of shape (rounds, n_models).
    """
    if isinstance(battles, PairCounts):
        battles = battles.to_battles(seed=seed)
    a, b, score, models = _encode(battles)
    n, T = len(models), len(a)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, T, size=(rounds, T))
    A, B, S = a[idx], b[idx], score[idx]
    ratings = np.full((rounds, n), float(init_rating))
    rows = np.arange(rounds)
    c = np.log(base) / scale
    step = max(1, T // 100)
    for t in range(T):
        ia, ib = A[:, t], B[:, t]
        ra, rb = ratings[rows, ia], ratings[rows, ib]
        delta = k * (S[:, t] - 1.0 / (1.0 + np.exp(c * (rb - ra))))
        ratings[rows, ia] = ra + delta
        ratings[rows, ib] = rb - delta
        if progress and (t + 1) % step == 0:
            progress(rounds * step / T)
    # a model that a resample never drew keeps 1000; mark it missing instead
    seen = np.zeros((rounds, n), bool)
    seen[rows[:, None], A] = True
    seen[rows[:, None], B] = True
    ratings[~seen] = np.nan
    return models, ratings
