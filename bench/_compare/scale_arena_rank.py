"""arena-rank 0.1.1 at scale (run with bench/_work/venv-arena-rank/bin/python by bench/scale.py).

--task sandwich: PairDataset.from_pandas(reweighted=False) + BradleyTerry fit + sandwich CIs;
    the first call (with XLA compilation) and one more call; ``wall`` is the second (warm) call.
--task bootstrap: from_pandas + fit once, then compute_ratings_and_cis(ci_method='bootstrap',
    num_bootstrap=R, n_jobs=-1) timed once (forkserver pool: fork deadlocks with JAX's threads).
--task style: ContextualPairDataset.from_pandas(FastChat's four style ratios, reweighted=False)
    + ContextualBradleyTerry (package defaults) + sandwich; first call and one more (warm).
Input: a Parquet file read with pyarrow -> pandas (categoricals), as ours.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np
import pyarrow.parquet as pq
from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.utils.data_utils import PairDataset

from _common import emit, peak_rss_mb, timed, versions

FEATURES = ("tokens", "headers", "lists", "bold")


def ready(res):
    return {k: (np.asarray(jax.block_until_ready(v)) if hasattr(v, "block_until_ready") else v) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--task", choices=["sandwich", "bootstrap", "style"], required=True)
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    cols = ["model_a", "model_b", "winner"] + ([f"{f}_{s}" for f in FEATURES for s in "ab"] if args.task == "style" else [])
    read_s, _, df = timed(lambda: pq.read_table(args.parquet, columns=cols).to_pandas())
    out = {"read_s": read_s, "rows": len(df)}
    if args.task == "sandwich":
        def run():
            ds = PairDataset.from_pandas(df, reweighted=False, min_pair_count=1)
            model = BradleyTerry(n_competitors=len(ds.competitors))
            return ready(model.compute_ratings_and_cis(ds, ci_method="sandwich"))

        cold, _, _ = timed(run)
        wall, cpu, res = timed(run)
        out.update(cold_s=cold, wall=wall, cpu=cpu, ratings=dict(zip(res["competitors"], map(float, res["ratings"]))))
    elif args.task == "bootstrap":
        import multiprocessing as mp

        mp.set_start_method("forkserver", force=True)
        ds = PairDataset.from_pandas(df, reweighted=False, min_pair_count=1)
        model = BradleyTerry(n_competitors=len(ds.competitors))
        model.fit(ds)
        wall, cpu, res = timed(lambda: ready(model.compute_ratings_and_cis(ds, ci_method="bootstrap", num_bootstrap=args.rounds, n_jobs=-1)))
        out.update(wall=wall, cpu=cpu, rounds=args.rounds, peak_rss_children_mb=peak_rss_mb(children=True))
    else:
        from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
        from arena_rank.utils.data_utils import ContextualPairDataset

        def add_ratios(d):
            for f in FEATURES:
                a, b = d[f"{f}_a"].to_numpy(float), d[f"{f}_b"].to_numpy(float)
                d[f"{f}_ratio"] = (a - b) / (a + b + 1.0)

        feat_s, _, _ = timed(lambda: add_ratios(df))
        names = [f"{f}_ratio" for f in FEATURES]

        def run():
            ds = ContextualPairDataset.from_pandas(df, feature_cols=names, reweighted=False)
            model = ContextualBradleyTerry(n_competitors=len(ds.competitors), n_features=len(names))
            return ready(model.compute_ratings_and_cis(ds, ci_method="sandwich"))

        cold, _, _ = timed(run)
        wall, cpu, res = timed(run)
        out.update(features_s=feat_s, cold_s=cold, wall=wall, cpu=cpu)
    out["peak_rss_mb"] = peak_rss_mb()
    out["n_jobs"] = os.cpu_count()
    out["versions"] = versions("arena-rank", "jax", "jaxlib", "numpy", "pandas", "pyarrow")
    emit(out)


if __name__ == "__main__":
    main()
