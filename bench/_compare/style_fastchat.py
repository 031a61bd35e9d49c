"""FastChat's style-control method, as FastChat runs it, on the same battle rows.

PyPI's fschat 0.2.36 predates style control, so this driver re-implements the published method
from its description (it is not FastChat's code): lm-sys/FastChat
fastchat/serve/monitor/elo_analysis.py, ``construct_style_matrices`` + ``fit_mle_elo`` (one fit)
and ``get_bootstrap_result_style_control`` (the bootstrap). The method:

- design: a dense float64 matrix with one row per battle *twice* (the battle table is
  concatenated with itself), columns = the models (+ln 10 for model_a, -ln 10 for model_b,
  models in order of first appearance) then the K = 4 style covariates
  (f_A - f_B) / (f_A + f_B + 1), z-scored (population sd) over the duplicated rows;
- labels: 1 where model_a won (both copies); a tie is one win each way (label 1 on the first copy
  only); there are no ties in this benchmark's data;
- fit: scikit-learn ``LogisticRegression(fit_intercept=False)`` with its defaults (lbfgs, L2
  penalty C = 1.0, tol = 1e-4, max_iter = 100); ratings = 400 * coef + 1000, style
  coefficients = the last K entries of coef (logits per sd of the covariate);
- bootstrap round: draw N battle indices with replacement (``np.random.choice`` over a
  ``list(range(N))``), take the design rows of the non-tie draws twice and of the tie draws once
  per copy, concatenate them into a new dense matrix, refit. As in FastChat's loop, the previous
  round's matrix is still referenced while the next one is built.

Differences from FastChat, all in FastChat's favour: the style counts come as flat integer
columns (FastChat extracts them from per-battle ``conv_metadata`` dicts with a Python-level map
per feature); the model and winner columns are converted to plain ``str`` (FastChat builds its
DataFrame from JSON records) outside the timings.

Run with bench/_work/venv-fastchat/bin/python (scikit-learn, pandas, numpy, pyarrow).
--mem-cap-gb sets RLIMIT_AS (address space) first, so that the bootstrap's copies of the design
fail with MemoryError instead of pushing a shared machine into swap / the OOM killer.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import traceback
import warnings

T0 = time.perf_counter()
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

T_IMPORT = time.perf_counter() - T0

from _common import emit, peak_rss_mb, timed, versions  # noqa: E402

STYLE = ("tokens", "headers", "lists", "bold")
BASE = 10.0


def vm_peak_mb() -> float:
    """Peak virtual size of this process (what RLIMIT_AS caps), MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def style_matrices(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """(X, Y, models): the duplicated-battle design and labels described in the module docstring."""
    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    position = pd.Series(np.arange(len(models)), index=models)
    twice = pd.concat([df, df], ignore_index=True)
    n, p, k = len(twice), len(models), len(STYLE)
    X = np.zeros((n, p + k))
    rows = np.arange(n)
    X[rows, position[twice["model_a"]].to_numpy()] = math.log(BASE)
    X[rows, position[twice["model_b"]].to_numpy()] = -math.log(BASE)
    fa = np.array([twice[f"{f}_a"].tolist() for f in STYLE])  # (k, n)
    fb = np.array([twice[f"{f}_b"].tolist() for f in STYLE])
    ratio = (fa - fb).astype(float) / ((fa + fb).astype(float) + 1.0)
    X[:, p:] = ((ratio - ratio.mean(axis=1, keepdims=True)) / ratio.std(axis=1, keepdims=True)).T
    Y = np.zeros(n)
    Y[(twice["winner"] == "model_a").to_numpy()] = 1.0
    tie = ((twice["winner"] == "tie") | (twice["winner"] == "tie (bothbad)")).to_numpy().copy()
    tie[n // 2 :] = False  # a tie: label 1 on the first copy, 0 on the second = one win each way
    Y[tie] = 1.0
    return X, Y, position


def fit(X: np.ndarray, Y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(ratings on the Elo scale (p,), style coefficients (k,), lbfgs iterations)."""
    lr = LogisticRegression(fit_intercept=False)
    lr.fit(X, Y)
    coef = lr.coef_[0]
    return 400.0 * coef[:p] + 1000.0, coef[p:].copy(), int(np.ravel(lr.n_iter_)[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--task", choices=["fit", "bootstrap"], required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mem-cap-gb", type=float, default=0.0, help="RLIMIT_AS in GiB (0: none)")
    args = ap.parse_args()
    out: dict = {"import_s": T_IMPORT, "mem_cap_gb": args.mem_cap_gb}
    if args.mem_cap_gb > 0:
        cap = int(args.mem_cap_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    read_s, _, table = timed(lambda: pq.read_table(args.parquet).to_pandas())
    df = pd.DataFrame({c: (table[c].astype(str) if c in ("model_a", "model_b", "winner") else table[c]) for c in table.columns})
    del table
    out.update(read_s=read_s, rows=len(df))

    stage = "design"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            build_s, build_cpu, (X, Y, position) = timed(lambda: style_matrices(df))
            p = len(position)
            out.update(build_s=build_s, build_cpu=build_cpu, design_shape=list(X.shape), design_gb=X.nbytes / 2**30,
                       rss_after_design_mb=peak_rss_mb())
            if args.task == "fit":
                stage = "fit"
                fit_s, fit_cpu, (elo, coef, n_iter) = timed(lambda: fit(X, Y, p))
                out.update(fit_s=fit_s, fit_cpu=fit_cpu, wall=build_s + fit_s, cpu=build_cpu + fit_cpu, n_iter=n_iter,
                           coef=[float(c) for c in coef], names=list(STYLE),
                           ratings={str(m): float(elo[i]) for m, i in position.items()})
            else:
                np.random.seed(args.seed)
                k = X.shape[0] // 2
                tie_battle = ((df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")).to_numpy()
                rounds, coefs = [], []
                out.update(rounds_done=rounds, boot_coefs=coefs)  # filled as rounds finish (kept on a MemoryError)
                t_all = time.perf_counter()
                for r in range(args.rounds):
                    stage = f"round {r + 1}: resample + copy the design"
                    t0 = time.perf_counter()
                    draw = np.random.choice(list(range(k)), size=k, replace=True)
                    is_tie = tie_battle[draw]
                    single, tied = draw[~is_tie], draw[is_tie]
                    tied = np.concatenate([tied, tied + k])
                    Xb = np.concatenate([X[single], X[single], X[tied]])
                    Yb = np.concatenate([Y[single], Y[single], Y[tied]])
                    present = Xb[:, :p].any(axis=0)
                    t1 = time.perf_counter()
                    stage = f"round {r + 1}: fit"
                    _, coef, n_iter = fit(Xb, Yb, int(present.sum()))
                    t2 = time.perf_counter()
                    rounds.append({"resample_s": t1 - t0, "fit_s": t2 - t1, "n_iter": n_iter, "rss_mb": peak_rss_mb(), "vm_peak_mb": vm_peak_mb()})
                    coefs.append([float(c) for c in coef])
                wall = time.perf_counter() - t_all
                out.update(wall=wall, rounds=args.rounds, per_round=wall / args.rounds)
        except MemoryError as exc:
            out.update(memory_error=True, failed_stage=stage, error_text=(traceback.format_exception_only(type(exc), exc)[-1].strip())[:300])
    out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:100]}" for w in caught})
    out["peak_rss_mb"] = peak_rss_mb()
    out["vm_peak_mb"] = vm_peak_mb()
    out["versions"] = versions("scikit-learn", "numpy", "pandas", "scipy", "pyarrow")
    emit(out)


if __name__ == "__main__":
    main()
