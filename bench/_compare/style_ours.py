"""OpenArena style control on battle rows with style features: read the parquet, then
build_leaderboard(control='style') = style covariates (covariates.contextual_data) + contextual
Bradley-Terry fit (exact Newton on the rows) + sandwich intervals, or + bootstrap.

Run with the project venv in a fresh process (bench/style_control.py does).

--task sandwich --mode cold: one build_leaderboard call right after the imports and the read
    (the number a user gets from one CLI call; the parent measures the process's peak RSS).
--task sandwich --mode warm: 1 warm-up + median of 3 of build_leaderboard, and the same for the
    components (features, fit, sandwich) to show where the time goes.
--task bootstrap: build_leaderboard(ci='bootstrap', rounds=R), timed once (threads on all cores).
Every mode reports the fitted coefficients, their sandwich standard errors, the ratings (mean
1000) and their half-widths, for the comparisons.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from openarena.analysis.leaderboard import build_leaderboard  # noqa: E402
from openarena.data.battles import BattleTable  # noqa: E402

T_IMPORTED = time.perf_counter()

from _common import emit, median_of, peak_rss_mb, timed, versions, warm_median  # noqa: E402

POINTS = 400.0 / np.log(10.0)


def summary(lb) -> dict:
    """Coefficients, sandwich se (and bootstrap interval when there is one), ratings."""
    co = lb.coefficients
    t = lb.table
    return {
        "names": list(co["name"]),
        "coef": [float(x) for x in co["coef"]],
        "coef_se": [float(x) for x in co["se"]],
        "coef_q025": [float(x) for x in co["coef_q025"]],
        "coef_q975": [float(x) for x in co["coef_q975"]],
        "n_iter": int(lb.fit.n_iter),
        "ratings": {
            str(m): {"rating": float(r), "half_width": float((hi - lo) / 2)}
            for m, r, lo, hi in zip(t["model"], t["rating"], t["rating_q025"], t["rating_q975"])
        },
    }


def components(battles: BattleTable) -> dict:
    """The pieces of build_leaderboard(control='style', ci='sandwich'), timed separately."""
    from openarena.ratings.contextual import fit_contextual_bt
    from openarena.ratings.covariates import contextual_data
    from openarena.ratings.intervals import sandwich_intervals
    from openarena.ratings.scale import resolve_anchor, to_elo

    t0 = time.perf_counter()
    data, _ = contextual_data(battles, "style")
    t1 = time.perf_counter()
    fit = fit_contextual_bt(data)
    t2 = time.perf_counter()
    anchor = resolve_anchor("mean", data.models)
    sandwich_intervals(fit, to_elo(fit.theta, data.models, anchor), anchor)
    fit.coef_se()
    t3 = time.perf_counter()
    return {"features": t1 - t0, "fit": t2 - t1, "sandwich": t3 - t2}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--task", choices=["sandwich", "bootstrap"], default="sandwich")
    ap.add_argument("--mode", choices=["cold", "warm"], default="cold")
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()

    def read():
        # dictionary-encoded model/winner columns come back as pandas categoricals
        return BattleTable(pq.read_table(args.parquet).to_pandas(), source=args.parquet)

    read_s, _, battles = timed(read)
    out = {
        "import_s": T_IMPORTED - T_START,
        "read_s": read_s,
        "rows": len(battles),
        "rss_after_read_mb": peak_rss_mb(),
        "cpu_count": os.cpu_count(),
        "versions": versions("numpy", "pandas", "pyarrow", "scipy", "openarena"),
    }

    def sandwich():
        return build_leaderboard(battles, control="style", ci="sandwich", anchor="mean")

    if args.task == "sandwich" and args.mode == "cold":
        wall, cpu, lb = timed(sandwich)
        out.update(wall=wall, cpu=cpu)
    elif args.task == "sandwich":
        m = warm_median(sandwich)
        lb = m["result"]
        parts = warm_median(lambda: components(battles))
        out.update(
            wall=m["wall"],
            walls=m["walls"],
            cpu=m["cpu"],
            parts={k: median_of(parts["results"], k) for k in ("features", "fit", "sandwich")},
        )
    else:
        wall, cpu, lb = timed(lambda: build_leaderboard(battles, control="style", ci="bootstrap", rounds=args.rounds, seed=0, anchor="mean"))
        out.update(wall=wall, cpu=cpu, rounds=args.rounds)
    out.update(summary(lb))
    out["peak_rss_mb"] = peak_rss_mb()
    emit(out)


if __name__ == "__main__":
    main()
