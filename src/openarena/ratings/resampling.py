"""Bootstrap on sparse data: resamples in which a model has no finite rating.

On a small arena a resample often leaves a model undefeated (a 4-1 model loses its one loss in
about a third of the resamples): its Bradley-Terry maximum-likelihood strength is +infinity
there, and the resample cannot be refitted as a whole. Aborting the leaderboard is what no user
wants; FastChat's logistic regression silently stops at a large finite number. Here such a
resample is kept and said:

* the models without a finite rating in the resample (found as in
  :func:`openarena.ratings.bradley_terry.unrated_models`, repeated until the rest is rated) get
  +inf (never lost or tied against the rest), -inf (never won or tied) or NaN (never met the
  rest: no information) in that resample; the other models are refitted on their own battles;
* the percentile interval of a model is then unbounded (+inf upper or -inf lower bound) when
  more than (1 - level) / 2 of its resamples are infinite on that side, and finite otherwise, as
  the percentile bootstrap of a quantity that is infinite with that probability;
* :class:`ResampleReport` counts the resamples and models involved, for the leaderboard's notes.

The resamples in which every model is rated are fitted exactly as before, all at once
(:func:`openarena.ratings.intervals.bootstrap_thetas`).

Source: Efron & Tibshirani (1993), percentile intervals; Ford (1957) / Hunter (2004) for the
existence of the MLE; FastChat ``get_bootstrap_result``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from openarena.data.battles import PairCounts
from openarena.ratings.bradley_terry import BTFit, fit_bradley_terry, fit_bradley_terry_batch, unrated_models
from openarena.ratings.intervals import Intervals, resample_counts
from openarena.ratings.parallel import map_threads, workers
from openarena.ratings.scale import Anchor, to_elo

#: stands for an infinite rating inside quantile interpolation (so inf - inf never appears)
_BIG = 1e300


@dataclass(frozen=True)
class ResampleReport:
    """What the bootstrap did with resamples lacking a finite rating for some model.

    Attributes: rounds, resamples drawn; partial, resamples in which some model had no finite
    rating (kept, with +/-inf or NaN for those models); unanchored, resamples dropped because
    the anchor model itself had no finite rating; per_model, {model: resamples in which it had
    no finite rating}."""

    rounds: int
    partial: int = 0
    unanchored: int = 0
    per_model: dict = field(default_factory=dict)

    def describe(self, level: float, unbounded: list[str]) -> str | None:
        """One sentence for the leaderboard's notes (None when every resample was complete)."""
        if not self.partial:
            return None
        worst = sorted(self.per_model.items(), key=lambda kv: -kv[1])[:5]
        text = (
            f"bootstrap: in {self.partial} of {self.rounds} resamples some model had no finite rating "
            f"(it never lost, never won or never met the others there; e.g. "
            + ", ".join(f"{m} in {n}" for m, n in worst)
            + "); such a model counts as +inf or -inf in that resample and the others were refitted without it"
        )
        if self.unanchored:
            text += f"; {self.unanchored} resamples in which the anchor model had no finite rating were left out"
        if unbounded:
            text += f". Unbounded {level * 100:g}% intervals (shown as inf): " + ", ".join(unbounded)
        return text


def _partial_theta(fit: BTFit, table: np.ndarray) -> tuple[np.ndarray, dict[str, str]]:
    """theta (n_models,) for one resample some of whose models have no finite rating: +inf /
    -inf / NaN for those, the MLE of the others (mean zero over the finite ones)."""
    counts = fit.counts
    n = counts.n_models
    theta = np.full(n, np.nan)
    keep = np.ones(n, bool)
    present = table.sum(axis=1) > 0
    pairs, cells = counts.pairs[present], table[present]
    why: dict[str, str] = {}
    while True:
        idx = np.flatnonzero(keep)
        sel = keep[pairs[:, 0]] & keep[pairs[:, 1]]
        remap = -np.ones(n, int)
        remap[idx] = np.arange(len(idx))
        sub = PairCounts(tuple(counts.models[i] for i in idx), remap[pairs[sel]], cells[sel], counts.source)
        bad = unrated_models(sub) if len(idx) >= 2 else {}
        # models that no longer battle anyone rated are 'never battled'
        battled = np.zeros(len(idx), bool)
        if len(sub.pairs):
            battled[sub.pairs.ravel()] = True
        for k in np.flatnonzero(~battled):
            bad.setdefault(sub.models[k], "never battled the main group")
        if not bad:
            break
        for m, reason in bad.items():
            i = counts.models.index(m)
            keep[i] = False
            why[m] = reason
            theta[i] = np.inf if reason.startswith("never lost") else -np.inf if reason.startswith("never won") else np.nan
        if keep.sum() < 2:
            return theta, why
    sub_fit = fit_bradley_terry(sub, ties=fit.ties, prior=fit.prior)
    theta[idx] = sub_fit.theta
    return theta, why


