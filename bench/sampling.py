"""Sampling-policy benchmark: votes until the leaderboard's intervals reach a target, for uniform
sampling, FastChat's weighted rule, the Chatbot Arena paper's active rule and OpenArena's
``targeted`` policy, on simulated arenas with known strengths, over paired seeds.

Run by hand from the repository root::

    .venv/bin/python bench/sampling.py                       # 30 seeds x 4 policies x 4 arenas
    .venv/bin/python bench/sampling.py --seeds 5 --arenas published-20   # a quick look

Arenas (true ratings on the Elo scale; votes are decisive Bradley-Terry outcomes):
  published-20 / published-60: 20 / 60 models drawn (numpy seed 2024) from the official
      2024-08-13 leaderboard (shared/data/thurstone_models/results/tables/published_bt_20240813.csv,
      128 models, ratings sd 110 points): a realistic spread with a long lower tail;
  normal-20 / normal-60: ratings 1000 + 173.7 * N(0, 0.8^2) logits (numpy seed 2024 + n), the
      spread of the issue's first study.
Each arena's target half-width is the one uniform sampling needs about 600 votes per model to
reach (asymptotic Fisher prediction, rounded to 0.5 point), so that every arena costs the same
simulation effort per model; the same target is used for the widest and the median interval.

Policies are the functions the server calls (openarena.analysis.policies) with the server's
defaults: FastChat weights = the published vote counts of the models relative to their median,
clipped to [0.5, 4] (the arena's own historical allocation squeezed into the range of FastChat's
SAMPLING_WEIGHTS; for the normal arenas, counts drawn from those), no boosts; active and targeted mix
in 20% of the FastChat distribution. The leaderboard is refitted every 100 votes (exact
Bradley-Terry MLE, sandwich intervals of the mean-anchored ratings); seed s gives the same random
stream under every policy, and ratios are paired per seed (geometric mean of uniform / policy,
95% t-interval on the log ratios). The bound columns are the asymptotic factor of votes an ideal
design that knows the true strengths saves over uniform (minimax design for the widest interval,
A-optimal for the median; with and without the 20% floor), from openarena.ratings.design.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ratings as rb  # noqa: E402  (bench/ratings.py: the shared table printer and paths)

from openarena.analysis.policies import POLICIES, fastchat_pairs  # noqa: E402
from openarena.analysis.vote_budget import ArenaSpec, expected_votes, simulate_policy  # noqa: E402
from openarena.ratings.design import design_bound  # noqa: E402
from openarena.ratings.scale import POINTS_PER_LOGIT  # noqa: E402

PUBLISHED = rb.SHARED / "data" / "thurstone_models" / "results" / "tables" / "published_bt_20240813.csv"
ARENAS = ("published-20", "published-60", "normal-20", "normal-60")
#: arenas whose optimal-design bound is also printed (--bounds-only): where it is close to 1
EXTRA_BOUNDS = ("published-top-20", "published-all-128", "normal-tight-20")
VOTES_PER_MODEL = 600
EXPLORE = 0.2


def fastchat_weights(num_battles: np.ndarray) -> np.ndarray:
    """FastChat-like registry weights: the models' published vote counts relative to their
    median, clipped to [0.5, 4] (the range of FastChat's SAMPLING_WEIGHTS examples, which
    favour new and popular models)."""
    return np.clip(num_battles / np.median(num_battles), 0.5, 4.0)


def make_arena(name: str, published: pd.DataFrame) -> ArenaSpec:
    if name == "published-top-20":  # the 20 best models of the board: a 127-point spread
        sub = published.nlargest(20, "rating")
        return ArenaSpec(tuple(sub["model"]), sub["rating"].to_numpy(float), fastchat_weights(sub["num_battles"].to_numpy(float)), explore=EXPLORE)
    if name == "published-all-128":
        return ArenaSpec(tuple(published["model"]), published["rating"].to_numpy(float), fastchat_weights(published["num_battles"].to_numpy(float)), explore=EXPLORE)
    if name == "normal-tight-20":  # sd 0.3 logits (52 points)
        rng = np.random.default_rng(2024)
        return ArenaSpec(tuple(f"m{i:02d}" for i in range(20)), 1000 + POINTS_PER_LOGIT * rng.normal(0, 0.3, 20), explore=EXPLORE)
    kind, n = name.split("-")
    n = int(n)
    if kind == "published":
        sel = np.sort(np.random.default_rng(2024).choice(len(published), n, replace=False))
        sub = published.iloc[sel]
        return ArenaSpec(tuple(sub["model"]), sub["rating"].to_numpy(float), fastchat_weights(sub["num_battles"].to_numpy(float)), explore=EXPLORE)
    if kind == "normal":
        rng = np.random.default_rng(2024 + n)
        ratings = 1000 + POINTS_PER_LOGIT * rng.normal(0, 0.8, n)
        w = rng.choice(published["num_battles"].to_numpy(float), n)
        return ArenaSpec(tuple(f"m{i:02d}" for i in range(n)), ratings, fastchat_weights(w), explore=EXPLORE)
    raise SystemExit(f"unknown arena {name!r}; expected one of {', '.join(ARENAS)}")


def paired_ratio(base: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """Geometric mean of base / other over seeds with a 95% t-interval."""
    lr = np.log(base / other)
    m = lr.mean()
    if len(lr) < 2:
        return float(np.exp(m)), float("nan"), float("nan")
    h = stats.t.ppf(0.975, len(lr) - 1) * lr.std(ddof=1) / np.sqrt(len(lr))
    return float(np.exp(m)), float(np.exp(m - h)), float(np.exp(m + h))


def mean_ci(x: np.ndarray) -> str:
    if len(x) < 2:
        return f"{x.mean():,.0f}"
    h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():,.0f} +- {h:,.0f}"


def print_bounds(arenas: list[str], published: pd.DataFrame) -> None:
    rows = []
    for arena in arenas:
        spec = make_arena(arena, published)
        n = len(spec.models)
        floor = fastchat_pairs(spec.weights, spec.weights, ~np.eye(n, dtype=bool))
        b = design_bound(spec.theta, floor_share=EXPLORE, floor=floor)
        rows.append([arena, str(n), f"{spec.ratings.std():.0f}", f"{np.ptp(spec.ratings):.0f}", f"{b.max_factor:.2f}", f"{b.floor_max_factor:.2f}",
                     f"{b.optimal_max_median / b.uniform_median:.2f}", f"{b.median_factor:.2f}"])
    rb.print_table(
        ["Optimal-design bounds (asymptotic: true strengths known, many votes): uniform votes / ideal votes",
         "widest: minimax design, alone and with targeted's 20% floor; 'median var at minimax': its median interval variance / uniform's; median: A-optimal design"],
        rows, ["arena", "models", "sd pts", "range pts", "widest", "widest, floor", "median var at minimax", "median"], right={1, 2, 3, 4, 5, 6, 7})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--arenas", default=",".join(ARENAS))
    ap.add_argument("--policies", default="uniform,fastchat,active,targeted")
    ap.add_argument("--votes-per-refit", type=int, default=100)
    ap.add_argument("--json-out", default=str(rb.WORK / "sampling-results.json"))
    ap.add_argument("--bounds-only", action="store_true", help="print the optimal-design bounds of every arena (and of a few more) and stop")
    args = ap.parse_args()
    if not PUBLISHED.exists():
        raise SystemExit(f"{PUBLISHED} not found (set OPENARENA_SHARED)")
    published = pd.read_csv(PUBLISHED)
    policies = args.policies.split(",")
    for p in policies:
        if p not in POLICIES:
            raise SystemExit(f"unknown policy {p!r}")
    if args.bounds_only:
        print_bounds(list(ARENAS) + list(EXTRA_BOUNDS), published)
        return
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    rows, out = [], []
    checks = []
    for arena in args.arenas.split(","):
        spec = make_arena(arena, published)
        n = len(spec.models)
        # the target uniform needs ~VOTES_PER_MODEL votes per model for (asymptotically)
        t1 = expected_votes(spec, 1.0)  # votes for +-1 point
        target = round(2 * np.sqrt(t1 / (VOTES_PER_MODEL * n))) / 2
        t0 = time.perf_counter()
        floor = fastchat_pairs(spec.weights, spec.weights, ~np.eye(n, dtype=bool))  # targeted's floor
        bound = design_bound(spec.theta, floor_share=EXPLORE, floor=floor)
        res = {}
        for p in policies:
            r = simulate_policy(spec, p, seeds=range(args.seeds), target_halfwidth=target, votes_per_refit=args.votes_per_refit)
            res[p] = r
            print(f"[{arena}] {p}: median {np.median(r.votes_to_target):,.0f} votes ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
        base = res.get("uniform")
        for p in policies:
            r = res[p]
            row = {"arena": arena, "n_models": n, "target_halfwidth": target, "policy": p,
                   "votes_widest": r.votes_to_target.tolist(), "votes_median": r.votes_to_median.tolist()}
            cells = [arena if p == policies[0] else "", p, mean_ci(r.votes_to_target)]
            if base is not None:
                g, lo, hi = paired_ratio(base.votes_to_target, r.votes_to_target)
                gm, lom, him = paired_ratio(base.votes_to_median, r.votes_to_median)
                row.update(ratio_widest=[g, lo, hi], ratio_median=[gm, lom, him])
                cells += [f"{g:.2f} [{lo:.2f}, {hi:.2f}]", mean_ci(r.votes_to_median), f"{gm:.2f} [{lom:.2f}, {him:.2f}]"]
                if p == "targeted":
                    need = 1.15 if arena.startswith("published") else None
                    if need is not None:
                        checks.append((f"targeted >= {need}x fewer votes than uniform, widest, {arena}", g >= need, f"{g:.2f}x"))
                    checks.append((f"targeted within 5% of uniform or better, widest, {arena}", g >= 1 / 1.05, f"{g:.2f}x"))
                    checks.append((f"targeted within 5% of uniform or better, median, {arena}", gm >= 1 / 1.05, f"{gm:.2f}x"))
            else:
                cells += ["", mean_ci(r.votes_to_median), ""]
            if p == policies[0]:
                cells += [f"{bound.max_factor:.2f} / {bound.floor_max_factor:.2f}", f"{bound.median_factor:.2f}", f"+-{target:g}"]
            else:
                cells += ["", "", ""]
            rows.append(cells)
            out.append(row)
        out.append({"arena": arena, "bound": bound.__dict__, "seconds": time.perf_counter() - t0})
    elapsed = time.perf_counter() - t_start
    try:
        commit = subprocess.run(["git", "-C", str(rb.ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    header = [
        f"OpenArena sampling-policy benchmark, {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, openarena commit {commit}",
        f"{args.seeds} paired seeds per arena and policy; leaderboard refitted every {args.votes_per_refit} votes; "
        f"votes until the widest / the median 95% sandwich interval is below the target (mean +- 95% CI over seeds)",
        "ratio: uniform votes / policy votes, geometric mean over paired seeds [95% CI]; > 1 = fewer votes than uniform",
        f"bound: asymptotic factor of an ideal design knowing the truth (widest: minimax design, without / with targeted's {EXPLORE:.0%} floor of the FastChat-weighted distribution; median: A-optimal)",
        f"wall time {elapsed:.0f} s; load average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f}",
    ]
    cols = ["arena", "policy", "votes (widest)", "ratio widest", "votes (median)", "ratio median", "bound widest", "bound median", "target"]
    rb.print_table(header, rows, cols, right={2, 3, 4, 5, 6, 7, 8})
    print()
    for text, ok, value in checks:
        print(f"{rb.verdict(ok):6s} {text}: {value}")
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps({"results": out, "checks": [list(c) for c in checks]}, indent=1, default=float))


if __name__ == "__main__":
    main()
