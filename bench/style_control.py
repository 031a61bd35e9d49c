"""Style-control benchmark: OpenArena's contextual Bradley-Terry (features + exact Newton fit +
sandwich, and the bootstrap) against FastChat's published method (dense duplicated design +
scikit-learn LogisticRegression) and arena-rank 0.1.1's ContextualBradleyTerry, on 1.8M simulated
battles whose true ratings and style coefficients are known.

Run by hand from the repository root::

    .venv/bin/python bench/style_control.py                 # everything: 5-15 min on 2 cores (longer while it waits for a quiet machine)
    .venv/bin/python bench/style_control.py --skip fastchat,arena-rank   # ours only (incl. the bootstrap), ~2 min

Data (written once to bench/_work/style_battles.parquet, truth in style_battles.parquet.json):
129 models with log-strengths theta ~ N(0, 0.5); 1,800,000 battles, the ordered pair uniform over
all i != j; per answer, tokens ~ Poisson(400 * L_model), headers / lists / bold ~ Poisson(per-model
rates); the covariates are FastChat's (f_A - f_B) / (f_A + f_B + 1), z-scored over the data;
winner = model_a with probability expit(theta_a - theta_b + z . beta), beta = LMArena's published
2024 values (length 0.249, headers 0.024, lists 0.031, bold 0.019); no ties. So the truth is
exactly the model every system fits (ties-as-half Bradley-Terry with covariates).

Every measurement runs in a fresh subprocess (drivers bench/_compare/style_*.py, each printing
one ``BENCH_JSON {...}`` line), with the venvs of bench/ratings.py (bench/_work/venv-*). Wall times
use time.perf_counter; peak RSS is the child's ru_maxrss (os.wait4). Results are also written to
bench/_work/style-results.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ratings as rb  # noqa: E402  (bench/ratings.py: venvs, subprocess runner, quiet-machine wait, formatting)

ROOT = rb.ROOT
WORK = rb.WORK
PARQUET = WORK / "style_battles.parquet"
VARIANT = WORK / "style_battles_length_spread.parquet"
POINTS = 400.0 / math.log(10.0)
STYLE = ("tokens", "headers", "lists", "bold")

#: the simulated arena; changing anything here rewrites the parquet
RECIPE = {
    "version": 1,
    "seed": 2024,
    "n_models": 129,
    "n_battles": 1_800_000,
    "theta_sd": 0.5,
    # per-model length factor L = exp(0.3 * (0.6 * theta / 0.5 + 0.8 * N(0, 1))): stronger models
    # write longer answers on average (correlation 0.6 on the log scale), so style control moves
    # ratings; tokens ~ Poisson(400 * L) (per_answer_log_sd = 0: no other length variation)
    "length": {"tokens_mean": 400, "log_sd": 0.3, "corr_with_theta": 0.6, "per_answer_log_sd": 0.0},
    # per-model Poisson rates of the markdown counts: mean * exp(N(0, 0.6))
    "markdown": {"headers": 1.5, "lists": 4.0, "bold": 3.0, "log_sd": 0.6},
    "beta": {"tokens": 0.249, "headers": 0.024, "lists": 0.031, "bold": 0.019},
    "ties": 0.0,
}

#: the second data set (shrinkage check only): answer lengths also vary within a model, as they do
#: between prompts in a real arena: tokens ~ Poisson(400 * L * exp(0.8 * N(0, 1) - 0.32)) per answer
VARIANT_RECIPE = {**RECIPE, "length": {**RECIPE["length"], "per_answer_log_sd": 0.8}}

TARGETS = {"ours_fit_sandwich": 10.0}  # s, 1.8M battles x 4 covariates, features + fit + sandwich


def log(msg: str) -> None:
    rb.log(msg)


# ---------------------------------------------------------------------------------------------
# the simulated battles


def simulate(R: dict) -> tuple["object", dict]:
    """The battles (a pandas DataFrame) and the truth, from a recipe (RECIPE, VARIANT_RECIPE)."""
    import pandas as pd
    from scipy.special import expit

    rng = np.random.default_rng(R["seed"])
    n, N = R["n_models"], R["n_battles"]
    theta = rng.normal(0.0, R["theta_sd"], n)
    L = R["length"]
    length = np.exp(L["log_sd"] * (L["corr_with_theta"] * theta / R["theta_sd"] + math.sqrt(1 - L["corr_with_theta"] ** 2) * rng.normal(size=n)))
    md = R["markdown"]
    rates = {"tokens": L["tokens_mean"] * length}
    for f in ("headers", "lists", "bold"):
        rates[f] = md[f] * np.exp(rng.normal(0.0, md["log_sd"], n))
    a = rng.integers(0, n, N)
    b = (a + rng.integers(1, n, N)) % n  # uniform over the ordered pairs with b != a
    cols, ratios = {}, []
    spread = L["per_answer_log_sd"]
    for f in STYLE:
        lam_a, lam_b = rates[f][a], rates[f][b]
        if f == "tokens" and spread > 0:  # mean-preserving lognormal factor per answer
            lam_a = lam_a * np.exp(spread * rng.normal(size=N) - spread**2 / 2)
            lam_b = lam_b * np.exp(spread * rng.normal(size=N) - spread**2 / 2)
        fa = rng.poisson(lam_a).astype(np.int32)
        fb = rng.poisson(lam_b).astype(np.int32)
        cols[f"{f}_a"], cols[f"{f}_b"] = fa, fb
        ratios.append((fa - fb) / (fa + fb + 1.0))
    X = np.column_stack(ratios)
    mean, sd = X.mean(axis=0), X.std(axis=0)
    Z = (X - mean) / sd
    beta = np.array([R["beta"][f] for f in STYLE])
    a_wins = rng.random(N) < expit(theta[a] - theta[b] + Z @ beta)
    names = np.array([f"model-{i:03d}" for i in range(n)], dtype=object)
    frame = pd.DataFrame(
        {
            "model_a": pd.Categorical.from_codes(a, names),
            "model_b": pd.Categorical.from_codes(b, names),
            "winner": pd.Categorical.from_codes(np.where(a_wins, 0, 1), ["model_a", "model_b"]),
            **cols,
        }
    )
    elo = POINTS * (theta - theta.mean()) + 1000.0
    truth = {
        "theta": {m: float(t) for m, t in zip(names, theta)},
        "rating_mean1000": {m: float(e) for m, e in zip(names, elo)},
        "beta": dict(R["beta"]),
        "covariate_mean": dict(zip(STYLE, map(float, mean))),
        "covariate_sd": dict(zip(STYLE, map(float, sd))),
        "length_factor": {m: float(x) for m, x in zip(names, length)},
        "share_model_a_wins": float(a_wins.mean()),
    }
    return frame, truth


def ensure_parquet(recipe: dict, path: Path) -> dict:
    """Write the battles once; reuse them while the recipe is unchanged. Returns the stamp (+ truth),
    which is also written next to the parquet (PATH.json)."""
    stamp_path = path.with_name(path.name + ".json")
    if path.exists() and stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if stamp.get("recipe") == recipe and stamp.get("bytes") == path.stat().st_size:
            return stamp
    import pyarrow as pa
    import pyarrow.parquet as pq

    log(f"simulating {recipe['n_battles']:,} battles -> {path.relative_to(ROOT)}")
    frame, truth = simulate(recipe)
    WORK.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    stamp = {"recipe": recipe, "rows": len(frame), "models": recipe["n_models"], "bytes": path.stat().st_size, "sha256": sha, "truth": truth}
    stamp_path.write_text(json.dumps(stamp, indent=1))
    return stamp


# ---------------------------------------------------------------------------------------------
# checking estimates against the likelihood


class Reference:
    """The contextual likelihood of a parquet's battles (our code), to check any estimate:
    ``newton_gap`` is one exact Newton step of the *unpenalised* log-likelihood from it (0 at
    the maximum-likelihood estimate); ``penalised_coef`` predicts arena-rank's optimum."""

    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        from openarena.data.battles import BattleTable
        from openarena.ratings.contextual import _ContextualProblem, fit_contextual_bt
        from openarena.ratings.covariates import contextual_data

        from openarena.analysis.leaderboard import build_leaderboard

        battles = BattleTable(pq.read_table(path).to_pandas(), source=str(path))
        self.data, _ = contextual_data(battles, "style")
        self.fit = fit_contextual_bt(self.data)
        t = build_leaderboard(battles, ci="none", anchor="mean").table  # no style control
        self.uncontrolled = dict(zip(t["model"], t["rating"]))
        # smallest curvature of the mean log-likelihood (reduced parameters): what a ridge on the
        # Hessian diagonal competes with
        self.min_curvature = float(np.linalg.eigvalsh(-self.fit.hessian / self.data.n)[0])
        self.ref = self.fit.ref
        self.prob = _ContextualProblem(self.data, self.ref, 0.0, 0.0)
        self.w = np.ones(self.data.n)

    def penalised_coef(self, reg: float) -> np.ndarray:
        """arena-rank's optimum of mean loss + 0.5 reg ||beta||^2 (ratings free), predicted from the
        MLE and its Hessian: (I + reg N)^-1 I beta_hat with I = the coefficients' profile
        information (exact for a quadratic log-likelihood)."""
        m1 = len(self.data.models) - 1
        V = np.linalg.inv(-self.fit.hessian)
        info = np.linalg.inv(V[m1:, m1:])
        return np.linalg.solve(info + reg * self.data.n * np.eye(len(info)), info @ self.fit.beta)

    def newton_gap(self, ratings: dict[str, float], coef: list[float]) -> tuple[float, float]:
        """(largest rating move in points, largest coefficient move) of one Newton step."""
        theta = np.array([ratings[m] for m in self.data.models]) / POINTS
        theta = theta - theta[self.ref]
        x = np.concatenate([np.delete(theta, self.ref), np.asarray(coef, dtype=float)])
        g, H = self.prob.grad_hess(x, self.w)
        step = np.linalg.solve(-H, g)
        m1 = len(self.data.models) - 1
        # a rating move, as the mean-1000 ratings see it (the reference model moves with the mean)
        full = np.concatenate([step[:m1][: self.ref], [0.0], step[:m1][self.ref :]])
        return float(np.abs(full - full.mean()).max() * POINTS), float(np.abs(step[m1:]).max())


