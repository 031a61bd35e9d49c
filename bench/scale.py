"""Scale benchmark: OpenArena against arena-rank as votes, models and files grow (run by hand).

Prints one table: every row is one measurement in a fresh process, with arena-rank measured in
the same run on the same Parquet file and the physical floor (pyarrow reading the three columns
model_a, model_b, winner) beside the large inputs.

    .venv/bin/python bench/scale.py                  # the full table (~1 h on 2 cores, ~20 GB in /tmp)
    .venv/bin/python bench/scale.py --quick          # small sizes, a few minutes
    .venv/bin/python bench/scale.py --only votes,models --skip-arena-rank

Rows: votes 1M/10M/50M x 130 models; models 130/500/2,000 x 5M votes; style control 1M/5M
votes; 100-round bootstrap (5M votes x 130 models); DuckDB and Spark on a 200M-vote folder of
Parquet partitions; the whole-process CLI leaderboard of the 1.67M real votes.
Generated data goes to --work (default /tmp/openarena-scale), never into the repository.
arena-rank 0.1.1 runs in bench/_work/venv-arena-rank (installed by bench/ratings.py's recipe).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import ratings as rb  # noqa: E402  (venvs, run_driver, quiet-machine checks, the data of bench/ratings.py)

OURS = Path(sys.executable)
# the drivers run in bench/_compare: measure the openarena of this tree (a worktree's src), not
# whichever one the venv has installed
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
POINTS = 400.0 / math.log(10.0)
TARGETS = {"vs_arena_rank": 5.0, "floor_ratio_50m": 2.0, "rss_50m_mb": 2048.0, "duckdb_200m_s": 60.0, "cli_real_s": 1.0}


def log(msg: str) -> None:
    rb.log(msg)


# ---------------------------------------------------------------------------------------------
# data


def simulate_rows(n_models: int, n_votes: int, seed: int, opponents: int | None = None, chunk: int = 5_000_000):
    """Yield pyarrow tables of simulated Bradley-Terry votes (10% ties, half 'tie (bothbad)').

    Pairs: uniform over all pairs when ``opponents`` is None; else each model battles about
    ``opponents`` random others (a sparse arena: 2,000 models x 54 opponents = 54k pairs)."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    theta = rng.normal(0.0, 0.6, n_models)
    names = pa.array([f"model-{i:04d}" for i in range(n_models)])
    winners = pa.array(["model_a", "model_b", "tie", "tie (bothbad)"])
    if opponents is not None:
        i = np.repeat(np.arange(n_models), opponents // 2)
        j = (i + rng.integers(1, n_models, len(i))) % n_models
        ring = np.arange(n_models)
        pi, pj = np.concatenate([i, ring]), np.concatenate([j, (ring + 1) % n_models])
    done = 0
    while done < n_votes:
        m = min(chunk, n_votes - done)
        if opponents is None:
            a = rng.integers(0, n_models, m)
            b = (a + rng.integers(1, n_models, m)) % n_models
        else:
            k = rng.integers(0, len(pi), m)
            flip = rng.random(m) < 0.5
            a, b = np.where(flip, pj[k], pi[k]), np.where(flip, pi[k], pj[k])
        p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
        u = rng.random(m)
        w = np.where(u < 0.05, 3, np.where(u < 0.1, 2, np.where(rng.random(m) < p, 0, 1))).astype(np.int8)
        yield pa.table(
            {
                "model_a": pa.DictionaryArray.from_arrays(pa.array(a.astype(np.int16)), names),
                "model_b": pa.DictionaryArray.from_arrays(pa.array(b.astype(np.int16)), names),
                "winner": pa.DictionaryArray.from_arrays(pa.array(w), winners),
            }
        )
        done += m


def ensure_rows(work: Path, name: str, n_models: int, n_votes: int, seed: int, opponents: int | None = None, files: int = 1) -> Path:
    """A Parquet file (files == 1) or a folder of ``files`` partitions; written once."""
    import pyarrow.parquet as pq

    target = work / name
    stamp = work / f"{name}.json"
    spec = {"n_models": n_models, "n_votes": n_votes, "seed": seed, "opponents": opponents, "files": files, "v": 1}
    if target.exists() and stamp.exists() and json.loads(stamp.read_text()) == spec:
        return target
    log(f"writing {target} ({n_votes:,} votes, {n_models} models, {files} file(s))")
    work.mkdir(parents=True, exist_ok=True)
    if files == 1:
        writer = None
        for t in simulate_rows(n_models, n_votes, seed, opponents):
            writer = writer or pq.ParquetWriter(target, t.schema)
            writer.write_table(t, row_group_size=1 << 20)
        writer.close()
    else:
        target.mkdir(parents=True, exist_ok=True)
        per = n_votes // files
        for k, t in enumerate(simulate_rows(n_models, n_votes, seed, opponents, chunk=per)):
            pq.write_table(t, target / f"part-{k:04d}.parquet", row_group_size=1 << 20)
    stamp.write_text(json.dumps(spec))
    return target


def ensure_style(work: Path, n_votes: int) -> Path:
    """bench/style_control.py's simulated arena (129 models, 4 style covariates) with n_votes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import style_control as sc

    path = work / f"style-{n_votes}.parquet"
    stamp = work / f"style-{n_votes}.json"
    recipe = {**sc.RECIPE, "n_battles": n_votes}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == recipe:
        return path
    log(f"writing {path} (style control, {n_votes:,} votes)")
    work.mkdir(parents=True, exist_ok=True)
    frame, _ = sc.simulate(recipe)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    stamp.write_text(json.dumps(recipe))
    return path


# ---------------------------------------------------------------------------------------------
# measuring


def run(python, script: str, *args: str, timeout: float = 3600.0) -> dict:
    return rb.run_driver(python, script, *args, timeout=timeout)


def fmt_n(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"


def max_diff(a: dict | None, b: dict | None) -> float | None:
    """Largest |rating difference| in points, both centred on their mean."""
    if not a or not b:
        return None
    keys = sorted(set(a) & set(b))
    x = np.array([a[k] for k in keys])
    y = np.array([b[k] for k in keys])
    return float(np.abs((x - x.mean()) - (y - y.mean())).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (votes 200k/1M, models 130/500/2,000 x 1M, style 200k, folder 20M)")
    ap.add_argument("--only", default="", help="comma-separated groups: votes, models, style, bootstrap, folder, cli")
    ap.add_argument("--skip-arena-rank", action="store_true", help="measure ours only (no ratios)")
    ap.add_argument("--skip-spark", action="store_true")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("OPENARENA_SCALE_WORK", "/tmp/openarena-scale")))
    ap.add_argument("--quiet-wait", type=float, default=0.0, help="seconds to wait for a quiet machine before each measurement (default 0)")
    ap.add_argument("--json-out", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()
    rb.QUIET_WAIT = args.quiet_wait
    groups = {g.strip() for g in args.only.split(",") if g.strip()} or {"votes", "models", "style", "bootstrap", "folder", "cli"}
    W = args.work
    if args.quick:
        votes, models_n, model_votes, styles, folder_votes, folder_files = [200_000, 1_000_000], [130, 500, 2000], 1_000_000, [200_000], 20_000_000, 4
    else:
        votes, models_n, model_votes, styles, folder_votes, folder_files = [1_000_000, 10_000_000, 50_000_000], [130, 500, 2000], 5_000_000, [1_000_000, 5_000_000], 200_000_000, 20

    ar_py = None
    if not args.skip_arena_rank:
        rb.WORK.mkdir(parents=True, exist_ok=True)
        ar_py, status = rb.ensure_venv("arena-rank")
        log(f"arena-rank venv: {status}")
    rows: list[dict] = []
    load0 = os.getloadavg()[0]
    t_start = time.time()

    def add(group, system, task, inp, res, ar=None, floor=None, note=""):
        err = (res or {}).get("error")
        wall = None if err or not res else res.get("wall")
        ar_wall = None if not ar or ar.get("error") else ar.get("wall")
        r = {"group": group, "system": system, "task": task, "input": inp, "wall": wall, "rss": None if not res else res.get("proc_rss_mb"),
             "arena_rank": ar_wall, "ratio": (ar_wall / wall) if (ar_wall and wall) else None,
             "floor": None if not floor or floor.get("error") else floor.get("wall"), "note": note + (f" ERROR: {err}" if err else "") + (f" [arena-rank: {ar['error']}]" if ar and ar.get("error") else ""),
             "other_load": None if not res else res.get("other_load")}
        rows.append(r)
        return r

    def arena(task: str, path: Path, *extra: str) -> dict | None:
        if ar_py is None:
            return None
        return run(ar_py, "scale_arena_rank.py", str(path), "--task", task, *extra)

    if "votes" in groups:
        for n in votes:
            p = ensure_rows(W, f"votes-{n}.parquet", 130, n, seed=1)
            floor = run(OURS, "scale_ours.py", str(p), "--task", "floor")
            ours = run(OURS, "scale_ours.py", str(p), "--task", "rows")
            duck = run(OURS, "scale_ours.py", str(p), "--task", "duckdb")
            ar = arena("sandwich", p)
            d = max_diff(ours.get("ratings"), ar.get("ratings") if ar else None)
            note = f"read {ours.get('read_s', float('nan')):.2f} s + leaderboard {ours.get('lb_s', float('nan')):.2f} s"
            if d is not None:
                note += f"; arena-rank ratings within {d:.3f} pts (its default tolerances)"
            add("votes", "OpenArena (rows in memory)", "read Parquet + BT + sandwich CIs", f"{fmt_n(n)} votes x 130", ours, ar, floor, note)
            add("votes", "OpenArena (DuckDB engine)", "aggregate with DuckDB + BT + sandwich CIs", f"{fmt_n(n)} votes x 130", duck, ar, floor,
                f"aggregate {duck.get('agg_s', float('nan')):.2f} s; ratings equal the in-memory path to {max_diff(ours.get('ratings'), duck.get('ratings')) or 0:.1e} pts")
    if "models" in groups:
        for m in models_n:
            opp = None if m <= 130 else 54
            p = ensure_rows(W, f"models-{m}-{model_votes}.parquet", m, model_votes, seed=2, opponents=opp)
            ours = run(OURS, "scale_ours.py", str(p), "--task", "rows")
            ar = arena("sandwich", p)
            d = max_diff(ours.get("ratings"), ar.get("ratings") if ar else None)
            pairs = "all pairs" if opp is None else f"~{opp} opponents per model"
            add("models", "OpenArena (rows in memory)", "read Parquet + BT + sandwich CIs", f"{fmt_n(model_votes)} votes x {m:,} ({pairs})", ours, ar, None,
                f"read {ours.get('read_s', float('nan')):.2f} s + leaderboard {ours.get('lb_s', float('nan')):.2f} s" + (f"; vs arena-rank {d:.3f} pts" if d is not None else ""))
    if "style" in groups:
        for n in styles:
            p = ensure_style(W, n)
            ours = run(OURS, "scale_ours.py", str(p), "--task", "style")
            ar = arena("style", p)
            add("style", "OpenArena", "style control (4 covariates): read + fit + sandwich", f"{fmt_n(n)} votes x 129", ours, ar, None,
                "arena-rank: ContextualBradleyTerry package defaults (reg=1.0, shrinks the coefficients; bench/style_control.py)")
    if "bootstrap" in groups:
        p = ensure_rows(W, f"models-130-{model_votes}.parquet", 130, model_votes, seed=2)
        ours = run(OURS, "scale_ours.py", str(p), "--task", "bootstrap", "--rounds", "100")
        ar = arena("bootstrap", p, "--rounds", "100")
        add("bootstrap", "OpenArena", "bootstrap, 100 rounds (from pair counts)", f"{fmt_n(model_votes)} votes x 130", ours, ar, None, "2 worker threads; arena-rank: multiprocessing pool, n_jobs=-1")
    if "folder" in groups:
        p = ensure_rows(W, f"folder-{folder_votes}", 130, folder_votes, seed=3, files=folder_files)
        floor = run(OURS, "scale_ours.py", str(p), "--task", "floor")
        duck = run(OURS, "scale_ours.py", str(p), "--task", "duckdb", timeout=7200)
        add("folder", "OpenArena (DuckDB engine)", f"aggregate {folder_files} Parquet files + BT + sandwich", f"{fmt_n(folder_votes)} votes x 130", duck, None, floor,
            f"aggregate {duck.get('agg_s', float('nan')):.1f} s; arena-rank not run: it needs every row in a pandas frame in memory")
        if not args.skip_spark:
            spark = run(OURS, "scale_ours.py", str(p), "--task", "spark", timeout=7200)
            d = max_diff(duck.get("ratings"), spark.get("ratings"))
            add("folder", "OpenArena (Spark engine, local[*])", f"aggregate {folder_files} Parquet files + BT + sandwich", f"{fmt_n(folder_votes)} votes x 130", spark, None, floor,
                f"aggregate {spark.get('agg_s', float('nan')):.1f} s after a {spark.get('spark_start_s', float('nan')):.1f} s session start (not included); ratings equal DuckDB's to {d if d is not None else float('nan'):.1e} pts")
    if "cli" in groups:
        # the whole process as a user runs it: python start + imports + read + fit + CSV out.
        # Two sources of the same 1,670,250 real votes: the registry name (leaderbot's pair
        # counts; parsed once, then read back from $OPENARENA_CACHE/parsed) and the rows as Parquet.
        import tempfile

        stamp = rb.ensure_parquet(rb.DEFAULT_DATA)
        for label, source in (("chatbot-arena-20240814 (pair counts)", "chatbot-arena-20240814"), ("battles.parquet (rows)", str(rb.PARQUET))):
            cache = tempfile.mkdtemp(prefix="openarena-cache-")
            env = {**os.environ, "OPENARENA_CACHE": cache}
            if source != "chatbot-arena-20240814":
                env.pop("OPENARENA_CACHE")
            runs = []  # (wall, cpu): the first run fills the cache, then three more
            for _ in range(4):
                cmd = [sys.executable, "-m", "openarena", "leaderboard", source, "--ci", "sandwich", "-q", "--format", "csv"]
                t0 = time.perf_counter()
                proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                _, status, ru = os.wait4(proc.pid, 0)
                runs.append((time.perf_counter() - t0, ru.ru_utime + ru.ru_stime))
                err = proc.stderr.read().decode()[-200:]
                proc.stderr.close()
                if os.waitstatus_to_exitcode(status):
                    break
            if os.waitstatus_to_exitcode(status):
                res = {"error": err}
            else:
                res = {"wall": float(np.median([w for w, _ in runs[1:]])), "cpu": float(np.median([c for _, c in runs[1:]]))}
            first = f"first run {runs[0][0]:.2f} s wall / {runs[0][1]:.2f} s CPU (cache empty); " if source == "chatbot-arena-20240814" else ""
            add("cli", "OpenArena CLI", f"whole process: `python -m openarena leaderboard {source.split('/')[-1]} --ci sandwich`", f"{stamp['rows'] / 1e6:.2f}M real votes, {label}", res, None, None,
                first + "median of 3 runs: " + ", ".join(f"{w:.2f} s wall / {c:.2f} s CPU" for w, c in runs[1:]))

    print_table(rows, load0, time.time() - t_start, args)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))


def print_table(rows: list[dict], load0: float, elapsed: float, args) -> None:
    def f(x, spec=".2f"):
        return "-" if x is None else format(x, spec)

    print(f"OpenArena scale benchmark, {time.strftime('%Y-%m-%d %H:%M')} ({elapsed / 60:.0f} min); machine: {os.cpu_count()} CPUs, "
          f"load average before/after {load0:.1f}/{os.getloadavg()[0]:.1f} (the machine is shared: wall times are inflated when others run)")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print("wall s: the measured call in a fresh process (ours: first run, imports excluded; arena-rank: its second, warm call, XLA compile excluded)")
    header = ["system", "task", "input", "wall s", "peak RSS MB", "floor s", "x floor", "arena-rank s", "arena-rank / ours", "note"]
    table = []
    for r in rows:
        xfloor = (r["wall"] / r["floor"]) if (r["wall"] and r["floor"]) else None
        ratio = r["ratio"]
        verdict = "" if ratio is None else (" ok" if ratio >= TARGETS["vs_arena_rank"] else " MISSED (< 5x)")
        load = f" [others used {r['other_load']:.1f} CPUs]" if r.get("other_load") and r["other_load"] > 0.25 else ""
        table.append([r["system"], r["task"], r["input"], f(r["wall"]), f(r["rss"], ",.0f"), f(r["floor"]), f(xfloor, ".1f"), f(r["arena_rank"]),
                      (f(ratio, ".1f") + "x" + verdict) if ratio else "-", r["note"] + load])
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("-+-".join("-" * w for w in widths))
    for row in table:
        print(" | ".join(str(x).ljust(w) for x, w in zip(row, widths)))


if __name__ == "__main__":
    main()
