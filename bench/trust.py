"""Trust figures from simulations with known truth and from the real public data; prints one
table per analysis. Run by hand (not by CI):

    .venv/bin/python bench/trust.py            # about 3-5 minutes on 2 cores
    .venv/bin/python bench/trust.py --quick    # fewer replications, about 1 minute

Rows: simultaneous rank-interval coverage (sandwich max-|z| / chi2 / Bonferroni, naive 95%);
selection bias of the best of 50 variants x 3,000 votes (LMArena: about +11) and Bonferroni
coverage of the selected variant; drift power and false alarms; what plain / IPW / arena-rank
Bradley-Terry target under non-uniform sampling and an intransitive truth; rank-interval widths
on the 1.67M real votes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    q = args.quick
    from tests.ratings import test_simultaneous as ts
    from tests.analysis.trust import test_drift as td
    from tests.analysis.trust import test_variants as tv
    from tests.ratings import test_weighting as tw

    from openarena.analysis.trust.drift import drift_test
    from openarena.analysis.trust.variants import simulate_best_of_k, variant_report
    from openarena.ratings.weighting import fit_weighted, population_target

    rows = []
    t0 = time.perf_counter()
    sims = 60 if q else 300
    for method in ("maxz", "chi2", "bonferroni"):
        cover, naive = ts._coverage(method, sims)
        rows.append(("rank intervals, all true ranks covered at once", f"sandwich {method}, 10 models in 3 tied groups, 4,000 votes, {sims} runs", f"{cover:.3f}"))
    rows.append(("rank intervals, all covered at once", "naive pairwise 95% (no correction)", f"{naive:.3f}"))
    reps = 8 if q else 30
    bias = simulate_best_of_k(50, 3000, reps=reps, seed=11)
    rows.append(("selection bias, best of 50 x 3,000 votes (points)", f"{reps} simulated arenas, 34% ties; LMArena: about +11", f"{bias.mean():+.1f} (sd {bias.std(ddof=1):.1f}, se {bias.std(ddof=1) / np.sqrt(reps):.1f})"))
    hit_adj = hit_raw = 0
    n_sel = 50 if q else 200
    for s in range(n_sel):
        b, variants, theta, names = tv._variant_arena(s)
        rep = variant_report(b, variants, anchor="p0=1000", draws=2000)
        row = rep.table[rep.table.selected].iloc[0]
        true = 1000 + (theta[names.index(row.model)] - theta[0]) * 400 / np.log(10)
        hit_adj += row.adj_lower <= true <= row.adj_upper
        hit_raw += row.rating_q025 <= true <= row.rating_q975
    rows.append(("coverage of the released (best of 12) variant", f"Bonferroni 1 - 0.05/12, {n_sel} runs", f"{hit_adj / n_sel:.3f}"))
    rows.append(("coverage of the released (best of 12) variant", "unadjusted 95%", f"{hit_raw / n_sel:.3f}"))
    n_d = 20 if q else 100
    power = fa = 0
    for s in range(n_d):
        power += bool(drift_test(td._two_periods(s, change=0.25), window="7d").table.set_index("model").loc["m03", "drifted"])
        fa += bool(drift_test(td._two_periods(1000 + s), window="7d").table["drifted"].any())
    rows.append(("drift power, +43 points planted (0.25 logits), 6,000 votes/week", f"Holm alpha 0.05, {n_d} runs", f"{power / n_d:.3f}"))
    rows.append(("drift false alarm (any of 8 models flagged), no change", f"Holm alpha 0.05, {n_d} runs", f"{fa / n_d:.3f}"))
    P, qs = tw._truth(), tw._sampling()
    t_s, t_u = population_target(P, qs), population_target(P, np.ones_like(qs))
    b = tw._simulate(400_000, seed=5)
    pts = 400 / np.log(10)
    for method, tgt in (("none", t_s), ("ipw", t_u), ("arena-rank", t_u)):
        f = fit_weighted(b, method)
        est = (f.theta - f.theta.mean()) * pts
        rows.append((f"weighted BT '{method}': max |estimate - its target| (points)", "6 models, intransitive truth, top-2 sampled 6x, 400k votes", f"{np.abs(est - (tgt - tgt.mean()) * pts).max():.2f}"))
    rows.append(("gap between the sampled and the uniform-pair targets (points, max)", "same arena", f"{np.abs(t_s - t_u).max() * pts:.1f}"))
    shared = Path(os.environ.get("OPENARENA_SHARED", ROOT.parent / "shared")) / "data"
    src = shared / "leaderbot" / "chatbotarena_20240814.json"
    if src.exists():
        from openarena.analysis.leaderboard import build_leaderboard
        from openarena.data.readers import read_battles

        data = read_battles(src)
        for method in ("maxz", "chi2"):
            t = build_leaderboard(data, rank_intervals=method).table
            w = t.rank_upper - t.rank_lower
            rows.append((f"real 1.67M votes, 129 models: rank-interval width ({method})", "median / max of rank_upper - rank_lower", f"{w.median():.0f} / {w.max()}"))
    print(f"{'figure':<72} {'setting':<66} value")
    for r in rows:
        print(f"{r[0]:<72} {r[1]:<66} {r[2]}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
