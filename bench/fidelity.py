"""Fidelity of the leaderboard engine on real data, printed as one table (run by hand).

The 1,670,250 public Chatbot Arena votes up to 2024-08-14 (leaderbot 0.4.3 aggregate) against
the official Bradley-Terry board published on 2024-08-13 (128 models), with the alias
chatgpt-4o-latest -> chatgpt-4o-latest-2024-08-08 and the LMSYS anchor mixtral = 1114.

    .venv/bin/python bench/fidelity.py            # OPENARENA_SHARED overrides ../shared
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.filters import apply_filters
from openarena.data.readers import read_battles

SHARED = Path(os.environ.get("OPENARENA_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data" / "leaderbot" / "chatbotarena_20240814.json"
PUBLISHED = SHARED / "data" / "thurstone_models" / "results" / "tables" / "published_bt_20240813.csv"


def main() -> None:
    counts = apply_filters(read_battles(DATA), aliases={"chatgpt-4o-latest": "chatgpt-4o-latest-2024-08-08"})
    pub = pd.read_csv(PUBLISHED).set_index("model")
    rows = []
    for ci, extra in (("sandwich", {}), ("bootstrap", {"rounds": 100, "seed": 0})):
        t0 = time.perf_counter()
        lb = build_leaderboard(counts, ci=ci, **extra)
        dt = time.perf_counter() - t0
        j = pub.merge(lb.table.set_index("model"), left_index=True, right_index=True, suffixes=("", "_ours"))
        diff = (j["rating_ours"] - j["rating"]).abs()
        k = j.drop(index="mixtral-8x7b-instruct-v0.1")
        ratio = (k["rating_q975_ours"] - k["rating_q025_ours"]) / (k["rating_q975"] - k["rating_q025"])
        rows.append(
            {
                "intervals": ci,
                "models": len(j),
                "mean |diff| pts": round(diff.mean(), 4),
                "max |diff| pts": round(diff.max(), 3),
                "worst model": diff.idxmax(),
                "spearman": round(spearmanr(j["rating_ours"], j["rating"]).statistic, 6),
                "CI half-width ratio (median)": round(float(np.median(ratio)), 3),
                "CI ratio 10%-90%": f"{np.quantile(ratio, 0.1):.2f}-{np.quantile(ratio, 0.9):.2f}",
                "seconds": round(dt, 3),
            }
        )
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{counts.total:,.0f} votes, {counts.n_models} models; targets: mean <= 0.3, max <= 3, spearman >= 0.9999, CI ratio within 15%")
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
