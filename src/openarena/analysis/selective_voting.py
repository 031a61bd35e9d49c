"""Selective voting: does a voter vote on the battles of one model more often than on the others?

The re-roll attack on an anonymous arena (Huang et al., 2025; Min et al., 2025): sessions are
free and answers recognisable, so an attacker opens battles until the model it wants to promote
(or demote) appears, votes only then, and abandons every other battle. Each vote looks normal;
what gives it away is *which* battles get a vote.

The test, per voter (a session or an IP address) and per model m. Under the null hypothesis the
decision to vote on a battle does not depend on which models were drawn, so the voted battles
are a simple random sample of the battles the voter was shown (answered, not failed), and the
number of voted battles that contain m is hypergeometric:

    k_m ~ Hypergeometric(N, K_m, n),   p_m = P(X >= k_m)

with N battles shown, K_m of them with m, n voted. This is Fisher's exact test of "voted" against
"contains m", one-sided; it conditions on the battles actually drawn, so it is exact whatever
the sampling policy and however the sampler's probabilities (``battles.sampling_prob``: boosts,
outages, active sampling) changed while the voter played: the shown battles *are* the draws of
the sampler, and their stored probabilities need not be modelled. A voter's p-value is the
Bonferroni minimum over the models shown, min(1, M min_m p_m). Across voters,
:func:`adjust_pvalues` gives Holm's family-wise adjustment and Benjamini-Hochberg q-values.

What it cannot see: an attacker whose every battle is in a fresh session from a fresh IP address
(a distributed attacker) shows each voter key one battle, and one battle is no evidence. At the
model level, :func:`vote_through_rates` still shows it: the battles of the promoted model get
voted more often than the others (a 2x2 exact test per model), which says *that* an attack is
under way, not whose votes to discard.

Sources: Huang et al. (2025), "Exploring and Mitigating Adversarial Manipulation of Voting-Based
Leaderboards" (de-anonymisation by recognisable answers, vote only when the target appears);
Min et al. (2025), "Improving Your Model Ranking on Chatbot Arena by Vote Rigging" (target-only
rigging); Chiang et al. (2024), Chatbot Arena, section 5 (anomalous users, multiplicity);
Holm (1979); Benjamini & Hochberg (1995).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["SelectiveTest", "adjust_pvalues", "hypergeom_sf", "model_tallies", "selective_voting_report", "selective_voting_test", "vote_through_rates"]


@dataclass(frozen=True)
class SelectiveTest:
    """The selective-voting test of one voter: p (Bonferroni over the models shown, in [0, 1];
    1.0 when untested), model (the model with the smallest p_m, or None), shown (N), voted (n),
    shown_with (K of that model), voted_with (k of that model)."""

    p: float
    model: str | None
    shown: int
    voted: int
    shown_with: int = 0
    voted_with: int = 0


def model_tallies(pairs: Mapping[tuple[str, str], tuple[int, int]]) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """From {(model_a, model_b): (shown, voted)} to (N, n, {model: (K_m, k_m)}).
    Order of a pair does not matter; a battle counts once for each of its two models."""
    N = n = 0
    per: dict[str, list[int]] = {}
    for (a, b), (s, v) in pairs.items():
        N += int(s)
        n += int(v)
        for m in (a, b):
            t = per.setdefault(m, [0, 0])
            t[0] += int(s)
            t[1] += int(v)
    return N, n, {m: (t[0], t[1]) for m, t in per.items()}


def hypergeom_sf(k: int, N: int, K: int, n: int) -> float:
    """P(X >= k) for X ~ Hypergeometric(N battles, K of them with the model, n drawn).

    The first term from log-gamma functions, the next ones by the ratio of successive terms,
    (K - x)(n - x) / ((x + 1)(N - K - n + x + 1)), stopping once a term is below 1e-17 of the
    sum (the terms decrease beyond the mode): a few dozen steps even for thousands of battles.
    Written out because the vote path calls it for every model at every vote, and importing
    scipy.stats there would stall the first vote of a server for seconds; tests check it
    against scipy.stats.hypergeom.
    """
    lo, hi = max(k, 0, n - (N - K)), min(K, n)
    if lo > hi:
        return 0.0 if k > 0 else 1.0
    if lo == max(0, n - (N - K)):
        return 1.0  # the whole support

    def lcomb(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    mode = int((n + 1) * (K + 1) / (N + 2))
    if lo <= mode:  # the upper tail holds the mode: 1 - P(X < lo), summed from lo - 1 down
        return max(0.0, 1.0 - _tail_sum(lo - 1, N, K, n, lcomb, step=-1))
    return min(1.0, _tail_sum(lo, N, K, n, lcomb, step=1))


def _tail_sum(start: int, N: int, K: int, n: int, lcomb, step: int) -> float:
    """Sum of the hypergeometric pmf from ``start`` outwards (step +1: up to min(K, n); step -1:
    down to max(0, n - N + K)), from the mode's side, where the terms only decrease."""
    term = math.exp(lcomb(K, start) + lcomb(N - K, n - start) - lcomb(N, n))
    total, x = term, start
    end = min(K, n) if step > 0 else max(0, n - (N - K))
    while x != end and term > 1e-17 * total:
        if step > 0:
            term *= (K - x) * (n - x) / ((x + 1) * (N - K - n + x + 1))
        else:
            term *= x * (N - K - n + x) / ((K - x + 1) * (n - x + 1))
        x += step
        total += term
    return total


