"""Ratings benchmark: OpenArena's Bradley-Terry leaderboard against FastChat, arena-rank, choix
and evalica on the same 1,670,250 real Chatbot Arena votes.

Run by hand from the repository root::

    .venv/bin/python bench/ratings.py            # everything (about 10 minutes on 2 cores)
    .venv/bin/python bench/ratings.py --skip fastchat,arena-rank   # only ours (+ choix/evalica)

Input: shared/data/leaderbot/chatbotarena_20240814.json (pair counts), expanded once to one row
per vote with PairCounts.to_battles(seed=0) and written to bench/_work/battles.parquet
(model_a, model_b, winner; dictionary-encoded, read back as pandas categoricals).

Every measurement runs in a fresh subprocess: ours with this venv, each other system with its
own venv under bench/_work/venv-* (created and pip-installed on the first run, reused after;
a stamp file records what was installed). The drivers are bench/_compare/*.py and print one
``BENCH_JSON {...}`` line; this script collects them and prints one table. Wall times use
time.perf_counter; peak RSS is the child's ru_maxrss (os.wait4). In-process timings are the
median of 3 runs after one warm-up, except where the table says otherwise. The full results
are also written to bench/_work/ratings-results.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
WORK = BENCH / "_work"
COMPARE = BENCH / "_compare"
SHARED = Path(os.environ.get("OPENARENA_SHARED", ROOT.parent / "shared")).resolve()
DEFAULT_DATA = SHARED / "data" / "leaderbot" / "chatbotarena_20240814.json"
PARQUET = WORK / "battles.parquet"
POINTS_PER_LOGIT = 400.0 / math.log(10.0)

#: Each comparison venv: pip install steps (each a list of pip arguments), in order.
VENVS: dict[str, list[list[str]]] = {
    # FastChat's own requirements pull torch/transformers/gradio for serving; the Elo code needs
    # only what fastchat/serve/monitor/elo_analysis.py (and the modules it imports) import.
    "fastchat": [
        ["--no-deps", "fschat==0.2.36"],
        ["numpy==2.4.6", "pandas==3.1.1", "scikit-learn==1.9.1", "scipy==1.17.1", "pyarrow==26.0.1", "plotly", "pytz", "tqdm", "requests"],
    ],
    "arena-rank": [["arena-rank==0.1.1", "jax==0.8.1", "jaxlib==0.8.1", "numpy==2.3.3", "pyarrow==26.0.1"]],
    "choix-evalica": [["choix==0.4.1", "evalica==0.4.2", "numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "pyarrow==26.0.1"]],
}

TARGETS = {
    "rows_wall": 1.5,  # s, ours from rows, whole leaderboard
    "rows_rss": 500.0,  # MB
    "bootstrap": 2.0,  # s, ours 100 rounds from counts
    "vs_fastchat": 20.0,  # x faster
    "vs_arena_rank": 5.0,  # x faster
    "agreement": 0.01,  # Elo points
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# setup: the parquet of rows and the venvs


def ensure_parquet(data: Path) -> dict:
    """Write the 1.67M rows once; reuse them while the source file and the recipe are unchanged."""
    import hashlib

    stamp_path = WORK / "battles.parquet.json"
    sha = hashlib.sha256(data.read_bytes()).hexdigest()
    want = {"source": str(data), "source_sha256": sha, "recipe": "from_matrix_counts + PairCounts.to_battles(seed=0)"}
    if PARQUET.exists() and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if all(stamp.get(k) == v for k, v in want.items()):
            return stamp
    log(f"writing {PARQUET.relative_to(ROOT)} from {data}")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from openarena.data.battles import from_matrix_counts

    d = json.loads(data.read_text())
    counts = from_matrix_counts(d["models"], np.array(d["X"]), np.array(d["Y"]), source=str(data))
    frame = counts.to_battles(seed=0).frame  # categorical model_a, model_b, winner
    WORK.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), PARQUET)
    stamp = dict(want, rows=len(frame), models=counts.n_models, bytes=PARQUET.stat().st_size)
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return stamp


def ensure_venv(name: str) -> tuple[Path | None, str]:
    """(python of bench/_work/venv-NAME or None, status). Installs only when the stamp differs."""
    steps = VENVS[name]
    venv = WORK / f"venv-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".bench-spec.json"
    spec = json.dumps(steps)
    if python.exists() and stamp.exists() and stamp.read_text() == spec:
        return python, "cached"
    logfile = WORK / f"venv-{name}.install.log"
    log(f"installing venv-{name} (log: {logfile.relative_to(ROOT)})")
    with open(logfile, "w") as fh:
        if not python.exists():
            r = subprocess.run([sys.executable, "-m", "venv", str(venv)], stdout=fh, stderr=subprocess.STDOUT)
            if r.returncode:
                return None, f"venv creation failed (see {logfile.name})"
        for step in steps:
            r = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", *step], stdout=fh, stderr=subprocess.STDOUT)
            if r.returncode:
                return None, f"pip install {' '.join(step)} failed (see {logfile.name})"
    stamp.write_text(spec)
    return python, "installed"


# ---------------------------------------------------------------------------------------------
# other load on the machine (it is shared: wall times mean little while something else runs)


def busy_cpu_seconds() -> float:
    """CPU-seconds spent busy by the whole machine since boot (/proc/stat)."""
    with open("/proc/stat") as fh:
        f = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (at most ``max_wait`` s) until the machine uses less than ``threshold`` CPUs over one
    second; returns the load seen last, in CPUs."""
    t_end = time.monotonic() + max_wait
    announced = False
    while True:
        b0 = busy_cpu_seconds()
        time.sleep(1.0)
        load = busy_cpu_seconds() - b0
        if load < threshold or time.monotonic() > t_end:
            return load
        if not announced:
            log(f"  machine busy ({load:.1f} CPUs in use by other processes); waiting up to {max_wait:.0f} s for quiet")
            announced = True


