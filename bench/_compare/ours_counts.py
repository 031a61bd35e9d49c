"""OpenArena from the aggregated pair counts (leaderbot JSON): load, BT fit + sandwich CIs, and
the 100-round bootstrap. Also writes the reference ratings (anchor='mean', i.e. mean 1000) that
the other systems are compared with. Run with the project venv.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from openarena.analysis.leaderboard import build_leaderboard
from openarena.data.battles import from_matrix_counts

try:
    from openarena.data.readers import read_battles
except ImportError:  # pragma: no cover
    read_battles = None

from _common import emit, peak_rss_mb, timed, versions, warm_median


def load(path: str):
    if read_battles is not None:
        return read_battles(path)
    with open(path) as fh:
        d = json.load(fh)
    return from_matrix_counts(d["models"], np.array(d["X"]), np.array(d["Y"]), source=path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json_path")
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--ratings-out", required=True)
    args = ap.parse_args()

    load_wall, _, counts = timed(lambda: load(args.json_path))
    sandwich = warm_median(lambda: build_leaderboard(counts, ci="sandwich"))
    boot = warm_median(lambda: build_leaderboard(counts, ci="bootstrap", rounds=args.rounds, seed=0))
    ref = build_leaderboard(counts, ci="sandwich", anchor="mean")
    boot_mean = build_leaderboard(counts, ci="bootstrap", rounds=args.rounds, seed=0, anchor="mean")
    t = ref.table
    tb = boot_mean.table.set_index("model")
    ratings = {
        m: {"rating": r, "half_width": (hi - lo) / 2, "boot_q025": float(tb.loc[m, "rating_q025"]), "boot_q975": float(tb.loc[m, "rating_q975"])}
        for m, r, lo, hi in zip(t["model"], t["rating"], t["rating_q025"], t["rating_q975"])
    }
    with open(args.ratings_out, "w") as fh:
        json.dump({"anchor": "mean = 1000", "ratings": ratings}, fh)
    emit(
        {
            "loader": "openarena.data.readers.read_battles" if read_battles else "json.load + from_matrix_counts",
            "load_s": load_wall,
            "sandwich_s": sandwich["wall"],
            "sandwich_walls": sandwich["walls"],
            "sandwich_cpu_s": sandwich["cpu"],
            "bootstrap_s": boot["wall"],
            "bootstrap_walls": boot["walls"],
            "bootstrap_cpu_s": boot["cpu"],
            "fit_iters": ref.fit.n_iter,
            "rounds": args.rounds,
            "cpu_count": os.cpu_count(),
            "data_sha256": ref.provenance["data_sha256"],
            "n_votes": counts.total,
            "n_models": counts.n_models,
            "n_pairs": len(counts.pairs),
            "peak_rss_mb": peak_rss_mb(),
            "versions": versions("numpy", "scipy", "openarena"),
        }
    )


if __name__ == "__main__":
    main()
