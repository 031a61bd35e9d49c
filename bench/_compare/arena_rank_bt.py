"""arena-rank 0.1.1 (LMArena's ranking package, JAX + optax L-BFGS): BradleyTerry on
PairDataset.from_pandas(rows), with sandwich or bootstrap intervals.

Run with bench/_work/venv-arena-rank/bin/python. Input: the same parquet as ours, read the same
way (pyarrow -> pandas categoricals). from_pandas(reweighted=False): every vote has weight 1,
so min_pair_count (used only to cap inverse-frequency weights when reweighted=True) has no
effect and the likelihood is exactly ours with ties = half a win ('tie' and 'tie (bothbad)'
both map to 0.5 through default_outcome_map's fallback).

--task sandwich: cold call (includes XLA compilation), then 1 warm-up + median of 3 of
    from_pandas + fit + sandwich; ratings returned for comparison.
--task bootstrap: from_pandas + fit once, then compute_ratings_and_cis(ci_method='bootstrap',
    num_bootstrap=R) (multiprocessing pool, n_jobs=-1 -> all cores), timed once.
"""

from __future__ import annotations

import argparse
import os
import time

T0 = time.perf_counter()
import jax  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from arena_rank.models.bradley_terry import BradleyTerry  # noqa: E402
from arena_rank.utils.data_utils import PairDataset  # noqa: E402

T_IMPORT = time.perf_counter() - T0

from _common import emit, median_of, peak_rss_mb, timed, versions, warm_median  # noqa: E402

FROM_PANDAS = dict(reweighted=False, min_pair_count=1)


def ready(res: dict) -> dict:
    return {k: (np.asarray(jax.block_until_ready(v)) if hasattr(v, "block_until_ready") else v) for k, v in res.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--task", choices=["sandwich", "bootstrap"], required=True)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument(
        "--start-method",
        default="forkserver",
        help="multiprocessing start method for the bootstrap pool; 'fork' (Python 3.11's default on Linux) "
        "deadlocks once JAX has started its threads",
    )
    ap.add_argument("--ftol", type=float, default=None, help="BradleyTerry ftol (default: the package's 1e-9)")
    ap.add_argument("--gtol", type=float, default=None, help="BradleyTerry gtol (default: the package's 1e-9)")
    ap.add_argument("--hessian-reg", type=float, default=None, help="BradleyTerry hessian_reg (default: the package's 1e-5)")
    args = ap.parse_args()
    opts = {k: v for k, v in (("ftol", args.ftol), ("gtol", args.gtol), ("hessian_reg", args.hessian_reg)) if v is not None}
    if args.ftol is not None or args.gtol is not None:
        opts["max_iter"] = 100_000

    read_s, _, df = timed(lambda: pq.read_table(args.parquet).to_pandas())
    out = {"import_s": T_IMPORT, "read_s": read_s, "rows": len(df), "from_pandas": FROM_PANDAS, "options": opts, "jax_devices": [str(d) for d in jax.devices()]}

    def dataset():
        ds = PairDataset.from_pandas(df, **FROM_PANDAS)
        jax.block_until_ready(ds.opt_weights)
        return ds

    if args.task == "sandwich":
        def run():
            t0 = time.perf_counter()
            ds = dataset()
            t1 = time.perf_counter()
            model = BradleyTerry(n_competitors=len(ds.competitors), **opts)
            res = ready(model.compute_ratings_and_cis(ds, ci_method="sandwich"))
            t2 = time.perf_counter()
            return {"from_pandas_s": t1 - t0, "fit_sandwich_s": t2 - t1, "res": res, "n_unique": int(ds.pairs.shape[0])}

        cold_wall, _, _ = timed(run)
        m = warm_median(run, repeats=3, warmup=1)
        r = m["result"]
        res = r["res"]
        half = (res["rating_upper"] - res["rating_lower"]) / 2
        out.update(
            cold_s=cold_wall,
            wall=m["wall"],
            walls=m["walls"],
            cpu=m["cpu"],
            from_pandas_s=median_of(m["results"], "from_pandas_s"),
            fit_sandwich_s=median_of(m["results"], "fit_sandwich_s"),
            n_unique_rows=r["n_unique"],
            ratings={c: {"rating": float(x), "half_width": float(h)} for c, x, h in zip(res["competitors"], res["ratings"], half)},
        )
    else:
        import multiprocessing as mp

        mp.set_start_method(args.start_method, force=True)  # arena-rank uses mp.Pool() of the default context
        out["start_method"] = args.start_method
        ds = dataset()
        model = BradleyTerry(n_competitors=len(ds.competitors), **opts)
        model.fit(ds)
        jax.block_until_ready(model.params["ratings"])
        wall, cpu, res = timed(lambda: ready(model.compute_ratings_and_cis(ds, ci_method="bootstrap", num_bootstrap=args.rounds, n_jobs=-1)))
        out.update(
            wall=wall,
            cpu=cpu,
            rounds=args.rounds,
            n_jobs=os.cpu_count(),
            ratings={c: {"q025": float(lo), "q975": float(hi)} for c, lo, hi in zip(res["competitors"], res["rating_lower"], res["rating_upper"])},
            peak_rss_children_mb=peak_rss_mb(children=True),
        )
    out["peak_rss_mb"] = peak_rss_mb()
    out["versions"] = versions("arena-rank", "jax", "jaxlib", "optax", "numpy", "pandas", "pyarrow")
    emit(out)


if __name__ == "__main__":
    main()
