"""The router benchmark: PGR curve, APGR and CPT, with bootstrap intervals over test prompts.

Routing the fraction c of prompts with the highest router scores to the strong model gives a
quality Q(c); the performance gap recovered is PGR(c) = (Q(c) - Q_weak) / (Q_strong - Q_weak).
APGR is the area under PGR(c) for c in [0, 1], by the trapezoid rule on RouteLLM's grid (the
deciles of the router's scores: c = 0, 0.1, ..., 1); CPT(x) is the strong-call fraction needed
for PGR = x, interpolated on the same grid. A random router has APGR 0.5 in expectation; the
oracle (strong only where it is better) is the upper bound. Prompts with equal scores are routed
together (their expected gain is shared), so a router with ties is not flattered by their order.

Source: Ong et al. (2024), RouteLLM, section 5 (PGR, APGR, CPT); routellm/evals/evaluate.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openarena.errors import DataError

GRID = np.linspace(0.0, 1.0, 11)


def _random_curve(gain: np.ndarray, weights: np.ndarray, grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """As :func:`_curve` for a random router: each row routes in a fresh random order."""
    return np.vstack([_curve(rng.random(len(gain)), gain, weights[r:r + 1], grid)[0] for r in range(len(weights))])


def _curve(scores: np.ndarray, gain: np.ndarray, weights: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Cumulative gain of routing the top fraction c (by score) to strong, at each c of
    ``grid``, for each row of ``weights`` (R, n) (bootstrap counts). Returns (R, len(grid))."""
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gain[order]
    w = weights[:, order]
    # tie groups share their mean gain: replace each prompt's gain by its group's weighted mean
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(s)]))
    wg = np.add.reduceat(w * g, starts, axis=1)
    ws = np.add.reduceat(w, starts, axis=1)
    mean_g = np.divide(wg, ws, out=np.zeros_like(wg), where=ws > 0)[:, group]
    cum_w = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w, axis=1)], axis=1)
    cum_g = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w * mean_g, axis=1)], axis=1)
    n = cum_w[:, -1:]
    frac = cum_w / n
    out = np.empty((len(w), len(grid)))
    for r in range(len(w)):
        out[r] = np.interp(grid, frac[r], cum_g[r])
    return out


@dataclass(frozen=True)
class RouterEval:
    """APGR and CPT of one router on one test set, with bootstrap intervals.

    Attributes: router; n_test; apgr, apgr_lower, apgr_upper; cpt50, cpt80 (strong-call
    fractions in [0, 1], NaN when never reached) and their intervals; grid, pgr (the PGR curve);
    q_strong, q_weak (mean quality of each model); level.
    """

    router: str
    n_test: int
    apgr: float
    apgr_lower: float
    apgr_upper: float
    cpt50: float
    cpt50_lower: float
    cpt50_upper: float
    cpt80: float
    cpt80_lower: float
    cpt80_upper: float
    grid: tuple
    pgr: tuple
    q_strong: float
    q_weak: float
    level: float

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["grid"], d["pgr"] = list(self.grid), list(self.pgr)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in d.items()}


def _cpt(grid: np.ndarray, pgr: np.ndarray, x: float) -> np.ndarray:
    """First strong-call fraction where PGR reaches x, linear between grid points; NaN if never."""
    out = np.full(len(pgr), np.nan)
    for r, p in enumerate(pgr):
        hit = np.flatnonzero(p >= x - 1e-12)
        if len(hit) == 0:
            continue
        k = hit[0]
        if k == 0:
            out[r] = grid[0]
        else:
            p0, p1 = p[k - 1], p[k]
            out[r] = grid[k - 1] + (x - p0) / (p1 - p0) * (grid[k] - grid[k - 1]) if p1 > p0 else grid[k]
    return out


def evaluate_router(
    name: str,
    scores: np.ndarray,
    q_strong: np.ndarray,
    q_weak: np.ndarray,
    *,
    rounds: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    grid: np.ndarray = GRID,
    random: bool = False,
) -> RouterEval:
    """APGR, CPT(50%), CPT(80%) of router ``scores`` (higher = route to strong), shape (n,),
    on per-prompt qualities ``q_strong``, ``q_weak`` (n,), with percentile intervals over
    ``rounds`` bootstrap resamples of the test prompts. ``random=True`` scores the random
    router: every resample routes in a fresh random order (``scores`` is ignored) and the point
    estimate is the mean over resamples (its expectation is APGR 0.5), as RouteLLM averages
    random runs.

    Raises: DataError when the shapes differ, n < 2, or the strong model is not better on
    average (PGR undefined).
    """
    scores, qs, qw = (np.asarray(a, dtype=float) for a in (scores, q_strong, q_weak))
    if not (scores.shape == qs.shape == qw.shape) or scores.ndim != 1 or len(scores) < 2:
        raise DataError(f"scores {scores.shape}, qualities {qs.shape} and {qw.shape}", field="scores", expected="three arrays of the same length >= 2")
    gap = qs.mean() - qw.mean()
    if not gap > 0:
        raise DataError(f"the strong model is not better on these prompts (mean quality {qs.mean():.4g} vs {qw.mean():.4g})", field="strong", expected="a strong model with higher mean quality than the weak one")
    n = len(scores)
    rng = np.random.default_rng(seed)
    W = np.vstack([np.ones(n), rng.multinomial(n, np.full(n, 1 / n), size=rounds)]).astype(float)
    gain = qs - qw
    cum = _random_curve(gain, W, grid, rng) if random else _curve(scores, gain, W, grid)
    tot_s = W @ qs
    tot_w = W @ qw
    pgr = cum / (tot_s - tot_w)[:, None]
    apgr = np.trapezoid(pgr, grid, axis=1) if hasattr(np, "trapezoid") else np.trapz(pgr, grid, axis=1)
    c50, c80 = _cpt(grid, pgr, 0.5), _cpt(grid, pgr, 0.8)
    if random:  # the point estimate of a random router is its mean over draws
        apgr[0], pgr[0] = apgr[1:].mean(), pgr[1:].mean(axis=0)
        c50[0], c80[0] = np.nanmean(c50[1:]), np.nanmean(c80[1:])
    lo, hi = (1 - level) / 2, (1 + level) / 2

    def ci(v):
        b = v[1:][np.isfinite(v[1:])]
        return (float(np.quantile(b, lo)), float(np.quantile(b, hi))) if len(b) else (np.nan, np.nan)

    return RouterEval(
        router=name, n_test=n, apgr=float(apgr[0]), apgr_lower=ci(apgr)[0], apgr_upper=ci(apgr)[1],
        cpt50=float(c50[0]), cpt50_lower=ci(c50)[0], cpt50_upper=ci(c50)[1],
        cpt80=float(c80[0]), cpt80_lower=ci(c80)[0], cpt80_upper=ci(c80)[1],
        grid=tuple(float(g) for g in grid), pgr=tuple(float(p) for p in pgr[0]),
        q_strong=float(qs.mean()), q_weak=float(qw.mean()), level=level,
    )
