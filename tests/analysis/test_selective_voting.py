"""Selective-voting test on simulated arenas with known truth: honest voters who abandon battles
at random keep the family-wise error, re-roll voters are found after a handful of votes, the
p-values agree with an exact enumeration, and the multiplicity adjustments with their
definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kstest

from openarena.analysis.selective_voting import (
    adjust_pvalues,
    hypergeom_sf,
    selective_voting_report,
    selective_voting_test,
    vote_through_rates,
)

MODELS = ["demo-echo", "demo-poet", "demo-markdown", "demo-slow", "demo-flaky"]
PAIRS = list(itertools.combinations(MODELS, 2))


def voter(rng, n_battles, vote_rule, probs=None):
    """{(a, b): (shown, voted)} of one voter: battles drawn from ``probs`` over PAIRS, each voted
    when ``vote_rule(pair, rng)``."""
    tally: dict = {}
    for k in rng.choice(len(PAIRS), n_battles, p=probs):
        pair = PAIRS[k]
        s, v = tally.get(pair, (0, 0))
        tally[pair] = (s + 1, v + int(vote_rule(pair, rng)))
    return tally


def honest(rng, keep=0.6):
    return lambda pair, r: r.random() < keep


def reroll(target):
    return lambda pair, r: target in pair


def test_exact_against_enumeration():
    """P(X >= k) of the hypergeometric, from counting the subsets of voted battles directly."""
    tally = {("a", "b"): (3, 3), ("a", "c"): (2, 1), ("b", "c"): (4, 0)}
    res = selective_voting_test(tally, min_votes=1)
    battles = [m for p, (s, _) in tally.items() for m in [p] * s]  # 9 battles
    n = sum(v for _, v in tally.values())  # 4 voted
    obs = {m: sum(v for p, (_, v) in tally.items() if m in p) for m in "abc"}
    total = math.comb(len(battles), n)
    p_m = {}
    for m in "abc":
        hits = sum(1 for sub in itertools.combinations(range(len(battles)), n) if sum(m in battles[i] for i in sub) >= obs[m])
        p_m[m] = hits / total
    best = min(p_m, key=p_m.get)
    assert res.model == best == "a"
    assert res.p == pytest.approx(min(1.0, 3 * p_m[best]), rel=1e-12)
    assert (res.shown, res.voted, res.shown_with, res.voted_with) == (9, 4, 5, 4)


def test_hypergeometric_tail_agrees_with_scipy():
    from scipy.stats import hypergeom

    rng = np.random.default_rng(2)
    for _ in range(300):
        N = int(rng.integers(1, 3000))
        K = int(rng.integers(0, N + 1))
        n = int(rng.integers(0, N + 1))
        k = int(rng.integers(0, min(K, n) + 2))
        ours, ref = hypergeom_sf(k, N, K, n), float(hypergeom.sf(k - 1, N, K, n))
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-300), (k, N, K, n)


def test_nothing_abandoned_or_too_few_votes_is_not_evidence():
    assert selective_voting_test({("a", "b"): (8, 8)}).p == 1.0
    assert selective_voting_test({("a", "b"): (8, 2), ("a", "c"): (8, 0)}, min_votes=5).p == 1.0
    with pytest.raises(ValueError, match="voted of"):
        selective_voting_test({("a", "b"): (1, 2)})


def test_honest_voters_keep_the_level_and_rerollers_are_found():
    rng = np.random.default_rng(7)
    probs = rng.dirichlet(np.ones(len(PAIRS)) * 3)  # an uneven sampler
    tallies, truth = [], []
    for i in range(400):
        tallies.append(voter(rng, int(rng.integers(10, 80)), honest(rng, keep=rng.uniform(0.2, 0.9)), probs))
        truth.append(False)
    for i in range(8):
        tallies.append(voter(rng, 40, reroll("demo-poet"), probs))
        truth.append(True)
    p = np.array([selective_voting_test(t).p for t in tallies])
    truth = np.array(truth)
    # honest p-values are valid (super-uniform): at most a level's share below each level
    for level in (0.01, 0.05, 0.2):
        assert (p[~truth] <= level).mean() <= level + 0.02
    frame = pd.DataFrame({"kind": "session", "voter": [f"v{i}" for i in range(len(p))], "pairs": tallies})
    rep = selective_voting_report(frame, alpha=0.05)
    assert rep.loc[truth, "selective"].all()
    assert not rep.loc[~truth, "selective"].any()
    assert (rep.loc[truth, "selective_model"] == "demo-poet").all()
    assert rep.loc[truth, "selective_p"].max() < 1e-6


def test_power_grows_with_votes():
    """With 5 models and a target in 4 of 10 pairs, the re-roll voter's p after n votes."""
    rng = np.random.default_rng(1)
    ps = {}
    for n_battles in (10, 25, 50):
        ps[n_battles] = np.median([selective_voting_test(voter(rng, n_battles, reroll("demo-echo"))).p for _ in range(50)])
    assert ps[10] > ps[25] > ps[50] and ps[50] < 1e-8


def test_holm_and_bh_by_definition():
    rng = np.random.default_rng(3)
    p = rng.random(30) ** 3
    p[[4, 9]] = np.nan
    holm, bh = adjust_pvalues(p)
    ok = np.isfinite(p)
    q = p[ok]
    m = len(q)
    order = np.argsort(q)
    # Holm: step-down, max over earlier (m - i + 1) p_(i)
    exp_holm = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * q[i])
        exp_holm[i] = min(running, 1.0)
    # BH: q_(i) = min over j >= i of m p_(j) / j
    exp_bh = np.empty(m)
    for rank, i in enumerate(order):
        exp_bh[i] = min(1.0, min(m * q[order[j]] / (j + 1) for j in range(rank, m)))
    assert np.allclose(holm[ok], exp_holm) and np.allclose(bh[ok], exp_bh)
    assert np.isnan(holm[[4, 9]]).all() and np.isnan(bh[[4, 9]]).all()


def test_vote_through_rates_see_a_distributed_attack():
    """A thousand one-battle attackers (each a fresh session and IP) are invisible per voter,
    but their target's battles get voted more often than the rest."""
    rng = np.random.default_rng(5)
    total: dict = {}

    def add(t):
        for k, (s, v) in t.items():
            a, b = total.get(k, (0, 0))
            total[k] = (a + s, b + v)

    for _ in range(300):
        add(voter(rng, 20, honest(rng, keep=0.5)))
    honest_rates = vote_through_rates(total)
    assert honest_rates["p"].min() > 0.01
    singles = [voter(rng, 1, reroll("demo-slow")) for _ in range(1000)]
    assert max(selective_voting_test(t, min_votes=1).p for t in singles) == 1.0  # one battle: no evidence
    for t in singles:
        add(t)
    rates = vote_through_rates(total).set_index("model")
    assert rates["p"].idxmin() == "demo-slow"
    assert rates.loc["demo-slow", "p"] < 1e-6 and rates.loc["demo-slow", "vote_rate"] > rates.loc["demo-slow", "rate_without"]


def test_kolmogorov_smirnov_of_randomly_abandoning_voters():
    """Under the null the per-model p-values are conservative (discrete); the voter-level
    p-value is not anti-conservative at any level."""
    rng = np.random.default_rng(11)
    p = np.array([selective_voting_test(voter(rng, 60, honest(rng, 0.5))).p for _ in range(300)])
    # a super-uniform sample: the KS test of 'p stochastically smaller than uniform' does not reject
    assert kstest(p, "uniform", alternative="greater").pvalue > 0.01