# ---------------------------------------------------------------------------------------------
# running a driver

#: seconds to wait for a quiet machine before each measurement (set from --quiet-wait)
QUIET_WAIT = 120.0


def run_driver(python: Path | str, script: str, *args: str, timeout: float = 3600.0) -> dict:
    """Run bench/_compare/SCRIPT with PYTHON in a fresh process (own session, killed as a group on
    timeout). Returns the driver's JSON plus ``proc_wall`` (spawn to exit, as seen from here),
    ``proc_rss_mb`` (the child's peak RSS from wait4) and ``error`` when it failed."""
    cmd = [str(python), str(COMPARE / script), *args]
    log("run " + " ".join([Path(cmd[0]).parent.parent.name + "/python", *cmd[1:]]))
    load_before = wait_quiet(QUIET_WAIT) if QUIET_WAIT > 0 else float("nan")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        busy0 = busy_cpu_seconds()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=str(COMPARE), start_new_session=True)
        deadline = t0 + timeout
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, ru = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        busy = busy_cpu_seconds() - busy0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    result: dict = {}
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line[len("BENCH_JSON ") :])
    result["proc_wall"] = wall
    result["proc_rss_mb"] = ru.ru_maxrss / 1024.0
    result["proc_cpu"] = ru.ru_utime + ru.ru_stime
    # CPUs used by other processes meanwhile (this script itself sleeps in wait4)
    result["other_load"] = max(0.0, busy - result["proc_cpu"]) / wall
    result["load_before"] = load_before
    if timed_out or proc.returncode or "wall" not in result and "sandwich_s" not in result:
        tail = (stderr.strip().splitlines() or ["no output"])[-1][:200]
        result["error"] = f"timed out after {timeout:.0f} s" if timed_out else f"exit {proc.returncode}: {tail}"
        log(f"  failed: {result['error']}")
    return result


# ---------------------------------------------------------------------------------------------
# comparing ratings


