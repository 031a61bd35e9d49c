"""FastChat 0.2.36 ``compute_elo_mle_with_tie`` (the Bradley-Terry fit behind the LMSYS board,
sklearn LogisticRegression on a dense 2n x n_models design) on the battle rows, and its
bootstrap (``get_bootstrap_result``: resample rows with replacement, refit) for a few rounds.

Run with bench/_work/venv-fastchat/bin/python. The rows come from the same parquet as ours;
model and winner columns are turned into plain strings first (FastChat builds its DataFrame
from JSON records), outside the timings.
"""

from __future__ import annotations

import argparse
import time
import warnings

T0 = time.perf_counter()
import os  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import fastchat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

# fastchat/model/__init__.py imports model_adapter, i.e. torch, transformers, psutil, ... for
# serving models; elo_analysis only needs fastchat.model.model_registry. Register the package
# without running its __init__ so the measured code is FastChat's, unchanged, minus that weight.
_model_pkg = types.ModuleType("fastchat.model")
_model_pkg.__path__ = [os.path.join(os.path.dirname(fastchat.__file__), "model")]
sys.modules["fastchat.model"] = _model_pkg

from fastchat.serve.monitor.elo_analysis import compute_elo_mle_with_tie, get_bootstrap_result  # noqa: E402

T_IMPORT = time.perf_counter() - T0

from _common import emit, peak_rss_mb, timed, versions  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--task", choices=["fit", "bootstrap"], required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    read_s, _, df = timed(lambda: pq.read_table(args.parquet).to_pandas())
    df = pd.DataFrame({c: df[c].astype(str) for c in ("model_a", "model_b", "winner")})
    out = {"import_s": T_IMPORT, "read_s": read_s, "rows": len(df), "input_dtype": str(df["model_a"].dtype)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if args.task == "fit":
            wall, cpu, ratings = timed(lambda: compute_elo_mle_with_tie(df))
            out.update(wall=wall, cpu=cpu, ratings={str(k): float(v) for k, v in ratings.items()})
        else:
            np.random.seed(args.seed)  # DataFrame.sample uses numpy's global generator
            wall, cpu, boot = timed(lambda: get_bootstrap_result(df, compute_elo_mle_with_tie, args.rounds))
            out.update(wall=wall, cpu=cpu, rounds=args.rounds, per_round=wall / args.rounds, boot_shape=list(boot.shape))
    out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:120]}" for w in caught})
    out["peak_rss_mb"] = peak_rss_mb()
    out["versions"] = versions("fschat", "scikit-learn", "numpy", "pandas", "scipy", "pyarrow")
    emit(out)


if __name__ == "__main__":
    main()
