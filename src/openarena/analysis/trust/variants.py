"""Private variants: a provider tests k variants and releases the best. The released score is
biased upwards ("winner's curse"); a Bonferroni interval at level 1 - alpha/k covers it.

- Each variant's rating and its marginal interval at level 1 - alpha (sandwich covariance).
- Bonferroni-adjusted interval at level 1 - alpha/k: covers all k variants at once, so in
  particular the selected one whatever the selection rule.
- Expected selection bias of the best of k, by parametric bootstrap from the fitted covariance:
  draw r* ~ N(r_hat, Sigma_k), select s* = argmax r*, average r*_s* - r_hat_s* (the bootstrap
  treats r_hat as the truth). Also the same under equal true strengths (E[max of N(0, Sigma_k)],
  the worst case, which is LMArena's "+11 points after 50 tests" setting).
- The released rating minus the plug-in bias: the bias-corrected rating.
- Provisional: the released model's score is provisional until it has N fresh votes (after
  ``released_at`` when timestamps exist), 2,000 by default as LMArena does.

Source: LMArena, "Our response to 'The Leaderboard Illusion'" (2025) and their policy of
provisional scores; Singh et al. (2025), "The Leaderboard Illusion"; Bonferroni (1936);
Efron & Tibshirani (1993) ch. 10 (bootstrap bias).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, PairCounts, as_pair_counts
from openarena.errors import DataError
from openarena.ratings.bradley_terry import fit_bradley_terry
from openarena.ratings.scale import POINTS_PER_LOGIT, resolve_anchor, to_elo

COLUMNS = ["model", "rating", "rating_q025", "rating_q975", "adj_lower", "adj_upper", "selected"]
PROVISIONAL_VOTES = 2000


@dataclass(frozen=True)
class VariantReport:
    """Result of :func:`variant_report`.

    Attributes: table (one row per variant, :data:`COLUMNS`, sorted by rating); level; k;
    released (model key); selection_bias (points, plug-in parametric bootstrap);
    selection_bias_equal (points, if all k variants were equally strong); corrected_rating
    (points); fresh_votes (votes of the released model counted as fresh); provisional (bool);
    provisional_votes (the N used).
    """

    table: pd.DataFrame
    level: float
    k: int
    released: str
    selection_bias: float
    selection_bias_equal: float
    corrected_rating: float
    fresh_votes: float
    provisional: bool
    provisional_votes: int


def selection_bias(mean: np.ndarray, cov: np.ndarray, draws: int = 20000, seed: int | None = 0) -> float:
    """Expected over-statement of the best of k estimates: E[r*_s - mean_s], s = argmax r*,
    r* ~ N(mean, cov).

    Parameters: mean (k,), cov (k, k) in the same unit (points). Returns: float (same unit).
    With mean all equal this is E[max_i Z_i], Z ~ N(0, cov) (about 2.25 sd for 50 independent
    variants).
    """
    mean = np.asarray(mean, dtype=float)
    rng = np.random.default_rng(seed)
    w, U = np.linalg.eigh((cov + cov.T) / 2)
    L = U * np.sqrt(np.maximum(w, 0.0))
    Z = rng.standard_normal((draws, len(mean))) @ L.T
    r = mean[None, :] + Z
    s = r.argmax(axis=1)
    return float((Z[np.arange(draws), s]).mean())


def variant_report(
    data: BattleTable | PairCounts,
    variants: list[str],
    *,
    released: str | None = None,
    level: float = 0.95,
    released_at: str | None = None,
    provisional_votes: int = PROVISIONAL_VOTES,
    anchor: str | None = None,
    draws: int = 20000,
    seed: int | None = 0,
) -> VariantReport:
    """Ratings, marginal and Bonferroni intervals, selection bias and provisional status of a
    provider's k variants, fitted jointly with every other model in ``data``.

    Parameters: data, battle rows or pair counts; variants, k >= 2 model keys; released, the
    one the provider released (default: the best-rated, as a lab would pick); level, e.g. 0.95;
    released_at, ISO date/time: votes of ``released`` from then on are the fresh ones (needs a
    ``tstamp`` column; default: all its votes); provisional_votes, N; anchor, as for the
    leaderboard; draws, seed: parametric bootstrap.
    Returns: VariantReport. Raises: DataError naming a variant absent from the data, fewer than
    two variants, or a released model that is not a variant.
    """
    counts = as_pair_counts(data)
    variants = list(dict.fromkeys(v.strip() for v in variants if v.strip()))
    if len(variants) < 2:
        raise DataError(f"{len(variants)} variant(s) given", counts.source, field="variants", expected="at least two model keys, comma-separated")
    missing = [v for v in variants if v not in counts.models]
    if missing:
        raise DataError(f"variant {missing[0]!r} has no votes in the data", counts.source, field="variants", expected="model keys present in the battles")
    if released is not None and released not in variants:
        raise DataError(f"released model {released!r} is not one of the variants", counts.source, field="released", expected="one of " + ", ".join(variants))
    if not 0 < level < 1:
        raise DataError(f"level {level}", field="level", expected="a number between 0 and 1, e.g. 0.95")
    fit = fit_bradley_terry(counts)
    models = counts.models
    anc = resolve_anchor(anchor, models)
    ratings = to_elo(fit.theta, models, anc)
    A = anc.contrast(models)
    cov = A @ fit.covariance(robust=True) @ A.T * POINTS_PER_LOGIT**2
    idx = np.array([models.index(v) for v in variants])
    r = ratings[idx]
    C = cov[np.ix_(idx, idx)]
    sd = np.sqrt(np.maximum(np.diag(C), 0.0))
    k = len(variants)
    alpha = 1 - level
    z = NormalDist().inv_cdf(1 - alpha / 2)
    zk = NormalDist().inv_cdf(1 - alpha / (2 * k))
    chosen = released or variants[int(np.argmax(r))]
    table = pd.DataFrame(
        {
            "model": variants,
            "rating": r,
            "rating_q025": r - z * sd,
            "rating_q975": r + z * sd,
            "adj_lower": r - zk * sd,
            "adj_upper": r + zk * sd,
            "selected": [v == chosen for v in variants],
        }
    ).sort_values("rating", ascending=False, ignore_index=True)
    bias = selection_bias(r, C, draws, seed)
    bias_equal = selection_bias(np.zeros(k), C, draws, seed)
    fresh = _fresh_votes(data, chosen, released_at, counts)
    return VariantReport(
        table=table,
        level=level,
        k=k,
        released=chosen,
        selection_bias=bias,
        selection_bias_equal=bias_equal,
        corrected_rating=float(ratings[models.index(chosen)] - bias),
        fresh_votes=fresh,
        provisional=bool(fresh < provisional_votes),
        provisional_votes=int(provisional_votes),
    )


def _fresh_votes(data, model: str, released_at: str | None, counts: PairCounts) -> float:
    if released_at is None:
        return float(counts.num_battles()[counts.models.index(model)])
    if not isinstance(data, BattleTable) or "tstamp" not in data.frame.columns:
        raise DataError("released_at needs a tstamp column (one row per vote)", counts.source, field="tstamp", expected="Unix seconds per vote")
    try:
        t0 = pd.Timestamp(released_at, tz="UTC").timestamp() if pd.Timestamp(released_at).tzinfo is None else pd.Timestamp(released_at).timestamp()
    except (ValueError, TypeError):
        raise DataError(f"cannot read date {released_at!r}", field="released_at", expected="an ISO date, e.g. 2025-03-01") from None
    f = data.frame
    mask = ((f["model_a"] == model) | (f["model_b"] == model)) & (pd.to_numeric(f["tstamp"], errors="coerce") >= t0)
    return float(mask.sum())


PROVISIONAL_COLUMNS = ["model", "votes", "fresh_votes", "since", "provisional"]


def provisional_flags(data: BattleTable | PairCounts, *, released_at: dict[str, str] | None = None, provisional_votes: int = PROVISIONAL_VOTES) -> pd.DataFrame:
    """Which models' scores are still provisional: fewer than ``provisional_votes`` fresh votes.

    A model's fresh votes are its votes since its release (``released_at[model]``, an ISO
    date/time, needs a ``tstamp`` column) or, without a release date, since it was first seen,
    i.e. all of its votes.

    Parameters: data, battle rows or pair counts; released_at, {model: ISO date} (optional);
    provisional_votes, N (2,000 by default, as LMArena does).
    Returns: DataFrame :data:`PROVISIONAL_COLUMNS` (votes: all the model's votes; since: the
    release date, else the first vote's UTC time, else None without timestamps), most votes first.
    Raises: DataError for a release date that cannot be read or a model without votes; when
        release dates are given without timestamps; for N < 1.
    Source: LMArena's policy of provisional scores (a new model's score is marked provisional
    until it has enough fresh votes).
    """
    if provisional_votes < 1:
        raise DataError(f"provisional_votes {provisional_votes}", field="provisional_votes", expected="a number of votes >= 1, e.g. 2000")
    counts = as_pair_counts(data)
    votes = counts.num_battles()
    first: dict[str, pd.Timestamp] = {}
    if isinstance(data, BattleTable) and "tstamp" in data.frame.columns:
        f = data.frame
        t = pd.to_numeric(f["tstamp"], errors="coerce")
        both = pd.concat([pd.DataFrame({"model": f["model_a"].astype(str), "t": t}), pd.DataFrame({"model": f["model_b"].astype(str), "t": t})])
        first = {m: pd.Timestamp(v, unit="s", tz="UTC") for m, v in both.groupby("model")["t"].min().items() if np.isfinite(v)}
    released_at = dict(released_at or {})
    for m in released_at:
        if m not in counts.models:
            raise DataError(f"model {m!r} has no votes in the data", counts.source, field="released_at", expected="model keys present in the battles")
    rows = []
    for i, m in enumerate(counts.models):
        if m in released_at:
            fresh = _fresh_votes(data, m, released_at[m], counts)
            since = pd.Timestamp(released_at[m])
            since = since.tz_localize("UTC") if since.tzinfo is None else since
        else:
            fresh, since = float(votes[i]), first.get(m)
        rows.append((m, float(votes[i]), fresh, since, bool(fresh < provisional_votes)))
    out = pd.DataFrame(rows, columns=PROVISIONAL_COLUMNS)
    return out.sort_values(["votes", "model"], ascending=[False, True], ignore_index=True)


def simulate_best_of_k(
    k: int = 50,
    votes_per_variant: int = 3000,
    *,
    n_public: int = 20,
    public_votes: int = 100_000,
    tie_param: float = 0.05,
    reps: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """Private testing with known truth: k variants of equal true strength (the middle of a
    public field of ``n_public`` models, strengths evenly spread over +-1 logit) each get
    ``votes_per_variant`` votes against the public models; the field has ``public_votes`` votes
    among itself. Votes follow the Davidson model with log nu = ``tie_param`` (0.05 gives the
    arena's 34% ties); the fit counts ties as half wins, as the leaderboard does.

    Returns: (reps,) float array, the selected (best-rated) variant's rating minus its true
    rating, in points, one per replication. Its mean is the selection bias.
    Source: LMArena's estimate of +11 points for the best of 50 tests of 3,000 votes each
    (response to "The Leaderboard Illusion", 2025).
    """
    from openarena.data.battles import aggregate
    from openarena.ratings.simulate import simulate_battles

    theta = np.concatenate([np.linspace(-1, 1, n_public), np.zeros(k)])
    n = len(theta)
    names = [f"public{i:02d}" for i in range(n_public)] + [f"variant{i:02d}" for i in range(k)]
    w_pub = np.zeros((n, n))
    w_pub[:n_public, :n_public] = 1.0
    w_var = np.zeros((n, n))
    w_var[n_public:, :n_public] = 1.0
    w_var[:n_public, n_public:] = 1.0
    out = np.empty(reps)
    for r in range(reps):
        ss = np.random.SeedSequence([seed, r]).generate_state(2)
        pub = simulate_battles(theta, public_votes, model="davidson", k=tie_param, seed=int(ss[0]), models=names, pair_weights=w_pub)
        var = simulate_battles(theta, k * votes_per_variant, model="davidson", k=tie_param, seed=int(ss[1]), models=names, pair_weights=w_var)
        frame = pd.concat([pub.frame, var.frame], ignore_index=True)
        counts = aggregate(BattleTable(frame, source="simulated private testing"))
        fit = fit_bradley_terry(counts)
        # ratings relative to the public field's mean, where the truth is known
        ids = [counts.models.index(m) for m in names]
        est = fit.theta[ids]
        est = est - est[:n_public].mean()
        truth = theta - theta[:n_public].mean()
        s = n_public + int(np.argmax(est[n_public:]))
        out[r] = (est[s] - truth[s]) * POINTS_PER_LOGIT
    return out