class Reference:
    """Our exact MLE (mean 1000) and a check of any rating vector against the likelihood."""

    def __init__(self, data: Path, ratings_file: Path):
        from openarena.data.battles import from_matrix_counts
        from openarena.ratings.bradley_terry import _Problem, fit_bradley_terry

        d = json.loads(data.read_text())
        self.counts = from_matrix_counts(d["models"], np.array(d["X"]), np.array(d["Y"]))
        self.fit = fit_bradley_terry(self.counts)
        self.problem = _Problem(self.counts, "half", self.fit.ref)
        self.ratings = json.loads(ratings_file.read_text())["ratings"]

    def max_diff(self, other: dict[str, float], centre: bool = False) -> float:
        """max |other - ours| over the models, in points (``centre``: shift other to mean 1000)."""
        models = list(self.counts.models)
        x = np.array([other[m] for m in models])
        if centre:
            x = x - x.mean() + 1000.0
        return float(np.abs(x - np.array([self.ratings[m]["rating"] for m in models])).max())

    def newton_gap(self, other: dict[str, float]) -> float:
        """Largest coordinate of one exact Newton step from ``other``, in points: how far those
        ratings are from the maximum-likelihood estimate (0 for a converged fit)."""
        theta = np.array([other[m] for m in self.counts.models]) / POINTS_PER_LOGIT
        ref = self.fit.ref
        x = np.delete(theta - theta[ref], ref)[None]
        _, g, H = self.problem.evaluate(x, self.counts.counts[None])
        step = np.linalg.solve(-H[0], g[0])
        return float(np.abs(step).max() * POINTS_PER_LOGIT)

    def max_half_width_diff(self, other: dict[str, dict]) -> float:
        return float(max(abs(other[m]["half_width"] - self.ratings[m]["half_width"]) for m in self.counts.models))


# ---------------------------------------------------------------------------------------------
# the table


def fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def fmt_mb(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


COLUMNS = ["system", "task", "input", "wall s", "cpu s", "peak RSS MB", "target", "note"]


def print_table(header: list[str], rows: list[list[str]], cols: list[str] = COLUMNS, right: set[int] = frozenset({3, 4, 5})) -> None:
    """Print the header lines, then ``rows`` as a plain-text table under ``cols`` (columns whose
    index is in ``right`` right-aligned). Shared by the bench scripts."""
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]

    def line(cells):
        return " | ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    for h in header:
        print(h)
    print()
    print(line(cols))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def machine_header(args, stamp: dict, load_before: tuple) -> list[str]:
    cpu = "unknown CPU"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    load_after = os.getloadavg()
    return [
        f"OpenArena ratings benchmark, {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, openarena commit {commit}",
        f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu}, {mem:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        f"load average (1 min) before/after: {load_before[0]:.2f} / {load_after[0]:.2f} (other work on the machine inflates wall times)",
        f"input: {stamp['source']} -> {stamp['rows']:,} rows, {stamp['models']} models, "
        f"written once to bench/_work/battles.parquet ({stamp['bytes'] / 2**20:.1f} MB, dictionary-encoded)",
        "in-process timings: median of 3 after 1 warm-up unless noted; cpu s: user+system CPU of those runs; "
        "peak RSS: ru_maxrss of the measuring subprocess (whole process)",
    ]


