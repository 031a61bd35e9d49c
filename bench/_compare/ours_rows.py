"""OpenArena from battle rows: read the parquet, aggregate, BT fit, sandwich CIs (the whole
leaderboard). Run with the project venv in a fresh process.

--mode cold: one run right after the imports (the process's peak RSS is measured by the parent).
--mode warm: one warm-up run, then the median of 3 runs.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

from openarena.analysis.leaderboard import build_leaderboard  # noqa: E402
from openarena.data.battles import BattleTable  # noqa: E402

try:  # the dedicated reader, when the tree has it
    from openarena.data.readers import read_battles
except ImportError:  # pragma: no cover
    read_battles = None

T_IMPORTED = time.perf_counter()

from _common import emit, median_of, peak_rss_mb, timed, versions, warm_median  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parquet")
    ap.add_argument("--mode", choices=["cold", "warm"], default="cold")
    args = ap.parse_args()

    def read():
        if read_battles is not None:
            return read_battles(args.parquet)
        # dictionary-encoded parquet columns come back as pandas categoricals
        return BattleTable(pq.read_table(args.parquet).to_pandas(), source=args.parquet)

    def pipeline():
        t0 = time.perf_counter()
        rows = read()
        t1 = time.perf_counter()
        lb = build_leaderboard(rows, ci="sandwich")
        t2 = time.perf_counter()
        return {"read": t1 - t0, "leaderboard": t2 - t1, "lb": lb}

    out = {
        "reader": "openarena.data.readers.read_battles" if read_battles else "pyarrow read_table().to_pandas() + BattleTable",
        "import_s": T_IMPORTED - T_START,
        "rss_after_import_mb": peak_rss_mb(),
        "versions": versions("numpy", "pandas", "pyarrow", "scipy", "openarena"),
    }
    if args.mode == "cold":
        wall, cpu, res = timed(pipeline)
        out.update(wall=wall, cpu=cpu, read_s=res["read"], leaderboard_s=res["leaderboard"])
        lb = res["lb"]
    else:
        m = warm_median(pipeline)
        out.update(wall=m["wall"], walls=m["walls"], cpu=m["cpu"], read_s=median_of(m["results"], "read"), leaderboard_s=median_of(m["results"], "leaderboard"))
        lb = m["result"]["lb"]
    out["data_sha256"] = lb.provenance["data_sha256"]
    out["n_rows"] = int(lb.counts.total)
    out["n_models"] = lb.counts.n_models
    out["peak_rss_mb"] = peak_rss_mb()
    emit(out)


if __name__ == "__main__":
    main()
