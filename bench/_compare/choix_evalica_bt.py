"""Optional rows: Bradley-Terry fits by choix 0.4.1 and evalica 0.4.2 on the same rows.

Run with bench/_work/venv-choix-evalica/bin/python. Both count a tie as half a win, like ours:
- evalica.bradley_terry(model_a, model_b, winners, tie_weight=0.5) takes the rows directly
  (winner labels mapped to evalica.Winner.X / Y / Draw beforehand; the mapping is timed);
  Newman's (2023) iteration, run to tolerance 1e-10 so that its ratings can be compared.
- choix.ilsr_pairwise_dense(M) takes an n_models x n_models matrix of wins (ties as 0.5 to each
  side), built here from the rows with numpy (timed); I-LSR (Maystre & Grossglauser 2015),
  tol 1e-10.
Each: 1 warm-up + median of 3; ratings on the Elo scale, mean 1000.
"""

from __future__ import annotations

import argparse
import math
import time

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

T_IMPORT = time.perf_counter() - T0

from _common import emit, peak_rss_mb, timed, versions, warm_median  # noqa: E402

POINTS = 400.0 / math.log(10.0)
TOL = 1e-10


def elo(log_strength: np.ndarray) -> np.ndarray:
    x = np.asarray(log_strength, dtype=float)
    return POINTS * (x - x.mean()) + 1000.0


def run_evalica(df: pd.DataFrame) -> dict:
    import evalica

    label = {"model_a": evalica.Winner.X, "model_b": evalica.Winner.Y, "tie": evalica.Winner.Draw, "tie (bothbad)": evalica.Winner.Draw}

    def fit():
        w = df["winner"]
        if isinstance(w.dtype, pd.CategoricalDtype):
            lut = np.array([label[c] for c in w.cat.categories], dtype=object)
            winners = lut[w.cat.codes.to_numpy()].tolist()  # a list: evalica's Rust side rejects object arrays
        else:
            winners = w.map(label).tolist()
        res = evalica.bradley_terry(df["model_a"], df["model_b"], winners, tie_weight=0.5, tolerance=TOL, limit=100_000)
        return res

    m = warm_median(fit)
    res = m["result"]
    scores = res.scores
    ratings = elo(np.log(scores.to_numpy()))
    return {
        "wall": m["wall"],
        "walls": m["walls"],
        "cpu": m["cpu"],
        "iterations": int(res.iterations),
        "ratings": {str(k): float(v) for k, v in zip(scores.index, ratings)},
    }


def run_choix(df: pd.DataFrame) -> dict:
    import choix

    def fit():
        a = df["model_a"].astype("category")
        b = df["model_b"].astype("category")
        models = sorted(set(a.cat.categories) | set(b.cat.categories))
        pos = {m: k for k, m in enumerate(models)}
        ia = np.array([pos[c] for c in a.cat.categories])[a.cat.codes.to_numpy()]
        ib = np.array([pos[c] for c in b.cat.categories])[b.cat.codes.to_numpy()]
        w = df["winner"].astype(str).to_numpy()
        n = len(models)
        score_a = np.select([w == "model_a", w == "model_b"], [1.0, 0.0], 0.5)
        M = np.bincount(ia * n + ib, score_a, n * n) + np.bincount(ib * n + ia, 1.0 - score_a, n * n)
        params = choix.ilsr_pairwise_dense(M.reshape(n, n), alpha=0.0, tol=TOL, max_iter=10_000)
        return models, params

    m = warm_median(fit)
    models, params = m["result"]
    return {"wall": m["wall"], "walls": m["walls"], "cpu": m["cpu"], "ratings": dict(zip(map(str, models), map(float, elo(params))))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--system", choices=["evalica", "choix"], required=True)
    args = ap.parse_args()
    read_s, _, df = timed(lambda: pq.read_table(args.parquet).to_pandas())
    out = {"import_s": T_IMPORT, "read_s": read_s, "rows": len(df)}
    out.update(run_evalica(df) if args.system == "evalica" else run_choix(df))
    out["peak_rss_mb"] = peak_rss_mb()
    out["versions"] = versions(args.system, "numpy", "pandas", "scipy")
    emit(out)


if __name__ == "__main__":
    main()