def build_rows(R: dict, ref: Reference | None) -> list[list[str]]:
    rows: list[list[str]] = []
    n_rows = "1.67M rows (parquet)"
    counts_in = "3,460 pair counts (JSON)"

    def ok(res: dict | None) -> bool:
        return bool(res) and "error" not in res

    def add(system, task, inp, wall=None, cpu=None, rss=None, target="", note="", res=None):
        if res is not None and res.get("other_load", 0.0) > 0.25:
            note += f" [contended: other processes used {res['other_load']:.1f} CPUs meanwhile]"
        rows.append([system, task, inp, fmt_s(wall), fmt_s(cpu), fmt_mb(rss), target, note])

    def failed(system, task, inp, res):
        add(system, task, inp, note=f"FAILED: {res['error']}")

    # --- ours from rows
    cold, warm, oc = R.get("ours_rows_cold"), R.get("ours_rows_warm"), R.get("ours_counts")
    if ok(cold):
        met = cold["wall"] <= TARGETS["rows_wall"] and cold["proc_rss_mb"] <= TARGETS["rows_rss"]
        same = (oc or {}).get("data_sha256") == cold["data_sha256"]
        add("OpenArena", "rows -> leaderboard (read parquet, aggregate, BT fit, sandwich CIs): first run in a fresh process", n_rows,
            cold["wall"], cold["cpu"], cold["proc_rss_mb"], f"<= {TARGETS['rows_wall']} s, <= {TARGETS['rows_rss']:.0f} MB: {verdict(met)}",
            f"read {cold['read_s']:.3f} s + leaderboard {cold['leaderboard_s']:.3f} s; reader: {cold['reader']}; "
            f"aggregated counts {'identical to' if same else 'DIFFER from'} the JSON's (sha256)", cold)
        add("OpenArena", "same, whole process: python start + imports + run + exit", n_rows,
            cold["proc_wall"], cold["proc_cpu"], cold["proc_rss_mb"], f"<= {TARGETS['rows_wall']} s: {verdict(cold['proc_wall'] <= TARGETS['rows_wall'])}",
            f"imports {cold['import_s']:.2f} s, RSS {cold['rss_after_import_mb']:.0f} MB after imports; "
            "scipy.stats, imported for one norm.ppf in ratings/intervals.py, is ~0.6 s of them", cold)
    elif cold:
        failed("OpenArena", "rows -> leaderboard", n_rows, cold)
    if ok(warm):
        add("OpenArena", "rows -> leaderboard, warm", n_rows, warm["wall"], warm["cpu"], warm["proc_rss_mb"], "",
            f"read {warm['read_s']:.3f} s + leaderboard {warm['leaderboard_s']:.3f} s (medians)", warm)

    # --- ours from counts
    if ok(oc):
        add("OpenArena", "counts -> BT fit + sandwich CIs (build_leaderboard)", counts_in, oc["sandwich_s"], oc["sandwich_cpu_s"], oc["proc_rss_mb"], "",
            f"{oc['fit_iters']} Newton iterations; loading the JSON {oc['load_s']:.3f} s ({oc['loader']}), not included", oc)
        add("OpenArena", f"counts -> bootstrap, {oc['rounds']} rounds (multinomial resampling, batched Newton)", counts_in,
            oc["bootstrap_s"], oc["bootstrap_cpu_s"], oc["proc_rss_mb"], f"<= {TARGETS['bootstrap']} s: {verdict(oc['bootstrap_s'] <= TARGETS['bootstrap'])}",
            f"2 worker threads: CPU/wall {oc['bootstrap_cpu_s'] / oc['bootstrap_s']:.2f} on {oc['cpu_count']} cores; "
            f"runs {', '.join(f'{w:.2f}' for w in oc['bootstrap_walls'])} s", oc)
    elif oc:
        failed("OpenArena", "counts", counts_in, oc)

    # --- FastChat
    ff, fb = R.get("fastchat_fit"), R.get("fastchat_boot")
    if ok(ff):
        note = "sklearn LogisticRegression(lbfgs, C=1.0) on a dense 3.34M x 129 float64 design; one fit"
        if ref:
            note += (f"; vs ours (both mean 1000): max |diff| {ref.max_diff(ff['ratings'], centre=True):.2f} pts, one Newton step "
                     f"from its ratings moves them {ref.newton_gap(ff['ratings']):.2f} pts: lbfgs stops at sklearn's tol=1e-4 "
                     "(the C=1 penalty alone is ~0.1 pts; bench/README.md)")
        if ff.get("warnings"):
            note += "; warnings: " + "; ".join(ff["warnings"])
        add("FastChat", "compute_elo_mle_with_tie (BT fit)", n_rows, ff["wall"], ff["cpu"], ff["proc_rss_mb"], "", note, ff)
    elif ff:
        failed("FastChat", "compute_elo_mle_with_tie", n_rows, ff)
    if ok(fb):
        add("FastChat", f"bootstrap, 100 rounds: EXTRAPOLATED = {fb['rounds']} measured rounds x {100 / fb['rounds']:g}", n_rows,
            fb["per_round"] * 100, fb["cpu"] * 100 / fb["rounds"], fb["proc_rss_mb"], "",
            f"get_bootstrap_result: {fb['rounds']} rounds took {fb['wall']:.1f} s, {fb['per_round']:.1f} s/round (row resample + refit)", fb)
    elif fb:
        failed("FastChat", "bootstrap", n_rows, fb)

    # --- arena-rank
    ad, at, ab = R.get("arena_default"), R.get("arena_tight"), R.get("arena_boot")
    if ok(ad):
        add("arena-rank", "PairDataset.from_pandas + BradleyTerry fit + sandwich (package defaults)", n_rows, ad["wall"], ad["cpu"], ad["proc_rss_mb"], "",
            f"from_pandas {ad['from_pandas_s']:.2f} s + fit/sandwich {ad['fit_sandwich_s']:.2f} s (medians), most of the fit is XLA compiling "
            f"its L-BFGS loop, redone on every fit (a new jit closure per call); first call {ad['cold_s']:.1f} s; "
            "from_pandas(reweighted=False): all weights 1, min_pair_count (set to 1) has no effect -> identical input", ad)
    elif ad:
        failed("arena-rank", "sandwich", n_rows, ad)
    if ok(at):
        o = at["options"]
        add("arena-rank", f"same, run to convergence: ftol={o.get('ftol'):g}, gtol={o.get('gtol'):g}", n_rows, at["wall"], at["cpu"], at["proc_rss_mb"], "",
            f"from_pandas {at['from_pandas_s']:.2f} s + fit/sandwich {at['fit_sandwich_s']:.2f} s; first call {at['cold_s']:.1f} s", at)
    elif at:
        failed("arena-rank", "converged", n_rows, at)
    if ok(ab):
        add("arena-rank", f"bootstrap, {ab['rounds']} rounds (compute_ratings_and_cis, n_jobs=-1)", "its PairDataset", ab["wall"], None, ab["proc_rss_mb"], "",
            f"timed once; mp.Pool on all cores, start method '{ab['start_method']}' (the default 'fork' deadlocked: JAX is multithreaded); "
            "every round recompiles its L-BFGS loop", None)
    elif ab:
        failed("arena-rank", "bootstrap", "its PairDataset", ab)

    # --- optional: choix, evalica
    for key, task in (
        ("choix", "ilsr_pairwise_dense(wins matrix built from the rows, ties 0.5 each way), tol 1e-10"),
        ("evalica", "bradley_terry(model_a, model_b, winners, tie_weight=0.5), tolerance 1e-10"),
    ):
        res = R.get(key)
        if not res:
            continue
        if "error" in res:
            failed(key, task, n_rows, res)
            continue
        note = f"fit incl. input conversion, parquet read excluded; import {res['import_s']:.2f} s"
        if ref:
            note += f"; vs ours: max |diff| {ref.max_diff(res['ratings']):.1e} pts"
        if "iterations" in res:
            note += f"; {res['iterations']} iterations"
        add(key, task, n_rows, res["wall"], res["cpu"], res["proc_rss_mb"], "", note, res)

    # --- agreement with arena-rank
    if ref and ok(ad):
        d_def = ref.max_diff({m: v["rating"] for m, v in ad["ratings"].items()})
        gap = ref.newton_gap({m: v["rating"] for m, v in ad["ratings"].items()})
        ours_gap = ref.newton_gap({m: v["rating"] for m, v in ref.ratings.items()})
        hw = ref.max_half_width_diff(ad["ratings"])
        tol = TARGETS["agreement"]
        if ok(at):
            d_tight = ref.max_diff({m: v["rating"] for m, v in at["ratings"].items()})
            target = f"<= {tol} pts: {verdict(d_tight <= tol)} converged, {verdict(d_def <= tol)} with defaults"
            first = f"converged: {d_tight:.1e} pts; "
        else:
            target, first = f"<= {tol} pts: {verdict(d_def <= tol)} with defaults", ""
        add("arena-rank vs ours", "max |rating difference|, both mean = 1000 (arena-rank has no anchor model)", "identical votes", target=target,
            note=f"{first}package defaults: {d_def:.3f} pts, because its L-BFGS stops on ftol=1e-9 (relative change of the mean loss) "
                 f"when one exact Newton step from its ratings still moves them {gap:.3f} pts (from ours: {ours_gap:.0e} pts). "
                 f"Sandwich half-widths: within {hw:.2f} pts (it adds hessian_reg = 1e-5 x N to the Hessian diagonal)")

    # --- speed ratios (ours warm median, and ours' cold first run for the conservative figure)
    if ok(warm) and ok(cold):
        if ok(ff):
            r_w, r_c = ff["wall"] / warm["wall"], ff["wall"] / cold["wall"]
            add("ratio", "FastChat BT fit / ours rows -> leaderboard", n_rows, target=f">= {TARGETS['vs_fastchat']:.0f}x: {verdict(min(r_w, r_c) >= TARGETS['vs_fastchat'])}",
                note=f"{ff['wall']:.1f} s / {warm['wall']:.3f} s = {r_w:,.0f}x (/ our cold first run {cold['wall']:.3f} s = {r_c:,.0f}x); "
                     "ours also reads the parquet and computes the CIs")
        if ok(ad):
            r_w, r_c = ad["wall"] / warm["wall"], ad["wall"] / cold["wall"]
            extra = f"; arena-rank run to convergence: {at['wall'] / warm['wall']:.0f}x" if ok(at) else ""
            add("ratio", "arena-rank (defaults) / ours, rows -> ratings + sandwich CIs", n_rows,
                target=f">= {TARGETS['vs_arena_rank']:.0f}x: {verdict(min(r_w, r_c) >= TARGETS['vs_arena_rank'])}",
                note=f"{ad['wall']:.2f} s / {warm['wall']:.3f} s = {r_w:.0f}x (/ our cold first run = {r_c:.0f}x){extra}")
    if ok(oc) and ok(ab):
        r = ab["wall"] / oc["bootstrap_s"]
        add("ratio", f"arena-rank / ours, bootstrap {ab['rounds']} rounds", "pair counts", target=f">= {TARGETS['vs_arena_rank']:.0f}x: {verdict(r >= TARGETS['vs_arena_rank'])}",
            note=f"{ab['wall']:.1f} s / {oc['bootstrap_s']:.2f} s = {r:,.0f}x")
    if ok(oc) and ok(fb):
        r = fb["per_round"] * 100 / oc["bootstrap_s"]
        add("ratio", "FastChat (extrapolated) / ours, bootstrap 100 rounds", "", note=f"{fb['per_round'] * 100:,.0f} s / {oc['bootstrap_s']:.2f} s = {r:,.0f}x")
    return rows


