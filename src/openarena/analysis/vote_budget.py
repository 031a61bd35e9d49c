"""Vote-budget planning: simulate an arena with known strengths under a sampling policy and
count the votes until the leaderboard's 95% intervals are narrow enough.

The arena is simulated as it is served: every ``votes_per_refit`` votes the leaderboard is
refitted (Bradley-Terry maximum likelihood, warm-started Newton on pair counts,
:class:`openarena.ratings.bradley_terry.BatchRefitter`) and the policy's distribution over pairs
is recomputed from what the server would know (the fitted ratings, votes per pair and per
model) by the same functions the server calls (:mod:`openarena.analysis.policies`). Votes are
decisive Bradley-Terry outcomes with the true strengths. Intervals are the sandwich intervals of
the ratings anchored at their mean (the leaderboard's default without an anchor model), in Elo
points. Until the maximum-likelihood estimate exists (some model has not lost or not won yet)
the leaderboard cannot be fitted: the policy then sees no ratings, as the server does.

All R seeds of one policy run at once (arrays of shape (R, ...)); seed r uses the same random
stream under every policy (paired comparisons), and seeds finish independently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
from scipy.special import expit
from threadpoolctl import threadpool_limits

from openarena.analysis.policies import POLICIES, active_pairs, fastchat_pairs, mix, targeted_design, uniform_pairs
from openarena.data.battles import PairCounts
from openarena.errors import ConvergenceError, DataError, OpenArenaError
from openarena.ratings.bradley_terry import BatchRefitter, check_identifiable
from openarena.ratings.design import halfwidth_points
from openarena.ratings.scale import POINTS_PER_LOGIT

__all__ = ["ArenaSpec", "SimulationResult", "expected_votes", "read_strengths", "simulate_policy"]


@dataclass(frozen=True)
class ArenaSpec:
    """The simulated arena.

    Attributes: models, names (n,); ratings, true Elo-scale ratings (n,); weights, registry
    sampling weights (n,) for the fastchat distribution and the floor (default all 1);
    vote_targets, votes below which a model is boosted (n,), NaN = none; boost, FastChat's
    factor (5); explore, floor share of the active and targeted policies (0.2).
    """

    models: tuple[str, ...]
    ratings: np.ndarray
    weights: np.ndarray | None = None
    vote_targets: np.ndarray | None = None
    boost: float = 5.0
    explore: float = 0.2

    def __post_init__(self) -> None:
        r = np.asarray(self.ratings, dtype=float)
        n = len(self.models)
        if n < 2 or r.shape != (n,):
            raise DataError(f"{n} model(s) with {r.size} rating(s)", field="rating", expected="at least two models, one rating each")
        if len(set(self.models)) != n:
            dup = next(m for m in self.models if list(self.models).count(m) > 1)
            raise DataError(f"model {dup!r} appears twice", field="model", expected="each model once")
        for name, v in zip(self.models, r):
            if not np.isfinite(v):
                raise DataError(f"model {name!r} has rating {v!r}", field="rating", expected="a finite Elo-scale rating")
        w = np.ones(n) if self.weights is None else np.asarray(self.weights, dtype=float)
        for name, v in zip(self.models, w):
            if not (np.isfinite(v) and v > 0):
                raise DataError(f"model {name!r} has weight {v!r}", field="weight", expected="a finite number > 0")
        t = np.full(n, np.nan) if self.vote_targets is None else np.asarray(self.vote_targets, dtype=float)
        if not 0 <= self.explore <= 1:
            raise OpenArenaError(f"explore {self.explore} must be between 0 and 1")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "ratings", r)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "vote_targets", t)

    @property
    def theta(self) -> np.ndarray:
        """True log-strengths, mean zero, logits."""
        return (self.ratings - self.ratings.mean()) / POINTS_PER_LOGIT


@dataclass
class SimulationResult:
    """One policy over R seeds.

    Attributes: policy; seeds (R,); votes_to_target (R,), votes until the criterion's
    half-width was below the target (NaN if not within max_votes); votes_to_median (R,), votes
    until the median half-width was; max_halfwidth, median_halfwidth (R,), at the stop (Elo
    points); target_halfwidth; criterion ('widest' or 'model NAME'); votes_per_model (R, n) at
    the stop.
    """

    policy: str
    seeds: np.ndarray
    votes_to_target: np.ndarray
    votes_to_median: np.ndarray
    max_halfwidth: np.ndarray
    median_halfwidth: np.ndarray
    target_halfwidth: float
    criterion: str
    votes_per_model: np.ndarray = field(repr=False, default=None)

    def summary(self) -> dict:
        """{policy, votes_to_target, max_halfwidth, median_halfwidth, ...}: medians over the
        seeds (votes_to_target None when some seed did not reach the target)."""
        reached = np.isfinite(self.votes_to_target)
        return {
            "policy": self.policy,
            "votes_to_target": float(np.median(self.votes_to_target)) if reached.all() else None,
            "max_halfwidth": float(np.median(self.max_halfwidth)),
            "median_halfwidth": float(np.median(self.median_halfwidth)),
            "votes_to_median_target": float(np.median(self.votes_to_median)) if np.isfinite(self.votes_to_median).all() else None,
            "target_halfwidth": self.target_halfwidth,
            "criterion": self.criterion,
            "seeds": int(len(self.seeds)),
            "reached": int(reached.sum()),
        }


def _policy_matrix(policy: str, spec: ArenaSpec, ratings: np.ndarray, pair_votes: np.ndarray, votes: np.ndarray, allowed: np.ndarray, state: dict) -> np.ndarray:
    """The served distribution for every seed, (R, n, n), from what the server knows; ``state``
    carries the previous targeted design (the warm start the server keeps too)."""
    R = len(ratings)
    n = len(spec.models)
    boosted = np.isfinite(spec.vote_targets)[None, :] & (votes < np.nan_to_num(spec.vote_targets, nan=0.0)[None, :])
    first = spec.weights[None, :] * np.where(boosted, spec.boost, 1.0)
    if boosted.any():
        floor = np.stack([fastchat_pairs(first[r], spec.weights, allowed) for r in range(R)])
    else:
        floor = np.broadcast_to(fastchat_pairs(first[0], spec.weights, allowed), (R, n, n))
    if policy == "fastchat":
        return floor
    if policy == "uniform":
        return np.broadcast_to(uniform_pairs(allowed), (R, n, n))
    if policy == "active":
        return mix(active_pairs(ratings, pair_votes, allowed), floor, spec.explore)
    if policy == "targeted":
        design = targeted_design(ratings, pair_votes, allowed, floor, spec.explore, start=state.get("design"))
        state["design"] = design
        return mix(design, floor, spec.explore)
    raise OpenArenaError(f"unknown sampling policy {policy!r}; expected one of {', '.join(POLICIES)}")


def simulate_policy(
    spec: ArenaSpec,
    policy: str,
    *,
    seeds: Sequence[int] = (0,),
    target_halfwidth: float = 10.0,
    votes_per_refit: int = 100,
    max_votes: int = 1_000_000,
    new_model: str | None = None,
    history: int = 0,
    progress: Callable[[int], None] | None = None,
) -> SimulationResult:
    """Votes until the widest (or ``new_model``'s) 95% sandwich interval is below
    ``target_halfwidth`` Elo points under ``policy``.

    Parameters:
        spec: the arena (true ratings, weights, boosts).
        policy: one of :data:`openarena.analysis.policies.POLICIES`.
        seeds: one simulated arena per seed; the same seed gives the same history and, under
            every policy, the same random stream.
        target_halfwidth: Elo points (> 0).
        votes_per_refit: votes between two leaderboard refits (the server's refresh period).
        max_votes: give up after this many votes (the seed's result is NaN).
        new_model: when given, the arena first collects ``history`` votes uniformly among the
            other models, then ``new_model`` joins, and the criterion is its own interval;
            votes are counted from its arrival.
        history: see new_model (0 without it).
        progress: called with the number of votes just simulated (per refit, for a progress bar).
    Returns: SimulationResult (medians via :meth:`SimulationResult.summary`).
    Raises: OpenArenaError for an unknown policy, a bad target or an unknown new_model.
    """
    if policy not in POLICIES:
        raise OpenArenaError(f"unknown sampling policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if not (np.isfinite(target_halfwidth) and target_halfwidth > 0):
        raise OpenArenaError(f"target half-width {target_halfwidth} must be a positive number of Elo points")
    if votes_per_refit < 1 or max_votes < votes_per_refit:
        raise OpenArenaError("votes per refit must be >= 1 and max votes at least one refit")
    n = len(spec.models)
    theta = spec.theta
    iu, ju = np.triu_indices(n, 1)
    P = len(iu)
    template = PairCounts(spec.models, np.column_stack([iu, ju]), np.zeros((P, 4)), "simulated arena")
    refit = BatchRefitter(template, prior=0.0, ref=0)
    p_true = expit(theta[iu] - theta[ju])
    seeds = np.asarray(list(seeds), dtype=np.int64)
    R = len(seeds)
    rngs = [np.random.default_rng([int(s), 14]) for s in seeds]
    tables = np.zeros((R, P, 4))
    allowed_all = ~np.eye(n, dtype=bool)
    newi = None
    if new_model is not None:
        if new_model not in spec.models:
            raise DataError(f"new model {new_model!r} is not in the strengths", field="model", expected="one of the models in the file")
        newi = spec.models.index(new_model)
        if history > 0:
            old = np.ones((n, n), bool) & allowed_all
            old[newi, :] = old[:, newi] = False
            q = uniform_pairs(old)[iu, ju]
            for r in range(R):
                k = rngs[r].multinomial(history, q)
                w = rngs[r].binomial(k, p_true)
                tables[r, :, 0] += w
                tables[r, :, 1] += k - w
    criterion = "widest" if newi is None else f"model {new_model}"

    votes_to_target = np.full(R, np.nan)
    votes_to_median = np.full(R, np.nan)
    max_hw = np.full(R, np.nan)
    med_hw = np.full(R, np.nan)
    per_model = np.zeros((R, n))
    theta_hat = np.zeros((R, n))
    identified = np.zeros(R, bool)
    ratings = np.full((R, n), np.nan)
    active_rows = np.arange(R)
    state: dict = {}
    done = 0
    limiter = threadpool_limits(limits=1, user_api="blas")  # small matrices: one BLAS thread is faster
    try:
        while len(active_rows) and done < max_votes:
            T = tables[active_rows]
            pv = np.zeros((len(active_rows), n, n))
            tot = T.sum(axis=2)
            pv[:, iu, ju] = tot
            pv[:, ju, iu] = tot
            votes = pv.sum(axis=2)
            if "design" in state and len(state["rows"]) != len(active_rows):  # some seeds finished
                keep = np.isin(state["rows"], active_rows)
                state["design"] = state["design"][keep]
            state["rows"] = active_rows
            M = _policy_matrix(policy, spec, ratings[active_rows], pv, votes, allowed_all, state)
            probs = M[:, iu, ju]
            for a, r in enumerate(active_rows):
                pr = probs[a] / probs[a].sum()
                k = rngs[r].multinomial(votes_per_refit, pr)
                w = rngs[r].binomial(k, p_true)
                tables[r, :, 0] += w
                tables[r, :, 1] += k - w
            done += votes_per_refit
            # which arenas can be fitted now (adding votes never undoes it)
            for r in active_rows[~identified[active_rows]]:
                try:
                    check_identifiable(PairCounts(spec.models, template.pairs, tables[r]))
                    identified[r] = True
                except (ConvergenceError, DataError):
                    pass
            fit_rows = active_rows[identified[active_rows]]
            finished = []
            if len(fit_rows):
                th, cov = refit.fit(tables[fit_rows], theta_hat[fit_rows])
                theta_hat[fit_rows] = th
                ratings[fit_rows] = th * POINTS_PER_LOGIT + 1000.0
                # variances of the mean-anchored ratings: diag(C cov C), C = I - 11^T/n
                row = cov.mean(axis=2)
                var = cov.diagonal(axis1=1, axis2=2) - 2 * row + row.mean(axis=1, keepdims=True)
                hw = halfwidth_points(var)
                crit = hw.max(axis=1) if newi is None else hw[:, newi]
                med = np.median(hw, axis=1)
                for a, r in enumerate(fit_rows):
                    if np.isnan(votes_to_median[r]) and med[a] < target_halfwidth:
                        votes_to_median[r] = done
                    if crit[a] < target_halfwidth:
                        votes_to_target[r] = done
                        max_hw[r], med_hw[r] = hw[a].max(), med[a]
                        finished.append(r)
                    else:
                        max_hw[r], med_hw[r] = hw[a].max(), med[a]
            if finished:
                active_rows = np.setdiff1d(active_rows, finished)
            if progress:
                progress(votes_per_refit)
    finally:
        limiter.restore_original_limits()
    for r in range(R):
        tot = tables[r].sum(axis=1)
        per_model[r] = np.bincount(iu, tot, n) + np.bincount(ju, tot, n)
    return SimulationResult(policy, seeds, votes_to_target, votes_to_median, max_hw, med_hw, float(target_halfwidth), criterion, per_model)


#: widest rating spread a simulated arena accepts (Elo points; 1,600 points = 10,000:1 odds)
MAX_SPREAD = 1600.0


def read_strengths(path: str) -> ArenaSpec:
    """An arena from a CSV with columns ``model, rating`` (Elo scale; e.g. a leaderboard CSV)
    and optionally ``weight`` (registry sampling weight, default 1) and ``vote_target`` (votes
    below which FastChat boosts the model; empty = none).

    Raises: DataError naming the file, row and field (missing column, duplicate model, a rating
    that is not a finite number, a weight that is not > 0), or OSError for an unreadable file.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"not a readable CSV ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})", str(path), expected="a CSV with columns model,rating") from None
    for col in ("model", "rating"):
        if col not in frame.columns:
            raise DataError(f"no column {col!r} (columns: {', '.join(map(str, frame.columns)) or 'none'})", str(path), field=col, expected="a CSV with columns model,rating[,weight,vote_target]")
    if len(frame) < 2:
        raise DataError(f"{len(frame)} model(s)", str(path), expected="at least two models")
    models = [str(m).strip() for m in frame["model"]]
    seen: dict[str, int] = {}
    for row, m in enumerate(models):
        if not m or m == "nan":
            raise DataError("empty model name", str(path), row=row, field="model", expected="a model key")
        if m in seen:
            raise DataError(f"model {m!r} already on row {seen[m] + 1}", str(path), row=row, field="model", expected="each model once")
        seen[m] = row

    def numbers(col: str, default: float, ok, expected: str) -> np.ndarray:
        if col not in frame.columns:
            return np.full(len(frame), default)
        out = np.empty(len(frame))
        for row, v in enumerate(frame[col]):
            try:
                x = float(v)
            except (TypeError, ValueError):
                x = np.nan
            if np.isnan(x) and col == "vote_target" and (v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""):
                out[row] = np.nan  # empty: no boost
                continue
            if not ok(x):
                raise DataError(f"{v!r} for model {models[row]!r}", str(path), row=row, field=col, expected=expected)
            out[row] = x
        return out

    ratings = numbers("rating", 0.0, np.isfinite, "a finite Elo-scale rating")
    weights = numbers("weight", 1.0, lambda x: np.isfinite(x) and x > 0, "a finite weight > 0")
    targets = numbers("vote_target", np.nan, lambda x: np.isfinite(x) and x >= 0, "a vote count >= 0 or empty")
    spread = float(ratings.max() - ratings.min())
    if spread > MAX_SPREAD:
        lo, hi = int(np.argmin(ratings)), int(np.argmax(ratings))
        raise DataError(f"ratings {spread:,.0f} points apart ({models[hi]!r} vs {models[lo]!r}): the weaker model would win once in "
                        f"{10 ** (spread / 400):.3g} votes, so no arena could rate them", str(path), row=hi, field="rating",
                        expected=f"ratings within {MAX_SPREAD:,.0f} points of each other (real boards span about 500)")
    return ArenaSpec(tuple(models), ratings, weights, targets)


def expected_votes(spec: ArenaSpec, target_halfwidth: float) -> float:
    """Votes uniform sampling needs for the widest interval to reach ``target_halfwidth`` when
    the strengths are known (the asymptotic Fisher-information prediction; for progress bars
    and for choosing targets)."""
    from openarena.ratings.design import design_variances

    n = len(spec.models)
    v = design_variances(spec.theta, (~np.eye(n, dtype=bool)).astype(float)).max()
    return float(v * (halfwidth_points(1.0) / target_halfwidth) ** 2)
