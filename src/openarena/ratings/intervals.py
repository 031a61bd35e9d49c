"""Confidence intervals for Bradley-Terry ratings and the rank upper bound.

- Sandwich (robust, CLT): Var(theta) = H^-1 J H^-1 with H the Hessian of the log-likelihood
  and J the sum over votes of per-vote score outer products, both computed exactly from the pair
  counts. Intervals are rating +- z * sd on the Elo scale, for the anchored ratings (the
  anchor's own interval has zero width, as in the published LMSYS board). Where the sandwich
  is degenerate (a model all of whose votes are fitted exactly, e.g. a board of ties only) the
  model-based variance is used for that model, with a warning.
- Bootstrap: R tables of counts drawn from Multinomial(N, counts / N) over the
  n_pairs x 4 cells (the same distribution as resampling the N votes with replacement), each
  refitted, anchored, and summarised by quantiles (linear interpolation, as pandas and FastChat).

Source: White (1982) for the sandwich; arena-rank ``compute_ratings_and_cis``; FastChat
``get_bootstrap_result`` and ``compute_mle_elo`` (per-round anchoring); Chiang et al. (2024),
Chatbot Arena, section 5 (rank from non-overlapping intervals).
"""

from __future__ import annotations

from statistics import NormalDist
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from openarena.ratings.bradley_terry import BTFit, fit_bradley_terry_batch
from openarena.ratings.parallel import map_threads, workers
from openarena.ratings.scale import POINTS_PER_LOGIT, Anchor

if TYPE_CHECKING:
    from openarena.ratings.contextual import ContextualFit


@dataclass
class Intervals:
    """Interval bounds in Elo points: ``lower``, ``upper``, ``variance`` (points^2), arrays of
    shape (n_models,); ``method`` ('sandwich' | 'bootstrap' | 'none'); ``level`` (e.g. 0.95);
    ``samples``: bootstrap ratings (R, n_models) or None; ``tie_param_samples``: (R,) or None."""

    lower: np.ndarray
    upper: np.ndarray
    variance: np.ndarray
    method: str
    level: float
    samples: np.ndarray | None = None
    tie_param_samples: np.ndarray | None = None


def sandwich_intervals(fit: "BTFit | ContextualFit", ratings: np.ndarray, anchor: Anchor, level: float = 0.95, robust: bool = True) -> Intervals:
    """CLT intervals from the sandwich covariance of ``fit``.

    Parameters: fit, a BTFit or ContextualFit (or a protocol result wrapping one); ratings, the anchored ratings of shape (n_models,); anchor, the Anchor
    used for them; level, coverage in (0, 1); robust=False uses the inverse information.
    Returns: Intervals with variance = diag(A V A^T) * POINTS_PER_LOGIT^2; the anchor model's
    is 0; a robust variance under :data:`DEGENERATE_VARIANCE` is replaced by the model-based one.
    Warns: UserWarning naming the models whose robust variance was degenerate.
    """
    fit = getattr(fit, "fit", fit)  # a RatingFit of the protocol wraps the BTFit / ContextualFit
    var = _contrast_variances(fit, anchor, robust)
    fixed = list(fit.models).index(anchor.model) if anchor.model is not None else None
    if fixed is not None:
        # the anchor model's rating is fixed: its variance is zero by construction, not the
        # rounding left by the cancellation above (~1e-13, whose square root is a 1e-6 interval)
        var[fixed] = 0.0
    if robust:
        # The sandwich's meat is the sum of squared score residuals: when every vote of a model
        # is fitted exactly (e.g. a board of ties only, all ratings equal) it is zero and so is
        # the interval, though a handful of votes says little. There the model-based variance
        # (inverse information) is used instead, with a warning. A real model's sandwich variance
        # is far above the threshold (1e-6 points^2 would take ~1e10 votes).
        degenerate = var < DEGENERATE_VARIANCE
        if fixed is not None:
            degenerate[fixed] = False
        if degenerate.any():
            import warnings

            var = np.where(degenerate, _contrast_variances(fit, anchor, robust=False), var)
            names = [m for m, d in zip(fit.models, degenerate) if d]
            warnings.warn(f"the robust (sandwich) variance of {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} is zero "
                          "(every vote fitted exactly, e.g. only ties): the model-based interval is shown instead", stacklevel=2)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    half = z * np.sqrt(var)
    return Intervals(ratings - half, ratings + half, var, "sandwich", level)


#: Sandwich variances (points^2) below this are degenerate (see :func:`sandwich_intervals`).
DEGENERATE_VARIANCE = 1e-6