def versions_line(R: dict) -> list[str]:
    seen: dict[str, dict] = {}
    for key, label in (("ours_rows_cold", "ours"), ("fastchat_fit", "FastChat venv"), ("arena_default", "arena-rank venv"),
                       ("choix", "choix venv"), ("evalica", "evalica venv")):
        v = R.get(key, {}).get("versions")
        if v:
            seen[label] = v
    return ["versions: " + "; ".join(f"{label}: " + ", ".join(f"{k} {v}" for k, v in vs.items()) for label, vs in seen.items())]


def main() -> None:
    global QUIET_WAIT
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="leaderbot pair-count JSON (default: %(default)s)")
    ap.add_argument("--skip", default="", help="comma-separated: fastchat, arena-rank, choix, evalica")
    ap.add_argument("--fastchat-rounds", type=int, default=2, help="FastChat bootstrap rounds actually run (then x 100/R)")
    ap.add_argument("--arena-rank-rounds", type=int, default=100, help="arena-rank bootstrap rounds")
    ap.add_argument("--json-out", type=Path, default=WORK / "ratings-results.json")
    ap.add_argument("--quiet-wait", type=float, default=QUIET_WAIT,
                    help="before each measurement wait up to this many seconds for other processes to go quiet (0: don't)")
    args = ap.parse_args()
    QUIET_WAIT = args.quiet_wait
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {"fastchat", "arena-rank", "choix", "evalica"}
    if unknown:
        ap.error(f"unknown --skip value(s): {', '.join(sorted(unknown))}")
    if not args.data.exists():
        ap.error(f"{args.data} not found (set OPENARENA_SHARED or pass --data)")

    load_before = os.getloadavg()
    WORK.mkdir(parents=True, exist_ok=True)
    stamp = ensure_parquet(args.data)
    pq_path = str(PARQUET)

    venvs: dict[str, tuple[Path | None, str]] = {}
    if "fastchat" not in skip:
        venvs["fastchat"] = ensure_venv("fastchat")
    if "arena-rank" not in skip:
        venvs["arena-rank"] = ensure_venv("arena-rank")
    if not {"choix", "evalica"} <= skip:
        venvs["choix-evalica"] = ensure_venv("choix-evalica")

    R: dict[str, dict] = {}
    ours_ratings = WORK / "ours_ratings.json"
    R["ours_counts"] = run_driver(sys.executable, "ours_counts.py", str(args.data), "--ratings-out", str(ours_ratings), timeout=600)
    R["ours_rows_cold"] = run_driver(sys.executable, "ours_rows.py", pq_path, "--mode", "cold", timeout=600)
    R["ours_rows_warm"] = run_driver(sys.executable, "ours_rows.py", pq_path, "--mode", "warm", timeout=600)

    def missing(name: str) -> dict:
        return {"error": f"venv-{name} not available: {venvs[name][1]}"}

    if "fastchat" in venvs:
        py = venvs["fastchat"][0]
        R["fastchat_fit"] = run_driver(py, "fastchat_elo.py", pq_path, "--task", "fit") if py else missing("fastchat")
        R["fastchat_boot"] = (run_driver(py, "fastchat_elo.py", pq_path, "--task", "bootstrap", "--rounds", str(args.fastchat_rounds))
                              if py else missing("fastchat"))
    if "arena-rank" in venvs:
        py = venvs["arena-rank"][0]
        R["arena_default"] = run_driver(py, "arena_rank_bt.py", pq_path, "--task", "sandwich") if py else missing("arena-rank")
        if py:
            R["arena_tight"] = run_driver(py, "arena_rank_bt.py", pq_path, "--task", "sandwich", "--ftol", "0", "--gtol", "1e-12")
            R["arena_boot"] = run_driver(py, "arena_rank_bt.py", pq_path, "--task", "bootstrap", "--rounds", str(args.arena_rank_rounds), timeout=3600)
    if "choix-evalica" in venvs:
        py = venvs["choix-evalica"][0]
        for system in ("choix", "evalica"):
            if system not in skip:
                R[system] = run_driver(py, "choix_evalica_bt.py", pq_path, "--system", system) if py else missing("choix-evalica")

    ref = None
    if ours_ratings.exists() and "error" not in R["ours_counts"]:
        ref = Reference(args.data, ours_ratings)
    rows = build_rows(R, ref)
    header = machine_header(args, stamp, load_before) + versions_line(R)
    args.json_out.write_text(json.dumps({"header": header, "results": R}, indent=1, default=float))
    print_table(header, rows)


if __name__ == "__main__":
    main()
