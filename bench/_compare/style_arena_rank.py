"""arena-rank 0.1.1 (LMArena's ranking package, JAX + optax L-BFGS) style control:
ContextualBradleyTerry on ContextualPairDataset.from_pandas(rows), with sandwich intervals.

Run with bench/_work/venv-arena-rank/bin/python. Input: the same parquet as ours, read the same
way (pyarrow -> pandas categoricals). arena-rank takes the covariates as columns of the frame, so
the driver first adds FastChat's style ratios (f_A - f_B) / (f_A + f_B + 1) as four float columns
(timed separately: a user of arena-rank has to do this); from_pandas z-scores them
(normalize_features=True, population sd, as ours and FastChat).

from_pandas(reweighted=False): every vote has weight 1, so the likelihood is exactly ours. (The
package default reweighted=True weights each vote by 1 / max(pair count, 50), normalised to mean
1, LMArena's inverse-propensity weighting; it is a different estimator, so it is not used here.)

The loss is the *mean* negative log-likelihood + 0.5 * reg * ||coeffs||^2 (no penalty on the
ratings): reg = 1.0 (the default) equals lambda = N on the summed log-likelihood.

Timings: the first call (from_pandas + fit + sandwich, including XLA compilation), then
--repeats more calls (median). Coefficient standard errors are not returned by arena-rank; they
are computed afterwards, untimed, from the package's own compute_hessian_and_covariance
(sqrt of the diagonal of H^-1 G H^-1 / n_obs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import statistics
import time

T0 = time.perf_counter()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry  # noqa: E402
from arena_rank.utils.data_utils import ContextualPairDataset  # noqa: E402

T_IMPORT = time.perf_counter() - T0

from _common import emit, peak_rss_mb, timed, versions  # noqa: E402

STYLE = ("tokens", "headers", "lists", "bold")
FEATURE_COLS = [f"{f}_ratio" for f in STYLE]


def add_style_ratios(df) -> None:
    for f in STYLE:
        a = df[f"{f}_a"].to_numpy(dtype=float)
        b = df[f"{f}_b"].to_numpy(dtype=float)
        df[f"{f}_ratio"] = (a - b) / (a + b + 1.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--reg", type=float, default=None, help="ContextualBradleyTerry reg (default: the package's 1.0)")
    ap.add_argument("--ftol", type=float, default=None, help="default: the package's 1e-9")
    ap.add_argument("--gtol", type=float, default=None, help="default: the package's 1e-9")
    ap.add_argument("--max-iter", type=int, default=None, help="default: the package's 1000")
    ap.add_argument("--hessian-reg", type=float, default=None, help="default: the package's 1e-5")
    ap.add_argument("--repeats", type=int, default=2, help="calls after the first one (median reported)")
    args = ap.parse_args()
    opts = {k: v for k, v in (("reg", args.reg), ("ftol", args.ftol), ("gtol", args.gtol), ("max_iter", args.max_iter),
                              ("hessian_reg", args.hessian_reg)) if v is not None}

    read_s, _, df = timed(lambda: pq.read_table(args.parquet).to_pandas())
    feat_s, _, _ = timed(lambda: add_style_ratios(df))
    out = {"import_s": T_IMPORT, "read_s": read_s, "features_s": feat_s, "rows": len(df), "options": opts,
           "jax_devices": [str(d) for d in jax.devices()]}

    def run():
        t0 = time.perf_counter()
        ds = ContextualPairDataset.from_pandas(df, feature_cols=FEATURE_COLS, reweighted=False)
        jax.block_until_ready(ds.features)
        t1 = time.perf_counter()
        model = ContextualBradleyTerry(n_competitors=len(ds.competitors), n_features=len(FEATURE_COLS), verbose=True, **opts)
        log = io.StringIO()
        with contextlib.redirect_stdout(log):  # verbose=True prints the iteration count and stopping criteria
            res = model.compute_ratings_and_cis(ds, ci_method="sandwich")
            res = {k: (np.asarray(jax.block_until_ready(v)) if hasattr(v, "block_until_ready") else v) for k, v in res.items()}
        t2 = time.perf_counter()
        text = log.getvalue()
        it = re.search(r"finished in (\d+) iterations", text)
        grad = re.search(r"Grad Norm:\s+(\S+)", text)
        rel = re.search(r"Rel F Diff:\s+(\S+)", text)
        return {"from_pandas_s": t1 - t0, "fit_sandwich_s": t2 - t1, "wall": t2 - t0, "res": res, "ds": ds, "model": model,
                "iterations": int(it.group(1)) if it else None, "grad_norm": float(grad.group(1)) if grad else None,
                "rel_f_diff": float(rel.group(1)) if rel else None}

    first_cpu_wall, first_cpu, first = timed(run)
    reps = []
    cpus = []
    for _ in range(args.repeats):
        _, c, r = timed(run)
        reps.append(r)
        cpus.append(c)
    last = reps[-1] if reps else first
    res, ds, model = last["res"], last["ds"], last["model"]

    # coefficient standard errors from the package's own Hessian and gradient covariance (untimed)
    n_obs = ds.pairs.shape[0]
    H, G = model.compute_hessian_and_covariance(model.params["ratings"], model.params["coeffs"], ds.pairs, ds.features, ds.outcomes,
                                                ds.weights, model.reg, model.hessian_reg, model.n_competitors, model.n_features, n_obs)
    Hinv = jnp.linalg.inv(H)
    V = np.asarray(Hinv @ G @ Hinv) / n_obs
    coef_se = np.sqrt(np.diag(V)[model.n_competitors :])

    half = (res["rating_upper"] - res["rating_lower"]) / 2
    out.update(
        first_s=first["wall"],
        first_from_pandas_s=first["from_pandas_s"],
        first_cpu=first_cpu,
        wall=statistics.median(r["wall"] for r in reps) if reps else first["wall"],
        walls=[r["wall"] for r in reps],
        cpu=statistics.median(cpus) if cpus else first_cpu,
        from_pandas_s=statistics.median(r["from_pandas_s"] for r in reps) if reps else first["from_pandas_s"],
        fit_sandwich_s=statistics.median(r["fit_sandwich_s"] for r in reps) if reps else first["fit_sandwich_s"],
        iterations=last["iterations"],
        grad_norm=last["grad_norm"],
        rel_f_diff=last["rel_f_diff"],
        model_defaults={k: getattr(model, k) for k in ("reg", "hessian_reg", "max_iter", "ftol", "gtol")},
        names=list(STYLE),
        coef=[float(c) for c in np.asarray(res["coeffs"])],
        coef_se=[float(s) for s in coef_se],
        ratings={str(c): {"rating": float(x), "half_width": float(h)} for c, x, h in zip(res["competitors"], res["ratings"], half)},
    )
    out["peak_rss_mb"] = peak_rss_mb()
    out["versions"] = versions("arena-rank", "jax", "jaxlib", "optax", "numpy", "pandas", "pyarrow")
    emit(out)


if __name__ == "__main__":
    main()
