"""OpenArena at scale, one measurement per process (run by bench/scale.py with the project's venv).

--task floor      pyarrow reads the three columns model_a, model_b, winner (the physical floor)
--task rows       read_battles(parquet) + build_leaderboard(ci='sandwich'): the in-memory path
--task duckdb     engines.aggregate_counts(engine='duckdb') + build_leaderboard(ci='sandwich')
--task spark      engines.aggregate_counts(engine='spark', local[*]) + build_leaderboard; the
                  session start-up is timed separately
--task bootstrap  aggregate in memory, then build_leaderboard(ci='bootstrap', rounds=R)
--task style      read + build_leaderboard(control='style', ci='sandwich')
The source may be a file or a folder of Parquet files (floor: files read one after another).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()
import argparse  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402


from _common import emit, peak_rss_mb, timed, versions  # noqa: E402

T_IMPORTED = time.perf_counter()


def files_of(src: str) -> list[str]:
    p = Path(src)
    return sorted(str(q) for q in p.rglob("*.parquet")) if p.is_dir() else [src]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--task", required=True, choices=["floor", "rows", "duckdb", "spark", "bootstrap", "style"])
    ap.add_argument("--rounds", type=int, default=100)
    args = ap.parse_args()
    out: dict = {"task": args.task, "cpu_count": os.cpu_count()}

    if args.task == "floor":
        import pandas  # noqa: F401  (pq.read_table imports pandas on its first call: imports excluded, as for ours)
        import pyarrow.parquet as pq

        def read():
            n = 0
            for f in files_of(args.source):
                n += pq.read_table(f, columns=["model_a", "model_b", "winner"]).num_rows
            return n

        wall, cpu, n = timed(read)
        out.update(wall=wall, cpu=cpu, rows=n)
    elif args.task in ("rows", "bootstrap", "style"):
        from openarena.analysis.leaderboard import build_leaderboard
        from openarena.data.readers import read_battles

        # "imports excluded" (as for arena-rank): the readers import pandas and pyarrow on first
        # use since the CLI's start-up work, so import them here, before the timed calls
        import pandas  # noqa: F401
        import pyarrow.parquet  # noqa: F401

        t_imp = time.perf_counter() - T_IMPORTED
        cols = None if args.task == "style" else ["model_a", "model_b", "winner"]
        read_s, _, data = timed(lambda: read_battles(args.source, columns=cols) if cols else read_battles(args.source))
        if args.task == "rows":
            lb_s, _, lb = timed(lambda: build_leaderboard(data, ci="sandwich", anchor="mean"))
        elif args.task == "style":
            lb_s, _, lb = timed(lambda: build_leaderboard(data, control="style", ci="sandwich", anchor="mean"))
        else:
            from openarena.data.battles import aggregate

            counts = aggregate(data)
            del data
            lb_s, _, lb = timed(lambda: build_leaderboard(counts, ci="bootstrap", rounds=args.rounds, seed=0, anchor="mean"))
        out.update(read_s=read_s, lb_s=lb_s, wall=read_s + lb_s if args.task != "bootstrap" else lb_s, imports_s=t_imp)
        out["ratings"] = dict(zip(lb.table["model"], lb.table["rating"].astype(float)))
        out["n_models"] = len(lb.table)
    else:
        from openarena.analysis.leaderboard import build_leaderboard
        from openarena.engines import aggregate_counts

        spark_s = 0.0
        import pandas  # noqa: F401  (imports excluded, as above)
        import pyarrow.parquet  # noqa: F401

        if args.task == "duckdb":
            import duckdb  # noqa: F401
        if args.task == "spark":
            from openarena.engines.spark_engine import spark_session

            spark_s, _, _ = timed(lambda: spark_session("local[*]"))
        info: dict = {}
        agg_s, _, counts = timed(lambda: aggregate_counts(args.source, engine=args.task, store=None, info=info))
        lb_s, _, lb = timed(lambda: build_leaderboard(counts, ci="sandwich", anchor="mean"))
        out.update(agg_s=agg_s, lb_s=lb_s, spark_start_s=spark_s, wall=agg_s + lb_s, rows=info.get("rows"), files=info.get("files"), n_pairs=len(counts.pairs))
        out["ratings"] = dict(zip(lb.table["model"], lb.table["rating"].astype(float)))
    out["peak_rss_mb"] = peak_rss_mb()
    import openarena

    out["openarena_path"] = str(Path(openarena.__file__).parent)
    out["versions"] = versions("numpy", "pandas", "pyarrow", "scipy", "duckdb", "pyspark", "openarena")
    emit(out)


if __name__ == "__main__":
    main()