def selective_voting_test(pairs: Mapping[tuple[str, str], tuple[int, int]], min_votes: int = 5) -> SelectiveTest:
    """Test one voter for selective voting (see the module docstring).

    Parameters: pairs, {(model_a, model_b): (battles shown, battles voted)} over the voter's
    answered, non-failed anonymous battles (voted <= shown); min_votes, fewer voted battles are
    not tested (p = 1).
    Returns: SelectiveTest; p = 1 when nothing was abandoned (N == n: no choice was made).
    Raises: ValueError when a pair has more votes than battles or negative counts.
    Source: Fisher's exact (hypergeometric) test, one-sided, Bonferroni over the models.
    """
    for key, (s, v) in pairs.items():
        if v < 0 or s < 0 or v > s:
            raise ValueError(f"pair {key}: {v} voted of {s} shown; expected 0 <= voted <= shown")
    N, n, per = model_tallies(pairs)
    if n < max(min_votes, 1) or N == n:
        return SelectiveTest(1.0, None, N, n)
    names = [m for m, (K, _) in per.items() if K > 0]
    K = np.array([per[m][0] for m in names])
    k = np.array([per[m][1] for m in names])
    p_m = np.array([hypergeom_sf(int(a), N, int(b), n) for a, b in zip(k, K)])
    i = int(np.argmin(p_m))
    p = float(min(1.0, len(names) * p_m[i]))
    return SelectiveTest(p, names[i], N, n, int(K[i]), int(k[i]))


def adjust_pvalues(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiplicity across voters: (Holm's adjusted p-values, Benjamini-Hochberg q-values),
    both shape (n,), in [0, 1]; NaN entries stay NaN and are not counted as tests.
    Source: Holm (1979) step-down; Benjamini & Hochberg (1995) step-up."""
    p = np.asarray(p, dtype=float)
    holm = np.full(p.shape, np.nan)
    bh = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return holm, bh
    order = ok[np.argsort(p[ok], kind="stable")]
    ps = p[order]
    ranks = np.arange(1, m + 1)
    holm[order] = np.minimum(np.maximum.accumulate((m - ranks + 1) * ps), 1.0)
    q = np.minimum.accumulate((m / ranks * ps)[::-1])[::-1]
    bh[order] = np.minimum(q, 1.0)
    return holm, bh


def vote_through_rates(pairs: Mapping[tuple[str, str], tuple[int, int]]):
    """Per model, the share of its answered anonymous battles that got a vote, against the
    other battles' share, over every voter: a distributed re-roll attack raises its target's
    rate (its other battles are abandoned), an honest arena shows no model apart.

    Parameters: pairs, {(model_a, model_b): (battles shown, battles voted)} over all voters.
    Returns: DataFrame (model, shown, voted, vote_rate, rate_without, p), sorted by p; p is the
    one-sided Fisher exact test that the model's battles are voted more often, Bonferroni over
    the models.
    """
    import pandas as pd
    from scipy.stats import fisher_exact

    N, n, per = model_tallies(pairs)
    rows = []
    for m, (K, k) in per.items():
        rest_s, rest_v = N - K, n - k
        p = fisher_exact([[k, K - k], [rest_v, rest_s - rest_v]], alternative="greater").pvalue if K and rest_s else 1.0
        rows.append((m, K, k, k / K if K else np.nan, rest_v / rest_s if rest_s else np.nan, min(1.0, float(p) * len(per))))
    out = pd.DataFrame(rows, columns=["model", "shown", "voted", "vote_rate", "rate_without", "p"])
    return out.sort_values(["p", "model"]).reset_index(drop=True)


def selective_voting_report(activity, alpha: float = 0.05, min_votes: int = 5):
    """The selective-voting test of every voter key, adjusted for multiplicity across them.

    Parameters: activity, DataFrame with a ``pairs`` column ({(model_a, model_b): (shown,
    voted)} per row, e.g. :func:`openarena.storage.integrity.voter_activity`); alpha, the
    family-wise level across the voters tested (Holm); min_votes, as in
    :func:`selective_voting_test`.
    Returns: a copy of ``activity`` without ``pairs``, plus selective_p (Bonferroni over models;
    NaN when untested), selective_model, holm_p, bh_q, selective (bool: holm_p <= alpha).
    Raises: ValueError for alpha outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha {alpha}: expected a level between 0 and 1")
    out = activity.drop(columns=["pairs"]).copy()
    tests = [selective_voting_test(p, min_votes) for p in activity["pairs"]]
    tested = np.array([t.voted >= max(min_votes, 1) and t.shown > t.voted for t in tests], dtype=bool)
    p = np.array([t.p for t in tests], dtype=float)
    p[~tested] = np.nan
    holm, bh = adjust_pvalues(p)
    out["selective_p"] = p
    out["selective_model"] = [t.model if ok else None for t, ok in zip(tests, tested)]
    out["holm_p"] = holm
    out["bh_q"] = bh
    out["selective"] = np.nan_to_num(holm, nan=1.0) <= alpha
    return out
