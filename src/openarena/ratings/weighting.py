"""Sampling-aware Bradley-Terry: vote weights that undo non-uniform pair sampling.

An arena samples pairs unevenly (new models, top models, paying providers get more battles).
When Bradley-Terry is exactly right this changes only the precision; when it is not (strengths
that depend on the prompt, intransitive triads), the maximum-likelihood estimate converges to
the BT model closest (in Kullback-Leibler divergence) to the truth *under the sampling
distribution of pairs*, so the sampling policy decides the ranking. Two reweightings:

- 'ipw': inverse propensity, w = 1 / P(pair) per vote (the arena stores P(pair) with every
  battle, column ``sampling_prob``), targeting the projection under the uniform distribution
  over pairs. Source: Chiang et al. (2024), Chatbot Arena, section 4 (reweighted MLE).
- 'arena-rank': empirical reweighting w = 1 / max(n_pair, floor) per vote of a pair with
  n_pair votes (floor 50), arena-rank's default, which makes each well-sampled pair count the
  same whatever the policy was: close to 'ipw' when every pair is observed, without knowing
  P(pair). Source: lmarena/arena-rank (``reweighted`` pair weights).

Estimates solve sum_votes w (y - p) (e_i - e_j) = 0 (ties as half wins). Their sandwich
covariance is H^-1 J H^-1 with H = sum w p (1 - p) L_ij and J = sum w^2 (y - p)^2 L_ij (the
weights treated as fixed: known propensities for 'ipw'). Weights are scaled to mean 1 over the
votes; neither the estimate nor the sandwich depends on that scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from openarena.data.battles import BattleTable, PairCounts, aggregate
from openarena.errors import DataError
from openarena.ratings.bradley_terry import fit_bradley_terry

WEIGHTINGS = ("none", "ipw", "arena-rank")
ARENA_RANK_FLOOR = 50


@dataclass(frozen=True)
class WeightedFit:
    """A weighted Bradley-Terry fit: models (n,), theta (n,) mean-zero logits, cov (n, n)
    sandwich covariance of theta (any contrast c with sum c = 0 has variance c cov c), method,
    counts (the weighted pair counts fitted)."""

    models: tuple[str, ...]
    theta: np.ndarray
    cov: np.ndarray
    method: str
    counts: PairCounts

    def covariance(self, robust: bool = True) -> np.ndarray:
        """Sandwich covariance (n, n); ``robust`` is accepted for the BTFit interface."""
        return self.cov


def _laplacian(n: int, pairs: np.ndarray, v: np.ndarray) -> np.ndarray:
    L = np.zeros((n, n))
    i, j = pairs[:, 0], pairs[:, 1]
    np.add.at(L, (i, i), v)
    np.add.at(L, (j, j), v)
    np.add.at(L, (i, j), -v)
    np.add.at(L, (j, i), -v)
    return L


def weighted_sandwich(theta: np.ndarray, pairs: np.ndarray, cw: np.ndarray, cw2: np.ndarray) -> np.ndarray:
    """Sandwich covariance of weighted BT strengths (ties as half wins).

    Parameters: theta (n,), logits; pairs (P, 2); cw (P, 4) sums of weights per outcome cell
    (first wins, second wins, tie, tie (bothbad)); cw2 (P, 4) sums of squared weights.
    Returns: (n, n), with the most-weighted model as the fixed reference (contrasts are exact).
    """
    n = len(theta)
    p = expit(theta[pairs[:, 0]] - theta[pairs[:, 1]])
    bread = _laplacian(n, pairs, cw.sum(axis=1) * p * (1 - p))
    r2 = np.column_stack([(1 - p) ** 2, p**2, (0.5 - p) ** 2, (0.5 - p) ** 2])
    meat = _laplacian(n, pairs, (cw2 * r2).sum(axis=1))
    ref = int(np.argmax(np.diag(bread)))
    keep = np.delete(np.arange(n), ref)
    Hinv = np.linalg.inv(bread[np.ix_(keep, keep)])
    out = np.zeros((n, n))
    out[np.ix_(keep, keep)] = Hinv @ meat[np.ix_(keep, keep)] @ Hinv
    return out


def vote_weights(data: BattleTable, method: str, floor: float = ARENA_RANK_FLOOR) -> np.ndarray:
    """Per-vote weights (n,), mean 1.

    'ipw' reads ``sampling_prob`` (probability of the unordered pair, in (0, 1]); 'arena-rank'
    uses 1 / max(n_pair, floor); 'none' ones.
    Raises: DataError naming the first row without a valid sampling_prob.
    """
    f = data.frame
    if method == "none":
        return np.ones(len(f))
    if method == "ipw":
        if "sampling_prob" not in f.columns:
            raise DataError("inverse-propensity weights need the probability of each battle's pair", data.source, field="sampling_prob", expected="a column sampling_prob in (0, 1] (the arena's database stores it)")
        p = pd.to_numeric(f["sampling_prob"], errors="coerce").to_numpy(dtype=float)
        bad = ~((p > 0) & (p <= 1))
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            raise DataError(f"sampling_prob is {f['sampling_prob'].iloc[r]!r}", data.source, row=r, field="sampling_prob", expected="a probability in (0, 1]")
        w = 1.0 / p
    elif method == "arena-rank":
        a, b = f["model_a"].astype(str).to_numpy(), f["model_b"].astype(str).to_numpy()
        key = pd.Series(np.where(a < b, a + "\x00" + b, b + "\x00" + a))
        n_pair = key.map(key.value_counts()).to_numpy(dtype=float)
        w = 1.0 / np.maximum(n_pair, floor)
    else:
        raise DataError(f"unknown weighting {method!r}", data.source, field="weighting", expected="none, ipw or arena-rank")
    return w / w.mean()


def fit_weighted(data: BattleTable | PairCounts, method: str = "ipw", *, floor: float = ARENA_RANK_FLOOR) -> WeightedFit:
    """Bradley-Terry (ties as half wins) with sampling weights and sandwich covariance.

    Parameters: data, battle rows (needed for 'ipw'; 'arena-rank' and 'none' also take pair
    counts); method, 'none' | 'ipw' | 'arena-rank'; floor, arena-rank's minimum pair count.
    Returns: WeightedFit. Raises: DataError (weights), ConvergenceError (no finite MLE).
    """
    if method not in WEIGHTINGS:
        raise DataError(f"unknown weighting {method!r}", field="weighting", expected="none, ipw or arena-rank")
    if isinstance(data, PairCounts):
        if method == "ipw":
            raise DataError("inverse-propensity weights need one row per vote with sampling_prob", data.source, field="sampling_prob")
        c = data.counts
        w = 1.0 / np.maximum(c.sum(axis=1), floor) if method == "arena-rank" else np.ones(len(c))
        w = w * c.sum() / (c * w[:, None]).sum()
        cw, cw2 = c * w[:, None], c * (w**2)[:, None]
        base = data
    else:
        w = vote_weights(data, method, floor)
        base = aggregate(data, w)
        cw = base.counts
        cw2 = aggregate(data, w**2).counts
    fit = fit_bradley_terry(PairCounts(base.models, base.pairs, cw, base.source, base.steps))
    cov = weighted_sandwich(fit.theta, base.pairs, cw, cw2)
    return WeightedFit(base.models, fit.theta, cov, method, PairCounts(base.models, base.pairs, cw, base.source, base.steps))


def population_target(P: np.ndarray, q: np.ndarray, iters: int = 200) -> np.ndarray:
    """The BT strengths a (weighted) fit converges to: the solution of
    sum_{i<j} q_ij (P_ij - sigmoid(t_i - t_j)) (e_i - e_j) = 0, mean zero.

    Parameters: P (n, n), true P(i beats j) (ties as half); q (n, n), symmetric weight of each
    pair in the limit (sampling distribution, times the vote weights). Returns: (n,) logits.
    """
    n = len(P)
    iu, ju = np.triu_indices(n, 1)
    pairs = np.column_stack([iu, ju])
    qq = q[iu, ju]
    y = P[iu, ju]
    t = np.zeros(n)
    for _ in range(iters):
        p = expit(t[iu] - t[ju])
        g = np.bincount(iu, qq * (y - p), n) - np.bincount(ju, qq * (y - p), n)
        H = _laplacian(n, pairs, qq * p * (1 - p)) + 1e-12 * np.eye(n)
        step = np.linalg.lstsq(H, g, rcond=None)[0]
        t = t + step
        t -= t.mean()
        if np.abs(step).max() < 1e-12:
            break
    return t
