"""Red-team ratings (extended Bradley-Terry) on simulated games with known truth (run by hand).

Coverage of 95% intervals over seeded games (players with 3-60 rounds, a quarter with at most 8;
8 models, 6 targets; skills ~ N(0.3, 1) logits), recovery of the prior sd, agreement of the
unpenalised fit with scikit-learn's exact logistic regression, and the time of one fit at a
size an arena reaches (2,000 players, 30 models, 20 targets, 100,000 rounds) beside one pass of
the online estimate (RedTeam Arena's method), measured in the same run.

    .venv/bin/python bench/redteam.py [--seeds 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ratings as rb  # noqa: E402  (bench/ratings.py: the shared table printer)
from openarena.data.rounds import aggregate_rounds
from openarena.ratings.extended_bt import fit_extended_bt, online_extended_bt, simulate_rounds


def truth(seed, P, M, T):
    rng = np.random.default_rng(seed)
    s, r, d = rng.normal(0.3, 1.0, P), rng.normal(0, 0.7, M), rng.normal(0, 0.7, T)
    return s, r - r.mean(), d - d.mean()


def coverage(seeds: int):
    inside = {"players": [], "players <= 8 rounds": [], "models + targets": []}
    taus, secs = [], []
    for seed in range(seeds):
        s, r, d = truth(seed, 150, 8, 6)
        per = np.random.default_rng(seed + 50).integers(3, 61, 150)
        per[:40] = np.random.default_rng(seed).integers(3, 9, 40)
        t0 = time.perf_counter()
        fit = fit_extended_bt(simulate_rounds(s, r, d, per, seed=seed + 100))
        iv = fit.skill_intervals()
        secs.append(time.perf_counter() - t0)
        order = np.argsort([int(p[1:]) for p in fit.counts.players])
        iv = iv[order]
        hit = (iv[:, 0] <= s) & (s <= iv[:, 1])
        inside["players"].extend(hit)
        inside["players <= 8 rounds"].extend(hit[per <= 8])
        se = np.sqrt(np.diag(fit.covariance(robust=True)))[150:]
        z = (np.concatenate([fit.robustness, fit.difficulty]) - np.concatenate([r, d])) / se
        inside["models + targets"].extend(np.abs(z) < 1.959964)
        taus.append(fit.tau)
    return inside, taus, secs


def agreement() -> float:
    from sklearn.linear_model import LogisticRegression

    s, r, d = truth(0, 12, 5, 4)
    rounds = simulate_rounds(s, r, d, 120, seed=1)
    fit = fit_extended_bt(rounds, player_prior=0)
    c = aggregate_rounds(rounds)
    P, M, T = len(c.players), len(c.models), len(c.targets)
    X = np.zeros((len(c.cells), P + M + T))
    k = np.arange(len(c.cells))
    X[k, c.cells[:, 0]], X[k, P + c.cells[:, 1]], X[k, P + M + c.cells[:, 2]] = 1, -1, -1
    keep = np.delete(np.arange(P + M + T), [P, P + M])
    Xr = np.vstack([X[:, keep], X[:, keep]])
    y = np.concatenate([np.ones(len(k)), np.zeros(len(k))])
    w = np.concatenate([c.wins, c.losses])
    lr = LogisticRegression(C=np.inf, fit_intercept=False, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    lr.fit(Xr[w > 0], y[w > 0], sample_weight=w[w > 0])
    full = np.zeros(P + M + T)
    full[keep] = lr.coef_[0]
    rk, dk = full[P:P + M], full[P + M:]
    ours = np.concatenate([fit.robustness, fit.difficulty])
    theirs = np.concatenate([rk - rk.mean(), dk - dk.mean()])
    skill = full[:P] - rk.mean() - dk.mean()
    return float(max(np.abs(ours - theirs).max(), np.abs(fit.skill - skill).max()))


def speed():
    s, r, d = truth(7, 2000, 30, 20)
    rounds = simulate_rounds(s, r, d, 50, seed=8)
    t0 = time.perf_counter()
    fit = fit_extended_bt(rounds)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    online_extended_bt(rounds)
    t_online = time.perf_counter() - t0
    return len(rounds), t_fit, t_online, fit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    args = ap.parse_args()
    inside, taus, secs = coverage(args.seeds)
    rows = [[k, f"{len(v):,}", f"{np.mean(v):.3f}", f"{np.sqrt(np.mean(v) * (1 - np.mean(v)) / len(v)):.3f}"] for k, v in inside.items()]
    rb.print_table([f"Red-team ratings: 95% interval coverage over {args.seeds} seeded games (150 players, 8 models, 6 targets)",
                 f"prior sd recovered: mean {np.mean(taus):.3f} (true 1.000), sd {np.std(taus):.3f}; one fit + player intervals {np.median(secs):.2f} s (median)"],
                rows, cols=["parameters", "intervals", "coverage", "binomial se"], right={1, 2, 3})
    print()
    print(f"unpenalised fit vs scikit-learn LogisticRegression (newton-cholesky, no penalty): max |diff| {agreement():.2e} logits")
    n, t_fit, t_online, fit = speed()
    print(f"{n:,} rounds, 2,000 players x 30 models x 20 targets: batch fit with empirical-Bayes prior {t_fit:.2f} s "
          f"(tau {fit.tau:.3f}); one online pass (RedTeam Arena's method) {t_online:.2f} s; ratio {t_online / t_fit:.2f}")


if __name__ == "__main__":
    main()