def bootstrap_thetas_sparse(
    fit: BTFit,
    rounds: int = 100,
    seed: int | None = 0,
    n_jobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, ResampleReport]:
    """:func:`openarena.ratings.intervals.bootstrap_thetas` that never aborts.

    Parameters: as bootstrap_thetas (the same resamples for the same seed).
    Returns: (theta, k, report): theta (rounds, n_models), mean-zero log-strengths per row over
    the finite entries, +inf / -inf / NaN for models without a finite rating in that resample;
    k (rounds,) tie parameter or None (NaN in partial resamples); report, a ResampleReport.
    When every resample is complete the result equals bootstrap_thetas's.
    """
    from openarena.ratings.intervals import bootstrap_thetas

    if fit.prior > 0:  # a prior makes every resample finite
        theta, k = bootstrap_thetas(fit, rounds, seed, n_jobs=n_jobs, progress=progress)
        return theta, k, ResampleReport(rounds)
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    counts = fit.counts
    n_jobs = workers(n_jobs)
    chunk = min(50, -(-rounds // (2 * n_jobs)))  # as bootstrap_thetas: the same batches, the same numbers
    children = np.random.SeedSequence(seed).spawn(rounds)

    def work(s: int):
        size = min(chunk, rounds - s)
        tables = resample_counts(counts.counts, size, seeds=children[s : s + size])
        complete = np.array([not unrated_models(PairCounts(counts.models, counts.pairs, t, counts.source)) for t in tables])
        theta = np.full((size, counts.n_models), np.nan)
        k = None if fit.tie_param is None else np.full(size, np.nan)
        if complete.any():
            th, kk = fit_bradley_terry_batch(fit, tables[complete], check=False)
            theta[complete] = th
            if k is not None and kk is not None:
                k[complete] = kk
        why_all = []
        for r in np.flatnonzero(~complete):
            theta[r], why = _partial_theta(fit, tables[r])
            why_all.append(why)
        if progress:
            progress(size)
        return theta, k, why_all

    results = map_threads(work, list(range(0, rounds, chunk)), n_jobs)
    theta = np.concatenate([r[0] for r in results])
    k = None if results[0][1] is None else np.concatenate([r[1] for r in results])
    per_model: dict[str, int] = {}
    partial = 0
    for _, _, whys in results:
        partial += len(whys)
        for why in whys:
            for m in why:
                per_model[m] = per_model.get(m, 0) + 1
    return theta, k, ResampleReport(rounds, partial, 0, per_model)


def anchor_samples(theta: np.ndarray, models: tuple[str, ...], anchor: Anchor, reference: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Elo-scale ratings of bootstrap ``theta`` (R, n_models) that may hold +/-inf and NaN.

    Complete rows go through :func:`openarena.ratings.scale.to_elo` unchanged; in a partial row
    the infinite entries stay infinite and the finite ones are placed by the anchor model's value,
    or, for the mean anchor, so that their mean equals the mean of the same models in
    ``reference`` (the board's point ratings, shape (n_models,)): the mean of a subset would
    otherwise shift every rating of that resample by the missing models' share. Rows in which
    the anchor model is not finite become NaN.
    Returns: (ratings (R, n_models), number of rows dropped for the anchor)."""
    theta = np.asarray(theta, float)
    finite = np.isfinite(theta)
    full = finite.all(axis=1)
    out = np.full(theta.shape, np.nan)
    if full.any():
        out[full] = to_elo(theta[full], models, anchor)
    dropped = 0
    from openarena.ratings.scale import POINTS_PER_LOGIT

    a = list(models).index(anchor.model) if anchor.model is not None else None
    for r in np.flatnonzero(~full):
        row, fin = theta[r], finite[r]
        if a is not None and not fin[a]:
            dropped += 1
            continue
        if a is not None:
            vals = np.where(fin, POINTS_PER_LOGIT * (row - np.where(fin, row[a], 0.0)) + anchor.value, row)
        else:
            target = anchor.value if reference is None else float(np.mean(np.asarray(reference)[fin]))
            vals = np.where(fin, POINTS_PER_LOGIT * (row - np.where(fin, row[fin].mean(), 0.0)) + target, row)
        out[r] = vals
    return out, dropped


def percentile_intervals(samples: np.ndarray, level: float = 0.95, tie_param_samples: np.ndarray | None = None) -> tuple[Intervals, list[int]]:
    """Percentile intervals of ``samples`` (R, n_models) in points that may hold +/-inf (no
    finite rating in that resample) and NaN (no information: left out, per model).

    Returns: (Intervals, unbounded): bounds +inf / -inf where more than (1 - level) / 2 of a
    model's samples are infinite on that side; variance over the finite samples (inf when any
    is infinite); unbounded, indices of the models with an infinite bound. With finite samples
    only, equal to :func:`openarena.ratings.intervals.bootstrap_intervals`.
    """
    from openarena.ratings.intervals import bootstrap_intervals

    s = np.asarray(samples, float)
    if np.isfinite(s).all():
        return bootstrap_intervals(s, level, tie_param_samples), []
    clipped = np.clip(s, -_BIG, _BIG)
    lo, hi = np.nanquantile(clipped, [0.5 - level / 2, 0.5 + level / 2], axis=0)
    lo = np.where(lo <= -_BIG / 2, -np.inf, np.where(lo >= _BIG / 2, np.inf, lo))
    hi = np.where(hi >= _BIG / 2, np.inf, np.where(hi <= -_BIG / 2, -np.inf, hi))
    with np.errstate(invalid="ignore"):
        var = np.nanvar(np.where(np.isinf(s), np.nan, s), axis=0)
    var = np.where(np.isinf(s).any(axis=0), np.inf, var)
    unbounded = [int(i) for i in np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))]
    return Intervals(lo, hi, var, "bootstrap", level, s, tie_param_samples), unbounded
