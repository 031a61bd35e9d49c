"""Simulated arenas with known strengths, for tests, power analysis and sampling studies.

Votes are drawn from the same outcome models the fitter uses (:mod:`openarena.ratings.ties`):
'bt' (no ties), 'rao-kupper' or 'davidson' (ties with a known tie parameter). Half of the ties
are labelled 'tie' and half 'tie (bothbad)' at random.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from openarena.data.battles import BattleTable, PairCounts
from openarena.data.schema import WINNERS


def outcome_probabilities(s: np.ndarray, model: str = "bt", k: float | None = None) -> np.ndarray:
    """P(i wins), P(j wins), P(tie) for log-strength differences ``s`` (shape (n,)) -> (n, 3).

    model: 'bt' (no ties), 'rao-kupper' (k = threshold > 0) or 'davidson' (k = log nu).
    Source: Bradley & Terry (1952); Rao & Kupper (1967); Davidson (1970).
    """
    s = np.asarray(s, dtype=float)
    if model == "bt":
        p = expit(s)
        return np.column_stack([p, 1 - p, np.zeros_like(p)])
    if model == "rao-kupper":
        if k is None or k <= 0:
            raise ValueError("rao-kupper needs k > 0")
        pw, pl = expit(s - k), expit(-s - k)
        return np.column_stack([pw, pl, 1 - pw - pl])
    if model == "davidson":
        if k is None:
            raise ValueError("davidson needs k = log nu")
        u = np.column_stack([s / 2, -s / 2, np.full_like(s, k)])
        e = np.exp(u - u.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown model {model!r}")


def simulate_battles(
    theta: np.ndarray,
    n_battles: int,
    *,
    model: str = "bt",
    k: float | None = None,
    seed: int | None = 0,
    models: list[str] | None = None,
    pair_weights: np.ndarray | None = None,
) -> BattleTable:
    """Draw ``n_battles`` votes between models with log-strengths ``theta`` (shape (n_models,)).

    Pairs are drawn uniformly among all i != j (or by ``pair_weights``, shape (n_models,
    n_models)); the side (model_a / model_b) is random. Returns a BattleTable with model_a,
    model_b, winner (model names 'm00', 'm01', ... unless ``models`` is given).
    """
    rng = np.random.default_rng(seed)
    theta = np.asarray(theta, dtype=float)
    n = len(theta)
    names = models or [f"m{i:02d}" for i in range(n)]
    if pair_weights is None:
        w = np.ones((n, n))
    else:
        w = np.asarray(pair_weights, dtype=float).copy()
    np.fill_diagonal(w, 0)
    flat = w.ravel() / w.sum()
    idx = rng.choice(n * n, size=n_battles, p=flat)
    a, b = idx // n, idx % n
    probs = outcome_probabilities(theta[a] - theta[b], model, k)
    u = rng.random(n_battles)
    outcome = (u[:, None] > np.cumsum(probs, axis=1)[:, :2]).sum(axis=1)  # 0 a wins, 1 b wins, 2 tie
    tie_kind = rng.random(n_battles) < 0.5
    code = np.where(outcome == 2, np.where(tie_kind, 2, 3), outcome)
    frame = pd.DataFrame(
        {
            "model_a": np.asarray(names, dtype=object)[a],
            "model_b": np.asarray(names, dtype=object)[b],
            "winner": np.asarray(WINNERS, dtype=object)[code],
        }
    )
    return BattleTable(frame, source=f"simulated(seed={seed})")


def simulate_counts(theta: np.ndarray, n_battles: int, **kwargs) -> PairCounts:
    """:func:`simulate_battles`, aggregated."""
    from openarena.data.battles import aggregate

    return aggregate(simulate_battles(theta, n_battles, **kwargs))