def _contrast_variances(fit: "BTFit | ContextualFit", anchor: Anchor, robust: bool) -> np.ndarray:
    """diag(A V A^T) * POINTS_PER_LOGIT^2 for the anchoring A of ``anchor`` and V the robust or
    model-based covariance of ``fit``; shape (n_models,), points^2, clipped at 0."""
    if isinstance(fit, BTFit):
        # one Cholesky inverse and a sparse product with the meat (see contrast_variances)
        var = fit.contrast_variances(anchor.weights(fit.models), robust=robust) * POINTS_PER_LOGIT**2
    else:
        A = anchor.contrast(fit.models)
        V = fit.covariance(robust=robust)
        # diag(A V A^T) as a row sum of (A V) * A: one BLAS matrix product (a three-operand
        # einsum loops without BLAS: 6.9 s instead of 0.12 s at 2,000 models)
        var = ((A @ V) * A).sum(axis=1) * POINTS_PER_LOGIT**2
    return np.maximum(var, 0.0)


def resample_counts(counts: np.ndarray, rounds: int, seed: int | None = None, *, seeds: list[np.random.SeedSequence] | None = None) -> np.ndarray:
    """Bootstrap tables of counts, shape (rounds, n_pairs, 4).

    Each round is Multinomial(N, counts / N) with N = round(counts.sum()); round r uses its own
    generator, child r of numpy's SeedSequence(seed) (or ``seeds[r]`` when the caller has
    spawned them), so a round's table does not depend on how rounds are split between workers.
    """
    flat = counts.ravel()
    total = flat.sum()
    N = int(round(total))
    p = flat / total
    children = seeds if seeds is not None else np.random.SeedSequence(seed).spawn(rounds)
    out = np.empty((len(children), flat.size))
    for r, child in enumerate(children):
        out[r] = np.random.default_rng(child).multinomial(N, p)
    return out.reshape((len(children),) + counts.shape)


#: Memory a worker's batched Newton run may hold in Hessians ((chunk, m, m) float64, a few
#: copies): it bounds the chunk at many models (2 rounds at a time at 2,000 models).
_CHUNK_BYTES = 256 << 20


def _chunk_limit(fit: BTFit) -> int:
    m = fit.counts.n_models
    return max(1, _CHUNK_BYTES // (4 * 8 * m * m))


def bootstrap_thetas(
    fit: BTFit,
    rounds: int = 100,
    seed: int | None = 0,
    n_jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Refit ``fit`` on ``rounds`` multinomial resamples of its counts.

    Parameters: n_jobs, worker threads (default: all cores; BLAS is held to one thread per
    worker meanwhile); progress, called with the number of rounds just finished; chunk, rounds
    fitted together in one vectorised Newton run (default: rounds / (2 n_jobs), at most 50).
    Returns: (theta, k): theta (rounds, n_models) mean-zero log-strengths; k (rounds,) or None.
    The result depends on ``seed`` only, not on n_jobs or chunk.
    Raises: ConvergenceError if a resample has no finite MLE.
    """
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    n_jobs = workers(n_jobs)
    chunk = chunk or min(50, -(-rounds // (2 * n_jobs)), _chunk_limit(fit))
    starts = list(range(0, rounds, chunk))

    children = np.random.SeedSequence(seed).spawn(rounds)

    def work(s: int):
        size = min(chunk, rounds - s)
        tables = resample_counts(fit.counts.counts, size, seeds=children[s : s + size])
        res = fit_bradley_terry_batch(fit, tables)
        if progress:
            progress(size)
        return res

    results = map_threads(work, starts, n_jobs)
    theta = np.concatenate([r[0] for r in results])
    k = None if results[0][1] is None else np.concatenate([r[1] for r in results])
    return theta, k


def bootstrap_intervals(samples: np.ndarray, level: float = 0.95, tie_param_samples: np.ndarray | None = None) -> Intervals:
    """Quantile intervals from bootstrap ratings ``samples`` of shape (R, n_models), in points."""
    lo, hi = np.quantile(samples, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    return Intervals(lo, hi, samples.var(axis=0, ddof=0), "bootstrap", level, samples, tie_param_samples)


def rank_ub(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Rank (UB): 1 + the number of models whose lower bound is above this model's upper bound.

    Parameters: lower, upper, arrays of shape (n_models,). Returns: int64 array (n_models,).
    Source: FastChat ``recompute_final_ranking``; Chiang et al. (2024).
    """
    lower = np.asarray(lower)
    upper = np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)