# ---------------------------------------------------------------------------------------------
# the table


def centred(ratings: dict[str, float]) -> dict[str, float]:
    mu = float(np.mean(list(ratings.values())))
    return {m: v - mu + 1000.0 for m, v in ratings.items()}


def max_abs_diff(x: dict[str, float], y: dict[str, float]) -> float:
    x, y = centred(x), centred(y)
    return float(max(abs(x[m] - y[m]) for m in y))


def plain(ratings: dict) -> dict[str, float]:
    return {m: (v["rating"] if isinstance(v, dict) else v) for m, v in ratings.items()}


def build_rows(R: dict, truth: dict, ref: Reference | None, ref_variant: Reference | None = None) -> list[list[str]]:
    beta_true = np.array([truth["beta"][f] for f in STYLE])
    rows: list[list[str]] = []
    ours = R.get("ours_cold")
    se = np.array(ours["coef_se"]) if ok(ours) else None

    def coef_cells(res: dict | None, se_used: np.ndarray | None) -> list[str]:
        if not ok(res) or "coef" not in res:
            return ["-"] * len(STYLE)
        c = np.array(res["coef"])
        if se_used is None:
            return [f"{x:.4f}" for x in c]
        return [f"{x:.4f} ({(x - t) / s:+.1f})" for x, t, s in zip(c, beta_true, se_used)]

    def add(system, task, wall=None, cpu=None, rss=None, coefs=None, target="", note="", res=None):
        if res is not None and res.get("other_load", 0.0) > 0.25:
            note += f" [contended: other processes used {res['other_load']:.1f} CPUs meanwhile]"
        rows.append([system, task, rb.fmt_s(wall), rb.fmt_s(cpu), rb.fmt_mb(rss), *(coefs or ["-"] * len(STYLE)), target, note])

    def failed(system, task, res):
        add(system, task, note=f"FAILED: {res['error']}", res=res)

    def vs_truth_ratings(res: dict) -> str:
        r = plain(res["ratings"])
        d = max_abs_diff(r, truth["rating_mean1000"])
        return f"ratings vs truth: max |diff| {d:.2f} pts"

    add("truth", "simulated coefficients (logits per sd of the covariate)", coefs=[f"{b:.4f}" for b in beta_true],
        note="LMArena's published 2024 values; cells below: estimate (its error in ours' sandwich standard errors)")

    # --- ours
    warm, boot = R.get("ours_warm"), R.get("ours_boot")
    if ok(ours):
        z = (np.array(ours["coef"]) - beta_true) / se
        r = plain(ours["ratings"])
        hw = {m: v["half_width"] / 1.959964 for m, v in ours["ratings"].items()}
        zr = max(abs(centred(r)[m] - truth["rating_mean1000"][m]) / hw[m] for m in r)
        met = ours["wall"] <= TARGETS["ours_fit_sandwich"]
        gap = ref.newton_gap(r, ours["coef"]) if ref else None
        add("OpenArena", "build_leaderboard(control='style', ci='sandwich'): features + contextual fit + sandwich; first call in a fresh process",
            ours["wall"], ours["cpu"], ours["proc_rss_mb"], coef_cells(ours, se),
            f"<= {TARGETS['ours_fit_sandwich']:.0f} s: {rb.verdict(met)}",
            f"{ours['n_iter']} Newton iterations; coefficient errors {', '.join(f'{x:+.1f}' for x in z)} se (max |z| {np.abs(z).max():.1f}); "
            f"{vs_truth_ratings(ours)}, max |z| {zr:.1f} (ratings se = sandwich half-width / 1.96)"
            + (f"; one Newton step from it moves ratings {gap[0]:.0e} pts, coefficients {gap[1]:.0e}" if gap else "")
            + f"; sandwich se: {', '.join(f'{s:.4f}' for s in se)}; parquet read + validation {ours['read_s']:.2f} s, not included", ours)
        add("OpenArena", "same, whole process: python start + imports + read parquet + the call + exit",
            ours["proc_wall"], ours["proc_cpu"], ours["proc_rss_mb"], None, "",
            f"imports {ours['import_s']:.2f} s, read {ours['read_s']:.2f} s, RSS {ours['rss_after_read_mb']:.0f} MB after the read", ours)
    elif ours:
        failed("OpenArena", "fit + sandwich", ours)
    if ok(warm):
        p = warm["parts"]
        add("OpenArena", "same, warm (median of 3 after 1 warm-up)", warm["wall"], warm["cpu"], warm["proc_rss_mb"], None, "",
            f"components (medians): style features {p['features']:.2f} s + fit {p['fit']:.2f} s + sandwich {p['sandwich']:.2f} s; "
            f"runs {', '.join(f'{w:.2f}' for w in warm['walls'])} s", warm)
    elif warm:
        failed("OpenArena", "warm", warm)
    if ok(boot):
        bse = (np.array(boot["coef_q975"]) - np.array(boot["coef_q025"])) / (2 * 1.959964)
        extra = "" if boot["rounds"] == 100 else f" EXTRAPOLATED from {boot['rounds']} rounds"
        add("OpenArena", f"build_leaderboard(control='style', ci='bootstrap', rounds={boot['rounds']}){extra}: fit + {boot['rounds']} refits",
            boot["wall"] * 100 / boot["rounds"], boot["cpu"] * 100 / boot["rounds"], boot["proc_rss_mb"], None, "",
            f"timed once; multinomial row weights, warm-started Newton, {boot['cpu_count']} threads: CPU/wall {boot['cpu'] / boot['wall']:.2f}; "
            f"bootstrap se of the coefficients (95% interval / 3.92): {', '.join(f'{s:.4f}' for s in bse)}"
            + (f" (sandwich: {', '.join(f'{s:.4f}' for s in se)})" if se is not None else ""), boot)
    elif boot:
        failed("OpenArena", "bootstrap", boot)

    # --- FastChat's method
    ff, fb = R.get("fastchat_fit"), R.get("fastchat_boot")
    if ok(ff) and not ff.get("memory_error"):
        note = (f"design {ff['design_shape'][0]:,} x {ff['design_shape'][1]} float64 = {ff['design_gb']:.2f} GiB built in {ff['build_s']:.1f} s, "
                f"LogisticRegression.fit {ff['fit_s']:.1f} s ({ff['n_iter']} lbfgs iterations)")
        if ok(ours):
            note += f"; vs ours: coefficients max |diff| {np.abs(np.array(ff['coef']) - np.array(ours['coef'])).max():.4f}, ratings max |diff| {max_abs_diff(ff['ratings'], plain(ours['ratings'])):.2f} pts"
        if ref:
            g = ref.newton_gap(centred(ff["ratings"]), ff["coef"])
            note += (f"; one Newton step from it moves ratings {g[0]:.2f} pts, coefficients {g[1]:.1e}: lbfgs stops at sklearn's default tol=1e-4 "
                     "(refitting this design once with tol=1e-10: 0.07 pts from ours, the C=1 penalty; 0.001 pts with C=inf; bench/README.md)")
        note += f"; {vs_truth_ratings(ff)}"
        if ff.get("warnings"):
            note += "; warnings: " + "; ".join(ff["warnings"])
        add("FastChat method", "construct_style_matrices + fit_mle_elo (sklearn LogisticRegression, fit_intercept=False); one fit",
            ff["wall"], ff["cpu"], ff["proc_rss_mb"], coef_cells(ff, se), "", note, ff)
    elif ff:
        failed("FastChat method", "one fit", ff if "error" in ff else {"error": f"MemoryError at {ff.get('failed_stage')}"})
    if fb and fb.get("memory_error"):
        cap = fb["mem_cap_gb"]
        done = fb.get("rounds_done") or []
        gb = fb.get("design_gb", 0.0)
        msg = fb["error_text"].split(":", 1)[-1].split(" for an array")[0].strip()
        why = (f"MemoryError in {fb['failed_stage']} ({msg}); a round copies the {gb:.2f} GiB design twice (the "
               f"fancy-indexed halves, then their concatenation) while the original stays, and from round 2 FastChat's loop still holds "
               f"the previous round's copy: ~{3 * gb:.0f} GiB in round 1, ~{4 * gb:.0f} GiB from round 2, + the process")
        if done:
            per = float(np.mean([d["resample_s"] + d["fit_s"] for d in done]))
            add("FastChat method", f"bootstrap, 100 rounds: EXTRAPOLATED = {len(done)} completed round(s) x {100 / len(done):g}; "
                f"round {len(done) + 1} ran out of memory under a {cap:g} GiB address-space cap", per * 100, None, fb["proc_rss_mb"], None, "",
                f"{per:.1f} s/round (resample + copy {np.mean([d['resample_s'] for d in done]):.1f} s, refit {np.mean([d['fit_s'] for d in done]):.1f} s "
                f"in {np.mean([d['n_iter'] for d in done]):.0f} lbfgs iterations, "
                f"VmPeak after round 1 {done[0]['vm_peak_mb'] / 1024:.1f} GiB); {why}", fb)
        else:
            lower = f"; if it had the memory: at least 100 x one fit = {100 * ff['fit_s']:,.0f} s" if ok(ff) and "fit_s" in ff else ""
            add("FastChat method", f"bootstrap, {fb.get('rounds_asked', '?')} rounds under a {cap:g} GiB address-space cap: FAILED in round 1",
                None, None, fb["proc_rss_mb"], None, "", why + lower, fb)
    elif ok(fb):
        per = fb["per_round"]
        det = fb["rounds_done"]
        add("FastChat method", f"bootstrap, 100 rounds: EXTRAPOLATED = {fb['rounds']} measured rounds x {100 / fb['rounds']:g}",
            per * 100, None, fb["proc_rss_mb"], None, "",
            f"{per:.1f} s/round (resample + copy {np.mean([d['resample_s'] for d in det]):.1f} s, refit {np.mean([d['fit_s'] for d in det]):.1f} s); "
            f"cap {fb['mem_cap_gb']:g} GiB; VmPeak {fb['vm_peak_mb'] / 1024:.1f} GiB", fb)
    elif fb:
        failed("FastChat method", "bootstrap", fb)

    # --- arena-rank
    conv = R.get("arena_converged")
    for key, label in (("arena_default", "defaults (reg=1.0, ftol=gtol=1e-9)"), ("arena_tiny", "reg=1e-8, package tolerances"),
                       ("arena_converged", "reg=1e-8, run to convergence")):
        res = R.get(key)
        if not res:
            continue
        if not ok(res):
            failed("arena-rank", label, res)
            continue
        o = res["options"]
        if key == "arena_converged":
            label = f"reg={o['reg']:g}, ftol={o['ftol']:g}, gtol={o['gtol']:g}, max_iter={o['max_iter']}, hessian_reg={o.get('hessian_reg', 1e-5):g}"
        note = (f"from_pandas {res['from_pandas_s']:.2f} s + fit/sandwich {res['fit_sandwich_s']:.2f} s (medians of {len(res['walls'])}); "
                f"first call {res['first_s']:.1f} s (XLA compile); {res['iterations']} L-BFGS iterations, final |grad| {res['grad_norm']:.1e}, "
                f"rel. loss change {res['rel_f_diff']:.1e}; style ratio columns {res['features_s']:.2f} s, not included")
        c = np.array(res["coef"])
        if key == "arena_default" and ok(ours):
            note += "; " + shrinkage_note(np.array(ours["coef"]), c, ref, res["options"].get("reg", 1.0), beta_true)
        if ok(ours):
            d = max_abs_diff(plain(res["ratings"]), plain(ours["ratings"]))
            note += f"; vs ours: ratings max |diff| {d:.3f} pts" if d >= 0.01 else f"; vs ours: ratings max |diff| {d:.1e} pts"
        if ref and key == "arena_default":
            note += (f" (vs an uncontrolled Bradley-Terry fit: {max_abs_diff(plain(res['ratings']), ref.uncontrolled):.2f} pts, i.e. the length "
                     "effect the shrunk coefficient leaves out stays in the ratings)")
        if ref:
            g = ref.newton_gap(centred(plain(res["ratings"])), res["coef"])
            note += f"; one Newton step from it moves ratings {g[0]:.1e} pts, coefficients {g[1]:.1e}"
        if key == "arena_tiny" and ok(ours):
            dse = np.array(res["coef_se"]) / np.array(ours["coef_se"]) - 1
            dhw = max(res["ratings"][m]["half_width"] / ours["ratings"][m]["half_width"] - 1 for m in ours["ratings"])
            note += (f"; coefficient se vs ours: {', '.join(f'{100 * x:+.1f}%' for x in dse)}, rating half-widths up to {100 * dhw:+.1f}% "
                     f"(ours' bootstrap agrees with ours' sandwich): its hessian_reg=1e-5 ridge on the mean-loss Hessian")
            if ref:
                note += f" competes with the flattest direction (length vs the model identities), curvature {ref.min_curvature:.1e}"
        add("arena-rank", f"ContextualPairDataset.from_pandas(reweighted=False) + ContextualBradleyTerry fit + sandwich, {label}",
            res["wall"], res["cpu"], res["proc_rss_mb"], coef_cells(res, se), "", note, res)

    # --- the second data set: lengths also vary within a model
    vo, va = R.get("variant_ours"), R.get("variant_arena_default")
    if ok(vo):
        vt = np.array([truth_variant_beta[f] for f in STYLE]) if (truth_variant_beta := R.get("_variant_truth_beta")) else beta_true
        vse = np.array(vo["coef_se"])
        cells = lambda res: [f"{x:.4f} ({(x - t) / s_:+.1f})" for x, t, s_ in zip(res["coef"], vt, vse)]  # noqa: E731
        add("OpenArena [data 2]", "same call on data set 2: answer lengths also vary within a model (x lognormal, sd 0.8 per answer)",
            vo["wall"], vo["cpu"], vo["proc_rss_mb"], cells(vo), "",
            f"{vo['n_iter']} Newton iterations; sandwich se {', '.join(f'{x:.4f}' for x in vse)} (z in these se); {vs_truth_ratings(vo)}", vo)
        if ok(va):
            add("arena-rank [data 2]", "ContextualBradleyTerry defaults (reg=1.0) on data set 2; first call (incl. XLA compile)", va["wall"], va["cpu"], va["proc_rss_mb"], cells(va), "",
                shrinkage_note(np.array(vo["coef"]), np.array(va["coef"]), ref_variant, va["options"].get("reg", 1.0), vt)
                + f"; {va['iterations']} L-BFGS iterations", va)

    # --- agreement
    if ok(ours) and ok(conv):
        dc = np.abs(np.array(conv["coef"]) - np.array(ours["coef"])).max()
        dr = max_abs_diff(plain(conv["ratings"]), plain(ours["ratings"]))
        dse = np.abs(np.array(conv["coef_se"]) / np.array(ours["coef_se"]) - 1).max()
        dhw = max(abs(conv["ratings"][m]["half_width"] - ours["ratings"][m]["half_width"]) for m in ours["ratings"])
        add("ours vs arena-rank", "converged arena-rank (reg=1e-8, hessian_reg tiny) vs ours (no penalty), same rows and likelihood", target="",
            note=f"max |coefficient diff| {dc:.1e}; max |rating diff| {dr:.1e} pts (both mean 1000); coefficient se within {100 * dse:.2g}% "
                 f"(its se from its own H^-1 G H^-1, hessian_reg={conv['options'].get('hessian_reg', 1e-5):g}); rating half-widths within {dhw:.3f} pts")
    # --- ratios
    if ok(ours):
        if ok(ff) and "fit_s" in ff:
            add("ratio", "FastChat method one fit (design + fit) / ours (first call)", note=f"{ff['wall']:.1f} s / {ours['wall']:.2f} s = {ff['wall'] / ours['wall']:.0f}x")
        ad = R.get("arena_default")
        if ok(ad):
            add("ratio", "arena-rank defaults (from_pandas + fit + sandwich) / ours (first call)",
                note=f"{ad['wall']:.1f} s / {ours['wall']:.2f} s = {ad['wall'] / ours['wall']:.1f}x" + (
                    f"; converged: {conv['wall'] / ours['wall']:.1f}x" if ok(conv) else ""))
    done = (fb or {}).get("rounds_done") or []
    if ok(boot) and done:
        per = float(np.mean([d["resample_s"] + d["fit_s"] for d in done]))
        ours100 = boot["wall"] * 100 / boot["rounds"]
        add("ratio", "FastChat method bootstrap (extrapolated from its completed rounds) / ours, 100 rounds",
            note=f"{per * 100:,.0f} s / {ours100:.0f} s = {per * 100 / ours100:.0f}x (and FastChat's needs ~{4 * fb.get('design_gb', 0):.0f} GiB + the process "
                 f"from round 2; ours {boot['proc_rss_mb'] / 1024:.1f} GB)")
    return rows


