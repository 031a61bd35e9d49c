"""Experimental design for Bradley-Terry leaderboards: which pairs to compare next.

Everything here is a pure numpy function of the current log-strengths and vote counts, batched
over any leading axes (e.g. R simulated arenas at once): ``theta`` has shape (..., n_models) in
logits, pair quantities are symmetric (..., n_models, n_models) matrices with a zero diagonal.

- The Fisher information of the Bradley-Terry log-strengths after ``N[i, j]`` votes on each
  pair is the weighted graph Laplacian I = sum_{i<j} N_ij p_ij (1 - p_ij) (e_i - e_j)(e_i - e_j)^T,
  p_ij = expit(theta_i - theta_j). Without ties the sandwich covariance of the maximum-likelihood
  estimate converges to its inverse (the model is then correctly specified), so the design
  works with I; a Gaussian prior of precision ``prior`` adds prior * identity and makes I
  invertible before every model has played.
- The leaderboard's intervals are those of the anchored ratings A theta (``A`` = I - 11^T/n for
  the mean anchor); their variances are diag(A I^-1 A^T) (times POINTS_PER_LOGIT^2 for points^2).
- One more vote on pair (i, j) is a rank-one update of I, so the reduction of every variance is
  exact and closed-form (Sherman-Morrison): w (A S u)_k^2 / (1 + w u^T S u), S = I^-1,
  u = e_i - e_j, w = p_ij (1 - p_ij).
- A design is a distribution ``design`` over unordered pairs. The criterion is
  Phi = sum_k v_k^power of the interval variances v after ``horizon`` more votes drawn from the
  design: power 1 is A-optimality (the sum of the variances), a large power approaches the
  minimax design (the widest interval), which is what rank (UB) depends on. It is convex in the
  design; :func:`optimal_design` minimises it by the multiplicative algorithm (Silvey,
  Titterington & Torsney 1978; Yu 2010), all pair sensitivities coming from one n x n matrix
  product per iteration: g_ij = G_ii + G_jj - 2 G_ij with G = (A S)^T diag(power v^(power-1)) (A S).
- :func:`design_bound`: per-vote variances of the uniform design against the optimal one for
  the same strengths: the factor of votes an ideal sampler could save (asymptotically, when the
  strengths are known), with or without a floor of a fixed distribution mixed in.

Source: Silvey (1980) "Optimal Design", ch. 3-4; Pukelsheim (2006) "Optimal Design of
Experiments" (A-optimality and the minimax/E-type criteria as limits of the p-means); Graßhoff &
Schwabe (2008) "Optimal design for the Bradley-Terry paired comparison model"; Chiang et al.
(2024), Chatbot Arena, section 5 (active sampling for the leaderboard's intervals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from openarena.ratings.scale import POINTS_PER_LOGIT

__all__ = [
    "DesignBound",
    "design_bound",
    "design_variances",
    "fisher_information",
    "halfwidth_points",
    "interval_variances",
    "laplacian",
    "normalise_pairs",
    "one_vote_reduction",
    "optimal_design",
    "win_variance",
]


def win_variance(theta: np.ndarray) -> np.ndarray:
    """Variance of one decisive vote, p_ij (1 - p_ij), shape (..., n, n), zero diagonal.

    theta: log-strengths, shape (..., n), in logits.
    """
    theta = np.asarray(theta, dtype=float)
    p = expit(theta[..., :, None] - theta[..., None, :])
    w = p * (1.0 - p)
    n = theta.shape[-1]
    w[..., np.arange(n), np.arange(n)] = 0.0
    return w


def laplacian(weights: np.ndarray) -> np.ndarray:
    """sum_{i<j} weights_ij (e_i - e_j)(e_i - e_j)^T for symmetric ``weights`` (..., n, n)."""
    weights = np.asarray(weights, dtype=float)
    L = -weights.copy()
    n = weights.shape[-1]
    L[..., np.arange(n), np.arange(n)] = 0.0
    L[..., np.arange(n), np.arange(n)] = -L.sum(axis=-1)
    return L


def fisher_information(theta: np.ndarray, votes: np.ndarray, prior: float = 0.0) -> np.ndarray:
    """Fisher information of the log-strengths after ``votes`` decisive votes per pair.

    Parameters: theta, shape (..., n), logits; votes, symmetric (..., n, n) (votes[i, j] =
    votes on the unordered pair; the diagonal is ignored); prior, precision of a N(0, 1/prior)
    prior on each log-strength (0 = none).
    Returns: array (..., n, n), positive semi-definite (definite when prior > 0 or the pairs
    connect every model).
    """
    info = laplacian(win_variance(theta) * np.asarray(votes, dtype=float))
    if prior:
        n = info.shape[-1]
        info[..., np.arange(n), np.arange(n)] += prior
    return info


def _centre(n: int) -> np.ndarray:
    return np.eye(n) - 1.0 / n


def _covariance(info: np.ndarray) -> np.ndarray:
    """(info + 11^T/n)^-1: equals info^+ + 11^T/n for a connected Laplacian, and (L + prior)^-1
    on the contrasts, since 1 is an eigenvector of both."""
    n = info.shape[-1]
    return np.linalg.inv(info + 1.0 / n)


def interval_variances(info: np.ndarray, contrast: np.ndarray | None = None) -> np.ndarray:
    """Variances of the anchored ratings, diag(A info^-1 A^T), shape (..., n), in logits^2.

    contrast: A, shape (n, n), rows summing to zero (default: the mean anchor I - 11^T/n;
    :meth:`openarena.ratings.scale.Anchor.contrast` gives the leaderboard's). Multiply by
    POINTS_PER_LOGIT**2 for Elo points^2.
    Raises: numpy.linalg.LinAlgError if ``info`` is singular on the contrasts (a model without
    votes and no prior).
    """
    info = np.asarray(info, dtype=float)
    A = _centre(info.shape[-1]) if contrast is None else np.asarray(contrast, dtype=float)
    S = _covariance(info)
    AS = A @ S
    return np.einsum("...ij,ij->...i", AS, A)


def one_vote_reduction(info: np.ndarray, theta: np.ndarray, contrast: np.ndarray | None = None) -> np.ndarray:
    """Exact reduction of every interval variance by one more vote on each pair.

    Returns: array (..., n_pairs_i, n_pairs_j, n) with [..., i, j, k] = v_k(now) - v_k(after one
    more vote on {i, j}) = w_ij (A S u_ij)_k^2 / (1 + w_ij u_ij^T S u_ij) (Sherman-Morrison),
    in logits^2; the diagonal (i = j) is zero. Memory n^3 per arena: for the sensitivities of
    all pairs at once use :func:`optimal_design`, which never forms this array.
    """
    info = np.asarray(info, dtype=float)
    n = info.shape[-1]
    A = _centre(n) if contrast is None else np.asarray(contrast, dtype=float)
    S = _covariance(info)
    w = win_variance(theta)
    AS = A @ S  # (..., n, n): column i is A S e_i
    diff = AS[..., :, :, None] - AS[..., :, None, :]  # (..., k, i, j)
    quad = S.diagonal(axis1=-2, axis2=-1)
    q = quad[..., :, None] + quad[..., None, :] - 2 * S
    red = w[..., None, :, :] * diff**2 / (1.0 + w * q)[..., None, :, :]
    return np.moveaxis(red, -3, -1)


def _sensitivity(S: np.ndarray, A: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """Interval variances v (..., n) and g_ij = sum_k power v_k^(power-1) (A S u_ij)_k^2."""
    AS = A @ S
    v = np.einsum("...ij,ij->...i", AS, A)
    v = np.maximum(v, 1e-300)
    # scaled by the largest variance: the direction of the gradient does not change, and large
    # powers do not overflow
    d = power * (v / v.max(axis=-1, keepdims=True)) ** (power - 1.0)
    G = np.swapaxes(AS, -1, -2) @ (d[..., :, None] * AS)
    g_diag = G.diagonal(axis1=-2, axis2=-1)
    g = g_diag[..., :, None] + g_diag[..., None, :] - 2.0 * G
    return v, np.maximum(g, 0.0)


def optimal_design(
    theta: np.ndarray,
    *,
    base: np.ndarray | None = None,
    horizon: float | np.ndarray = 1.0,
    allowed: np.ndarray | None = None,
    floor: np.ndarray | None = None,
    floor_share: float = 0.0,
    power: float = 4.0,
    prior: float = 1e-6,
    contrast: np.ndarray | None = None,
    iters: int = 60,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """The distribution over pairs for the next ``horizon`` votes that minimises
    sum_k v_k^power, v the variances of the anchored ratings after those votes.

    Parameters:
        theta: log-strengths, shape (..., n), logits (the current fit, or the truth for a bound).
        base: information already collected, (..., n, n) (e.g. :func:`fisher_information` of the
            votes so far); None = nothing yet (the asymptotic, per-vote design).
        horizon: votes the design is for, scalar or shape (...,).
        allowed: bool (n, n) or (..., n, n), the pairs that may be drawn (default: all i != j).
        floor: a fixed distribution over pairs (symmetric, upper triangle summing to 1) mixed in
            with weight ``floor_share``: the votes come from (1 - floor_share) design +
            floor_share floor, and the design is optimised knowing that.
        power: 1 = A-optimal (sum of variances); larger -> closer to minimax (widest interval).
        prior: precision added to the information so it is invertible from the first vote.
        contrast: A (n, n) of the anchored ratings (default mean anchor).
        iters: multiplicative-algorithm iterations; start: initial design (default uniform over
            allowed pairs), e.g. the previous design for a warm start.
    Returns: design, shape (..., n, n), symmetric, zero diagonal, upper triangle summing to 1,
        zero outside ``allowed``.
    Source: multiplicative algorithm, Silvey, Titterington & Torsney (1978) and Yu (2010),
        with exponent 1/2 (monotone for A-optimality, Yu 2010).
    """
    theta = np.asarray(theta, dtype=float)
    n = theta.shape[-1]
    batch = theta.shape[:-1]
    A = _centre(n) if contrast is None else np.asarray(contrast, dtype=float)
    ok = ~np.eye(n, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool) & ~np.eye(n, dtype=bool)
    ok = np.broadcast_to(ok, batch + (n, n))
    w = win_variance(theta)
    h = np.asarray(horizon, dtype=float)[..., None, None]
    fixed = np.zeros(batch + (n, n)) if base is None else np.array(base, dtype=float)  # a copy
    fixed[..., np.arange(n), np.arange(n)] += prior
    if floor is not None and floor_share > 0:
        fixed = fixed + h * floor_share * laplacian(w * floor)
    scale = h * (1.0 - floor_share)
    if start is None:
        design = ok.astype(float)
    else:
        design = np.where(ok, np.maximum(np.asarray(start, dtype=float), 0.0), 0.0)
        design = np.where(ok & (design.sum(axis=(-1, -2), keepdims=True) == 0), 1.0, design)
    design = normalise_pairs(design)
    if floor_share >= 1.0:
        return design
    # exponent 1/2 is the classic, monotone for A-optimality; larger powers need smaller steps
    step = min(0.5, 1.0 / power)
    for _ in range(iters):
        S = _covariance(fixed + scale * laplacian(w * design))
        _, g = _sensitivity(S, A, power)
        s = w * g
        mean = (design * s).sum(axis=(-1, -2), keepdims=True)
        mean = np.where(mean > 0, mean, 1.0)
        design = normalise_pairs(design * (s / mean) ** step)
    return design


def design_variances(theta: np.ndarray, design: np.ndarray, votes: float = 1.0, contrast: np.ndarray | None = None, prior: float = 0.0) -> np.ndarray:
    """Variances of the anchored ratings (logits^2, shape (..., n)) after ``votes`` votes drawn
    from ``design`` (a distribution over pairs, (..., n, n)) when the strengths are ``theta``."""
    design = normalise_pairs(np.asarray(design, dtype=float))
    info = fisher_information(theta, votes * design, prior)
    return interval_variances(info, contrast)


@dataclass(frozen=True)
class DesignBound:
    """Per-vote interval variances (logits^2 x votes) of the uniform design and of the optimal
    designs for the widest and for the sum of the variances, and the factors of votes saved.

    Attributes: uniform_max, uniform_median; optimal_max (minimax design) and its
    optimal_max_median; optimal_sum_median (A-optimal design's median); max_factor =
    uniform_max / optimal_max (votes for the widest interval, uniform / best possible);
    median_factor = uniform_median / optimal_sum_median; floor_share and floor_max_factor, the
    same bound when a share of the votes is drawn uniformly (what a floored policy can reach).
    """

    uniform_max: float
    uniform_median: float
    optimal_max: float
    optimal_max_median: float
    optimal_sum_median: float
    max_factor: float
    median_factor: float
    floor_share: float
    floor_max_factor: float


def design_bound(theta: np.ndarray, *, floor_share: float = 0.0, floor: np.ndarray | None = None, contrast: np.ndarray | None = None, power: float = 64.0, iters: int = 1500) -> DesignBound:
    """How many fewer votes an ideal design needs than uniform sampling, for the widest and the
    median interval, when the true strengths ``theta`` (shape (n,), logits) are known.

    Votes needed for a target half-width scale as the per-vote variance, so the ratios of the
    variances below are ratios of votes (asymptotically, for many votes). The minimax design is
    approximated by ``power`` (64: on a 20-model arena of published ratings the largest variance
    is within 1% of what power 32 and 128 give); the median factor uses the A-optimal design.
    floor: distribution mixed in with ``floor_share`` (default uniform when floor_share > 0).
    """
    theta = np.asarray(theta, dtype=float)
    n = theta.shape[-1]
    uniform = normalise_pairs((~np.eye(n, dtype=bool)).astype(float))
    vu = design_variances(theta, uniform, contrast=contrast)
    best = optimal_design(theta, power=power, iters=iters, contrast=contrast, prior=1e-9)
    vb = design_variances(theta, best, contrast=contrast)
    # warm-start the sum criterion from uniform; ~A-optimal
    a_opt = optimal_design(theta, power=1.0, iters=iters // 3, contrast=contrast, prior=1e-9)
    va = design_variances(theta, a_opt, contrast=contrast)
    floor_factor = float(vu.max() / vb.max())
    if floor_share > 0:
        fl = uniform if floor is None else floor
        floored = optimal_design(theta, power=power, iters=iters, contrast=contrast, prior=1e-9, floor=fl, floor_share=floor_share)
        vf = design_variances(theta, (1 - floor_share) * floored + floor_share * normalise_pairs(fl), contrast=contrast)
        floor_factor = float(vu.max() / vf.max())
    return DesignBound(
        uniform_max=float(vu.max()),
        uniform_median=float(np.median(vu)),
        optimal_max=float(vb.max()),
        optimal_max_median=float(np.median(vb)),
        optimal_sum_median=float(np.median(va)),
        max_factor=float(vu.max() / vb.max()),
        median_factor=float(np.median(vu) / np.median(va)),
        floor_share=float(floor_share),
        floor_max_factor=floor_factor,
    )


def halfwidth_points(variance: np.ndarray, level: float = 0.95) -> np.ndarray:
    """Interval half-width in Elo points for variances in logits^2."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    return z * POINTS_PER_LOGIT * np.sqrt(np.maximum(variance, 0.0))


def normalise_pairs(M: np.ndarray) -> np.ndarray:
    """Scale symmetric pair weights (..., n, n) so that the upper triangle sums to 1 (a
    distribution over unordered pairs); all-zero stays zero."""
    s = np.triu(M, 1).sum(axis=(-1, -2), keepdims=True)
    return np.where(s > 0, M / np.where(s > 0, s, 1.0), M)
