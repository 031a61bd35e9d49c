"""Simultaneous confidence sets for Bradley-Terry strengths and the rank intervals they imply.

A per-model 95% interval covers each model's strength 95% of the time *separately*; with 100
models, several miss at once. A simultaneous set covers all of them at once with probability
>= level, and so do the rank intervals read from it.

Three critical values for the standardized estimation error of the strengths (Elo points),
all computed from one covariance (the sandwich H^-1 J H^-1 of the fit) or from bootstrap draws:

- 'chi2' (Scheffe): the Chatbot Arena paper's uniform confidence set, the ellipsoid
  (t - t_hat)^T V^+ (t - t_hat) <= chi2_{M-1}(level). Its projection on any contrast c (sum c = 0)
  is c t_hat +- sqrt(chi2_{M-1}(level) * c V c). Covers every contrast at once.
- 'maxz' (Tukey-type max-|z|): the level-quantile of max over all pairs (i, j) of
  |Z_i - Z_j| / sd(Z_i - Z_j), Z ~ N(0, V) drawn by Monte Carlo (sandwich) or the bootstrap
  draws themselves (bootstrap). Exact for the pairwise comparisons, and the tightest here.
- 'bonferroni': z_{1 - alpha / (2 P)} with P = M (M - 1) / 2 pairs. Conservative, closed form.

Rank intervals use pairwise differences only, so they do not depend on the anchor: model j is
surely above i when the lower bound of (t_j - t_i) is > 0. Then
rank_lower(i) = 1 + #{j surely above i} and rank_upper(i) = M - #{j surely below i}.
When every pairwise interval covers at once (probability >= level) every true rank lies in its
interval at once.

Source: Chiang et al. (2024), Chatbot Arena, section 5 ("uniform confidence intervals",
chi-square with M - 1 degrees of freedom); Scheffe (1953); Tukey (1953); Hall & Miller (2009),
"Using the bootstrap to quantify the authority of an empirical ranking".
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from scipy.stats import chi2

METHODS = ("chi2", "maxz", "bonferroni")


@dataclass(frozen=True)
class RankIntervals:
    """Simultaneous intervals and the rank intervals they imply.

    Attributes: models (n_models,); lower, upper: simultaneous rating bounds in points
    (n_models,), for the ratings given (anchored; the anchor's own width is 0 under an anchor
    model); rank_lower, rank_upper: int64 (n_models,), 1 = best; critical: the critical value
    applied to the pairwise standard errors; method: 'chi2' | 'maxz' | 'bonferroni';
    basis: 'sandwich' | 'bootstrap'; level.
    """

    models: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    rank_lower: np.ndarray
    rank_upper: np.ndarray
    critical: float
    method: str
    basis: str
    level: float


def _check(method: str, level: float) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown simultaneous method {method!r}; expected one of {', '.join(METHODS)}")
    if not 0 < level < 1:
        raise ValueError(f"level {level} must be in (0, 1)")


def pairwise_sd(cov: np.ndarray) -> np.ndarray:
    """Standard deviations of all differences t_i - t_j, shape (M, M), from a covariance (M, M)."""
    d = np.diag(cov)
    return np.sqrt(np.maximum(d[:, None] + d[None, :] - 2 * cov, 0.0))


def critical_value(cov: np.ndarray, method: str, level: float = 0.95, draws: int = 4000, seed: int | None = 0) -> float:
    """Critical value c such that all pairwise intervals d_ij +- c sd_ij cover at once with
    probability >= level under N(0, cov).

    Parameters: cov, covariance of the strengths (M, M) in any unit; method, 'chi2', 'maxz'
    (Monte Carlo with ``draws`` Gaussian draws, seeded) or 'bonferroni'.
    Returns: float.
    """
    _check(method, level)
    M = cov.shape[0]
    if method == "chi2":
        return float(np.sqrt(chi2.ppf(level, max(M - 1, 1))))
    if method == "bonferroni":
        P = max(M * (M - 1) // 2, 1)
        return float(NormalDist().inv_cdf(1 - (1 - level) / (2 * P)))
    rng = np.random.default_rng(seed)
    # Z = L e with L L^T = cov (eigen-decomposition: cov is singular along the anchor direction)
    w, U = np.linalg.eigh((cov + cov.T) / 2)
    L = U * np.sqrt(np.maximum(w, 0.0))
    Z = rng.standard_normal((draws, M)) @ L.T
    return float(np.quantile(_max_pairwise_t(Z, pairwise_sd(cov)), level))


def _max_pairwise_t(dev: np.ndarray, sd: np.ndarray, chunk: int = 256) -> np.ndarray:
    """max_{i<j} |dev_i - dev_j| / sd_ij for each row of dev (R, M) -> (R,)."""
    M = dev.shape[1]
    iu, ju = np.triu_indices(M, 1)
    s = sd[iu, ju]
    ok = s > 0
    iu, ju, s = iu[ok], ju[ok], s[ok]
    out = np.empty(len(dev))
    for k in range(0, len(dev), chunk):
        d = dev[k : k + chunk]
        out[k : k + chunk] = (np.abs(d[:, iu] - d[:, ju]) / s).max(axis=1) if len(s) else 0.0
    return out


def rank_bounds(estimate: np.ndarray, sd: np.ndarray, critical: float) -> tuple[np.ndarray, np.ndarray]:
    """Rank intervals from pairwise intervals.

    Parameters: estimate (M,), strengths in any unit; sd (M, M), pairwise standard deviations in
    the same unit; critical, the simultaneous critical value.
    Returns: (rank_lower, rank_upper), int64 arrays (M,), rank 1 = best.
    """
    est = np.asarray(estimate, dtype=float)
    M = len(est)
    diff = est[None, :] - est[:, None]  # diff[i, j] = t_j - t_i
    above = diff - critical * sd > 0  # j surely above i
    np.fill_diagonal(above, False)
    below = -diff - critical * sd > 0  # j surely below i
    np.fill_diagonal(below, False)
    return 1 + above.sum(axis=1), M - below.sum(axis=1)


def sandwich_rank_intervals(
    models: tuple[str, ...] | list[str],
    ratings: np.ndarray,
    cov_points: np.ndarray,
    *,
    method: str = "chi2",
    level: float = 0.95,
    draws: int = 4000,
    seed: int | None = 0,
) -> RankIntervals:
    """Simultaneous intervals and rank intervals from a covariance of the ratings.

    Parameters: models (M,); ratings (M,), in points (any anchor); cov_points (M, M), covariance
    of the ratings in points^2 (e.g. POINTS_PER_LOGIT^2 * A V A^T for the fit's sandwich V and
    anchor contrast A; the rank intervals only use its pairwise differences, so the anchor
    does not matter); method, level; draws, seed: Monte Carlo for 'maxz'.
    Returns: RankIntervals; the rating bounds use the same critical value on each model's own
    standard deviation (chi2 projection, or max over models for 'maxz').
    Raises: ValueError for an unknown method or a level outside (0, 1).
    """
    _check(method, level)
    ratings = np.asarray(ratings, dtype=float)
    sd = pairwise_sd(cov_points)
    c = critical_value(cov_points, method, level, draws, seed)
    lo_r, hi_r = rank_bounds(ratings, sd, c)
    own = np.sqrt(np.maximum(np.diag(cov_points), 0.0))
    c_own = _own_critical(cov_points, method, level, draws, seed)
    return RankIntervals(tuple(models), ratings - c_own * own, ratings + c_own * own, lo_r, hi_r, c, method, "sandwich", level)


def _own_critical(cov: np.ndarray, method: str, level: float, draws: int, seed: int | None) -> float:
    """Critical value for the M per-model intervals at once (not the pairs)."""
    M = cov.shape[0]
    if method == "chi2":
        return float(np.sqrt(chi2.ppf(level, max(M - 1, 1))))
    if method == "bonferroni":
        return float(NormalDist().inv_cdf(1 - (1 - level) / (2 * M)))
    own = np.sqrt(np.maximum(np.diag(cov), 0.0))
    keep = own > 0
    if not keep.any():
        return 0.0
    rng = np.random.default_rng(seed)
    w, U = np.linalg.eigh((cov + cov.T) / 2)
    L = U * np.sqrt(np.maximum(w, 0.0))
    Z = rng.standard_normal((draws, M)) @ L.T
    return float(np.quantile(np.abs(Z[:, keep] / own[keep]).max(axis=1), level))


def bootstrap_rank_intervals(
    models: tuple[str, ...] | list[str],
    ratings: np.ndarray,
    samples: np.ndarray,
    *,
    method: str = "maxz",
    level: float = 0.95,
) -> RankIntervals:
    """Simultaneous intervals and rank intervals from bootstrap draws of the ratings.

    Parameters: ratings (M,), the point estimate in points; samples (R, M), bootstrap ratings
    (any anchor; only differences are used for ranks); method: 'maxz' uses the bootstrap
    distribution of max_{i<j} |d*_ij - d_ij| / sd*_ij (studentized by the bootstrap sd), 'chi2'
    and 'bonferroni' use the bootstrap covariance with the closed-form critical values.
    Returns: RankIntervals (basis 'bootstrap').
    Source: Hall & Miller (2009); Chatbot Arena (2024), section 5.
    """
    _check(method, level)
    ratings = np.asarray(ratings, dtype=float)
    samples = np.asarray(samples, dtype=float)
    cov = np.cov(samples, rowvar=False, ddof=1)
    sd = pairwise_sd(cov)
    own = np.sqrt(np.maximum(np.diag(cov), 0.0))
    if method == "maxz":
        dev = samples - ratings[None, :]
        c = float(np.quantile(_max_pairwise_t(dev, sd), level))
        keep = own > 0
        c_own = float(np.quantile(np.abs(dev[:, keep] / own[keep]).max(axis=1), level)) if keep.any() else 0.0
    else:
        c = critical_value(cov, method, level)
        c_own = _own_critical(cov, method, level, 0, None)
    lo_r, hi_r = rank_bounds(ratings, sd, c)
    return RankIntervals(tuple(models), ratings - c_own * own, ratings + c_own * own, lo_r, hi_r, c, method, "bootstrap", level)


def true_ranks(theta: np.ndarray) -> np.ndarray:
    """Ranks of true strengths (1 = best; ties share the best rank), int64 (M,)."""
    theta = np.asarray(theta, dtype=float)
    return 1 + (theta[None, :] > theta[:, None]).sum(axis=1)


def fit_rank_intervals(
    models: tuple[str, ...] | list[str],
    ratings: np.ndarray,
    *,
    fit=None,
    samples: np.ndarray | None = None,
    method: str | None = None,
    level: float = 0.95,
    seed: int | None = 0,
    anchor=None,
) -> RankIntervals:
    """Rank intervals for a leaderboard: from bootstrap ``samples`` (R, M) when given, else from
    ``fit``'s sandwich covariance (a BTFit or ContextualFit) mapped through ``anchor``'s
    contrast (default: the mean), so the rating bounds belong to the anchored ratings. The rank
    intervals do not depend on the anchor. ``method`` defaults to 'maxz'.

    Raises: ValueError when neither a fit with a covariance nor samples are given.
    """
    from openarena.ratings.scale import POINTS_PER_LOGIT, Anchor

    method = method or "maxz"
    if samples is not None:
        return bootstrap_rank_intervals(models, ratings, samples, method=method, level=level)
    if fit is None or not hasattr(fit, "covariance"):
        raise ValueError("rank intervals need a Bradley-Terry fit with sandwich intervals or bootstrap samples")
    A = (anchor or Anchor()).contrast(tuple(models))
    cov = A @ fit.covariance(robust=True) @ A.T * POINTS_PER_LOGIT**2
    return sandwich_rank_intervals(models, ratings, cov, method=method, level=level, seed=seed)