def shrinkage_note(mle: np.ndarray, pen: np.ndarray, ref: Reference | None, reg: float, truth: np.ndarray) -> str:
    """How much arena-rank's penalty shrinks each coefficient, measured and predicted."""
    note = (f"SHRINKAGE ours (MLE) / arena-rank: {', '.join(f'{x:.1f}x' for x in mle / pen)} "
            f"(truth / arena-rank: {', '.join(f'{x:.1f}x' for x in truth / pen)})")
    if ref is not None:
        pred = ref.penalised_coef(reg)
        note += f"; predicted from ours' Hessian: {', '.join(f'{x:.1f}x' for x in ref.fit.beta / pred)}"
    return note + f" (reg={reg:g} on the mean loss = a penalty of {reg:g} x N on the summed log-likelihood)"


def ok(res: dict | None) -> bool:
    return bool(res) and "error" not in res


def header_lines(stamp: dict, load_before: tuple, R: dict) -> list[str]:
    cpu = "unknown CPU"
    for ln in Path("/proc/cpuinfo").read_text().splitlines():
        if ln.startswith("model name"):
            cpu = ln.split(":", 1)[1].strip()
            break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src/openarena/ratings", "src/openarena/analysis"],
                           capture_output=True, text=True).stdout.strip()
    truth = stamp["truth"]
    seen = []
    for key, label in (("ours_cold", "ours"), ("fastchat_fit", "FastChat venv"), ("arena_default", "arena-rank venv")):
        v = R.get(key, {}).get("versions")
        if v:
            seen.append(f"{label}: " + ", ".join(f"{k} {x}" for k, x in v.items()))
    return [
        f"OpenArena style-control benchmark, {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}, openarena commit {commit}"
        + (" (src/openarena/ratings or analysis has uncommitted changes)" if dirty else ""),
        f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {cpu}, {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        f"load average (1 min) before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} (other work on the machine inflates wall times)",
        f"input: {stamp['rows']:,} simulated battles, {stamp['models']} models, 4 style covariates, no ties, written once to "
        f"bench/_work/style_battles.parquet ({stamp['bytes'] / 2**20:.1f} MB; seed {RECIPE['seed']}); model_a won {100 * truth['share_model_a_wins']:.1f}%",
        "wall s / cpu s: in-process, of the task named (the first call unless noted); peak RSS: ru_maxrss of the measuring subprocess "
        "(whole process); coefficient cells: estimate (error vs the truth in ours' sandwich standard errors)",
        "versions: " + "; ".join(seen),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip", default="", help="comma-separated: fastchat, fastchat-bootstrap, arena-rank, ours-bootstrap, variant "
                    "(data set 2, the shrinkage check)")
    ap.add_argument("--ours-rounds", type=int, default=100, help="our bootstrap rounds actually run (reported x 100/R)")
    ap.add_argument("--fastchat-rounds", type=int, default=2, help="FastChat-method bootstrap rounds actually run (then x 100/R)")
    ap.add_argument("--fastchat-mem-cap-gb", type=float, default=14.0,
                    help="RLIMIT_AS (address space) of the FastChat-method processes, GiB (default %(default)s; lowered to the "
                    "machine's MemAvailable - 2 GiB when that is less, so a shared machine never runs out)")
    ap.add_argument("--arena-repeats", type=int, default=1, help="arena-rank calls timed after the first (median)")
    ap.add_argument("--arena-converged", default="0,1e-10,20000,1e-10",
                    help="ftol,gtol,max_iter,hessian_reg of the converged arena-rank run (the agreement check)")
    ap.add_argument("--json-out", type=Path, default=WORK / "style-results.json")
    ap.add_argument("--table-only", action="store_true", help="measure nothing: print the table again from --json-out")
    ap.add_argument("--quiet-wait", type=float, default=rb.QUIET_WAIT,
                    help="before each measurement wait up to this many seconds for other processes to go quiet (0: don't)")
    args = ap.parse_args()
    rb.QUIET_WAIT = args.quiet_wait
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = skip - {"fastchat", "fastchat-bootstrap", "arena-rank", "ours-bootstrap", "variant"}
    if unknown:
        ap.error(f"unknown --skip value(s): {', '.join(sorted(unknown))}")

    cols = ["system", "task", "wall s", "cpu s", "peak RSS MB", *STYLE, "target", "note"]
    if args.table_only:
        saved = json.loads(args.json_out.read_text())
        R = saved["results"]
        ref = Reference(PARQUET)
        ref_v = Reference(VARIANT) if ok(R.get("variant_arena_default")) else None
        rb.print_table(saved["header"], build_rows(R, saved["truth"], ref, ref_v), cols, right={2, 3, 4})
        return

    load_before = os.getloadavg()
    stamp = ensure_parquet(RECIPE, PARQUET)
    pq_path = str(PARQUET)
    variant = "variant" not in skip
    stamp_v = ensure_parquet(VARIANT_RECIPE, VARIANT) if variant else None
    venvs = {}
    if "fastchat" not in skip:
        venvs["fastchat"] = rb.ensure_venv("fastchat")
    if "arena-rank" not in skip:
        venvs["arena-rank"] = rb.ensure_venv("arena-rank")

    R: dict[str, dict] = {}
    py = sys.executable
    R["ours_cold"] = rb.run_driver(py, "style_ours.py", pq_path, "--task", "sandwich", "--mode", "cold", timeout=600)
    R["ours_warm"] = rb.run_driver(py, "style_ours.py", pq_path, "--task", "sandwich", "--mode", "warm", timeout=900)
    if variant:
        R["variant_ours"] = rb.run_driver(py, "style_ours.py", str(VARIANT), "--task", "sandwich", "--mode", "cold", timeout=600)
    if "ours-bootstrap" not in skip:
        R["ours_boot"] = rb.run_driver(py, "style_ours.py", pq_path, "--task", "bootstrap", "--rounds", str(args.ours_rounds), timeout=3600)

    if "fastchat" in venvs:
        fpy, status = venvs["fastchat"]
        avail = next(int(ln.split()[1]) for ln in open("/proc/meminfo") if ln.startswith("MemAvailable")) / 2**20
        cap_gb = min(args.fastchat_mem_cap_gb, round(avail - 2.0, 1))
        if cap_gb < args.fastchat_mem_cap_gb:
            log(f"only {avail:.1f} GiB available: FastChat-method cap lowered to {cap_gb} GiB")
        cap = ["--mem-cap-gb", str(cap_gb)]
        if fpy is None:
            R["fastchat_fit"] = {"error": f"venv-fastchat not available: {status}"}
        else:
            R["fastchat_fit"] = rb.run_driver(fpy, "style_fastchat.py", pq_path, "--task", "fit", *cap, timeout=3600)
            if "fastchat-bootstrap" not in skip:
                fb = rb.run_driver(fpy, "style_fastchat.py", pq_path, "--task", "bootstrap", "--rounds", str(args.fastchat_rounds), *cap, timeout=3600)
                fb["rounds_asked"] = args.fastchat_rounds
                if fb.get("memory_error"):
                    fb.pop("error", None)  # a clean MemoryError is a result, not a driver failure
                R["fastchat_boot"] = fb
    if "arena-rank" in venvs:
        apy, status = venvs["arena-rank"]
        if apy is None:
            R["arena_default"] = {"error": f"venv-arena-rank not available: {status}"}
        else:
            reps = ["--repeats", str(args.arena_repeats)]
            ftol, gtol, max_iter, hreg = args.arena_converged.split(",")
            R["arena_default"] = rb.run_driver(apy, "style_arena_rank.py", pq_path, *reps, timeout=3600)
            R["arena_tiny"] = rb.run_driver(apy, "style_arena_rank.py", pq_path, "--reg", "1e-8", *reps, timeout=3600)
            R["arena_converged"] = rb.run_driver(apy, "style_arena_rank.py", pq_path, "--reg", "1e-8", "--ftol", ftol, "--gtol", gtol,
                                                 "--max-iter", max_iter, "--hessian-reg", hreg, *reps, timeout=3600)
            if variant:
                R["variant_arena_default"] = rb.run_driver(apy, "style_arena_rank.py", str(VARIANT), "--repeats", "0", timeout=3600)

    log("checking the estimates against the likelihood (one Newton step from each)")
    ref = Reference(PARQUET)
    ref_v = Reference(VARIANT) if variant and ok(R.get("variant_arena_default")) else None
    if stamp_v:
        # same seed: data set 2 has the same models, strengths and pairs; only the token counts differ
        assert stamp_v["truth"]["rating_mean1000"] == stamp["truth"]["rating_mean1000"]
        R["_variant_truth_beta"] = stamp_v["truth"]["beta"]
    rows = build_rows(R, stamp["truth"], ref, ref_v)
    header = header_lines(stamp, load_before, R)
    args.json_out.write_text(json.dumps({"header": header, "results": R, "truth": stamp["truth"], "recipe": RECIPE}, indent=1, default=float))
    rb.print_table(header, rows, cols, right={2, 3, 4})


if __name__ == "__main__":
    main()
