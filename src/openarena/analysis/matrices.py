"""Pairwise matrices of a leaderboard: battle counts, observed and predicted win rates.

Each is a DataFrame of shape (n_models, n_models) indexed by model (rows = model A, columns =
model B), in the order given (default: the leaderboard's).

Source: FastChat ``compute_pairwise_win_fraction`` / ``visualize_battle_count``
(fastchat/serve/monitor/elo_analysis.py); the predicted matrix is the Bradley-Terry
probability sigma(theta_a - theta_b).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from openarena.data.battles import PairCounts
from openarena.ratings.bradley_terry import BTFit


def _reorder(mat: np.ndarray, models: tuple[str, ...], order: list[str] | None) -> pd.DataFrame:
    df = pd.DataFrame(mat, index=list(models), columns=list(models))
    if order is not None:
        df = df.loc[order, order]
    df.index.name, df.columns.name = "model_a", "model_b"
    return df


def battle_counts(counts: PairCounts, order: list[str] | None = None) -> pd.DataFrame:
    """Number of votes between each pair (symmetric, zero diagonal)."""
    n = counts.n_models
    m = np.zeros((n, n))
    tot = counts.counts.sum(axis=1)
    m[counts.pairs[:, 0], counts.pairs[:, 1]] = tot
    m[counts.pairs[:, 1], counts.pairs[:, 0]] = tot
    return _reorder(m, counts.models, order)


def observed_win_rates(counts: PairCounts, order: list[str] | None = None, ties: str = "exclude") -> pd.DataFrame:
    """Share of the row model's wins against the column model; NaN where they never met.

    ties: 'exclude' (wins / decisive votes, FastChat's heat map) or 'half' (ties count half).
    """
    n = counts.n_models
    c = counts.counts
    i, j = counts.pairs[:, 0], counts.pairs[:, 1]
    if ties == "exclude":
        wi, wj = c[:, 0], c[:, 1]
    elif ties == "half":
        h = 0.5 * (c[:, 2] + c[:, 3])
        wi, wj = c[:, 0] + h, c[:, 1] + h
    else:
        raise ValueError(f"ties must be 'exclude' or 'half', not {ties!r}")
    tot = wi + wj
    m = np.full((n, n), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        m[i, j] = np.where(tot > 0, wi / tot, np.nan)
        m[j, i] = np.where(tot > 0, wj / tot, np.nan)
    return _reorder(m, counts.models, order)


def predicted_win_rates(fit: BTFit, order: list[str] | None = None) -> pd.DataFrame:
    """Bradley-Terry probability that the row model beats the column model (ties aside for the
    tie models: P(win) / (P(win) + P(loss)) = sigma(theta_a - theta_b))."""
    th = fit.theta
    m = expit(th[:, None] - th[None, :])
    np.fill_diagonal(m, np.nan)
    return _reorder(m, fit.models, order)
