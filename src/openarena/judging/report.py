"""``openarena judge show``: leaderboards of judge results.

Pairwise (Arena-Hard-Auto): the judge battles (model vs baseline, both orders, "much better"
as 3 wins) go through the ratings engine: a Bradley-Terry fit
(:func:`openarena.analysis.leaderboard.build_leaderboard`) anchored at baseline = 1000, its
bootstrap (battle rows resampled with replacement), and the score = the predicted win rate
against the baseline, ``1 / (1 + 10^((R_baseline - R_model) / 400))``, in percent, with the
bootstrap interval at the stated level. Arena-Hard v0.1 printed 95% intervals, v2.0 prints 90%
(show_result.py: quantiles 0.05 / 0.95); the default here is 90% and every table says which.
(With battles against a single baseline the BT fit reduces to each model's own win rate, ties
as half; with battles between several models it pools them, as Arena-Hard v0.1 did.)

Style control (Arena-Hard v2.0 show_result.py ``print_leaderboard_with_style_features``):
covariates of each battle, model answer vs baseline answer: length ``(t_m - t_b) / (t_m +
t_b)`` with t the answer's tokens, and the markdown *density* of headers, lists and bold,
``d = count / tokens``, as ``(d_m - d_b) / (d_m + d_b + 1)``; z-scored over all battles; fitted
jointly with the model strengths by the contextual Bradley-Terry fit of the ratings engine
(:mod:`openarena.ratings.contextual`). As in Arena-Hard v2 the covariates are centred, so the
controlled scores compare models at the *average* style difference of the judged answers: with
a single judged model, control changes little; it levels models that differ in style. Style counts come from the answers' metadata or from
:func:`openarena.data.style.answer_style` (shared with the arena's style control).

Single grading (MT-Bench): :func:`mt_bench_summary`, the mean score per model, per turn and
per category (FastChat show_result.py ``display_result_single``), failed gradings left out
and counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.errors import ConvergenceError, DataError, OpenArenaError
from openarena.judging.answer_records import Answer
from openarena.judging.questions import Question

__all__ = [
    "DEFAULT_LEVEL",
    "MTBenchSummary",
    "PairwiseResult",
    "STYLE_CONTROLS",
    "add_style_features",
    "detect_baseline",
    "mt_bench_summary",
    "pairwise_report",
    "win_rate_from_ratings",
]

#: Interval level of ``judge show`` (Arena-Hard v2.0 prints 90% intervals).
DEFAULT_LEVEL = 0.90

#: Style control options -> covariates (columns added by :func:`add_style_features`).
STYLE_CONTROLS: dict[str, tuple[str, ...]] = {
    "length": ("length_ratio",),
    "markdown": ("header_density", "list_density", "bold_density"),
    "style": ("length_ratio", "header_density", "list_density", "bold_density"),
}


def win_rate_from_ratings(ratings: np.ndarray, baseline_rating: float | np.ndarray) -> np.ndarray:
    """Predicted win rate against the baseline from Elo-scale ratings:
    ``1 / (1 + 10^((R_b - R) / 400))`` (Bradley-Terry, ties as half; Arena-Hard v0.1
    ``predict_win_rate``). Shapes broadcast; returns fractions in [0, 1]."""
    return 1.0 / (1.0 + np.power(10.0, (np.asarray(baseline_rating, dtype=float) - np.asarray(ratings, dtype=float)) / 400.0))


def detect_baseline(battles: BattleTable) -> str | None:
    """The baseline of a judge run: the model that takes part in every battle; when two do (a
    run with one judged model), the one that is model_a in every battle (the judge battles'
    convention); else None."""
    f = battles.frame
    a, b = f["model_a"].astype(str), f["model_b"].astype(str)
    every = [m for m in battles.models if ((a == m) | (b == m)).all()]
    if len(every) > 1:
        every = [m for m in every if (a == m).all()]
    return every[0] if len(every) == 1 else None


def add_style_features(battles: BattleTable, answers: Mapping[str, Mapping[str, Answer]], encoding: str = "o200k_base") -> BattleTable:
    """Style columns of each battle from the two answers (model_a's and model_b's to question_id).

    Adds ``tokens_a/_b``, ``headers_a/_b``, ``lists_a/_b``, ``bold_a/_b`` (the shared style
    schema), Arena-Hard v2's ``length_ratio = (t_a - t_b) / (t_a + t_b)`` and the densities
    ``header_density_a/_b = headers / tokens`` (likewise lists, bold; 0 for an empty answer).
    Returns: a new BattleTable.
    Raises: DataError naming the first battle whose answer is missing.
    """
    f = battles.frame
    cache: dict[tuple[str, str], dict[str, int]] = {}

    def feats(model: str, uid: str, row: int) -> dict[str, int]:
        key = (model, uid)
        if key not in cache:
            ans = answers.get(model, {}).get(uid)
            if ans is None:
                raise DataError(f"no answer of {model!r} to question {uid!r} for style control", battles.source, row,
                                "question_id", "the answer files of every judged model and the baseline")
            cache[key] = ans.style(encoding)
        return cache[key]

    cols: dict[str, list[float]] = {c: [] for c in ("tokens_a", "tokens_b", "headers_a", "headers_b", "lists_a", "lists_b", "bold_a", "bold_b")}
    for i, (a, b, q) in enumerate(zip(f["model_a"].astype(str), f["model_b"].astype(str), f["question_id"].astype(str))):
        fa, fb = feats(a, q, i), feats(b, q, i)
        for k in ("tokens", "headers", "lists", "bold"):
            cols[f"{k}_a"].append(fa[k])
            cols[f"{k}_b"].append(fb[k])
    new = f.copy()
    for c, v in cols.items():
        new[c] = np.asarray(v, dtype=np.int64)
    ta, tb = new["tokens_a"].to_numpy(float), new["tokens_b"].to_numpy(float)
    total = ta + tb
    new["length_ratio"] = np.divide(ta - tb, total, out=np.zeros_like(total), where=total > 0)
    for k, name in (("headers", "header"), ("lists", "list"), ("bold", "bold")):
        for s, t in (("a", ta), ("b", tb)):
            c = new[f"{k}_{s}"].to_numpy(float)
            new[f"{name}_density_{s}"] = np.divide(c, t, out=np.zeros_like(c), where=t > 0)
    return battles.with_frame(new)


@dataclass
class PairwiseResult:
    """A judge leaderboard.

    Attributes:
        table: one row per model (baseline included, score 50): model, score (win rate vs
            the baseline, %, from the BT ratings), lower, upper (bootstrap quantiles at
            ``level``), rating (Elo scale, baseline = 1000), rating_lower, rating_upper,
            battles (rows, "much better" counted 3 times), avg_tokens (when answers are given).
        baseline, level, rounds, seed.
        leaderboard: the ratings engine's Leaderboard behind ``table``.
        controlled: the same table with style control (None without ``control``, or when the
            controlled fit has no finite MLE: then ``notes`` says why), and coefficients: one
            row per covariate (coef in logits per sd, interval at level).
        categories: {category: table}, one leaderboard per category (when there are several).
        notes: what could not be computed and why (a bootstrap resample or a category without
            finite MLE: that table has no interval, or is missing).
    """

    table: pd.DataFrame
    baseline: str
    level: float
    rounds: int
    seed: int
    leaderboard: Any
    controlled: pd.DataFrame | None = None
    coefficients: pd.DataFrame | None = None
    categories: dict[str, pd.DataFrame] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def bootstrap_stats(self, name: str = "judge", controlled: bool = False) -> Any:
        """The bootstrap win rates (%) of every model as a
        :class:`~openarena.judging.quality.BenchmarkStats` (bounds at the 95% percentiles, as
        the Arena-Hard notebook's files), for :mod:`openarena.judging.quality`.
        Raises: DataError when the table has no bootstrap samples."""
        from openarena.judging.quality import BenchmarkStats

        t = self.controlled if controlled else self.table
        samples = t.attrs.get("samples") if t is not None else None
        if samples is None:
            raise DataError("no bootstrap samples in this result", field="rounds", expected="a bootstrap fit")
        models = list(t["model"])
        rows = [samples[m] for m in models]
        lo = np.array([np.percentile(r, 2.5) for r in rows])
        hi = np.array([np.percentile(r, 97.5) for r in rows])
        return BenchmarkStats(name, tuple(models), t["score"].to_numpy(float), tuple(rows), lo, hi)

    def bootstrap_records(self, controlled: bool = False) -> list[dict[str, Any]]:
        """The same as JSON-ready records ``{model, score, lower, upper, results}`` (the layout
        of the notebook's ``bootstrap_stats_*.jsonl``, readable by
        :func:`~openarena.judging.quality.read_bootstrap_stats`)."""
        st = self.bootstrap_stats(controlled=controlled)
        return [{"model": m, "score": float(sc), "lower": float(lo), "upper": float(hi), "results": [float(x) for x in r]}
                for m, sc, lo, hi, r in zip(st.models, st.score, st.lower, st.upper, st.samples)]


def _check_bootstrap(level: float, rounds: int, seed: int) -> None:
    """Refuse bootstrap settings numpy would reject with a bare ValueError (or accept and
    mislabel, as a 0% interval)."""
    if not (np.isfinite(level) and 0 < level < 1):
        raise OpenArenaError(f"interval level {level} must be strictly between 0 and 1 (e.g. 0.9)")
    if rounds < 0:
        raise OpenArenaError(f"bootstrap rounds {rounds} must be >= 0")
    if seed is not None and seed < 0:
        raise OpenArenaError(f"bootstrap seed {seed} must be a non-negative integer")


def _score_table(lb: Any, baseline: str, level: float) -> pd.DataFrame:
    t = lb.table.set_index("model")
    models = list(lb.counts.models)
    r_base = float(t.loc[baseline, "rating"])
    out = pd.DataFrame({"model": t.index, "rating": t["rating"].to_numpy(), "rating_lower": t["rating_q025"].to_numpy(),
                        "rating_upper": t["rating_q975"].to_numpy(), "battles": t["num_battles"].to_numpy()})
    out["score"] = 100 * win_rate_from_ratings(out["rating"].to_numpy(), r_base)
    samples = lb.intervals.samples if lb.intervals is not None else None
    if samples is not None:
        base_s = samples[:, models.index(baseline)]
        wr = 100 * win_rate_from_ratings(samples, base_s[:, None])
        lo, hi = np.quantile(wr, [0.5 - level / 2, 0.5 + level / 2], axis=0)
        pos = {m: i for i, m in enumerate(models)}
        out["lower"] = [lo[pos[m]] for m in out["model"]]
        out["upper"] = [hi[pos[m]] for m in out["model"]]
    else:
        out["lower"] = out["upper"] = np.nan
    out = out[["model", "score", "lower", "upper", "rating", "rating_lower", "rating_upper", "battles"]]
    out = out.sort_values(["score", "model"], ascending=[False, True], ignore_index=True)
    if samples is not None:
        out.attrs["samples"] = {m: wr[:, pos[m]] for m in models}
    return out


def pairwise_report(
    battles: BattleTable,
    *,
    baseline: str | None = None,
    level: float = DEFAULT_LEVEL,
    rounds: int = 100,
    seed: int = 0,
    answers: Mapping[str, Mapping[str, Answer]] | None = None,
    control: str | None = None,
    by_category: bool = True,
    n_jobs: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> PairwiseResult:
    """Bradley-Terry leaderboard of judge battles with win rates against the baseline.

    Parameters:
        battles: rows with question_id, model_a, model_b, winner (and category), e.g. from
            :func:`~openarena.judging.pairwise.judgments_to_battles` or any battle file.
        baseline: the model to score against (default: the model in every battle).
        level: interval coverage (default 0.90 as Arena-Hard v2.0); rounds, seed: bootstrap.
        answers: {model: {uid: Answer}} for average tokens and style control.
        control: None, 'length', 'markdown' or 'style' (both): style-controlled table too.
        by_category: one table per category when the battles have several categories.
        n_jobs, progress: bootstrap workers and progress callback (rounds done).
    Returns: PairwiseResult.
    Raises: DataError (no baseline, missing answers for style control); OpenArenaError for a
        level outside (0, 1) or a negative seed; ConvergenceError when the overall fit has no
        finite MLE (a model that wins or loses every battle).
    Source: arena-hard-auto show_result.py (v0.1 compute_mle_elo + get_win_rate_column;
    v2.0 bootstrap at 90% and style features); Li et al. (2024), arXiv:2406.11939.
    """
    from openarena.analysis.leaderboard import build_leaderboard

    _check_bootstrap(level, rounds, seed)
    baseline = baseline or detect_baseline(battles)
    if baseline is None:
        raise DataError("cannot tell the baseline: no model is in every battle", battles.source, field="baseline",
                        expected="--baseline MODEL")
    if baseline not in battles.models:
        raise DataError(f"baseline {baseline!r} is not in the battles", battles.source, field="baseline",
                        expected="one of " + ", ".join(battles.models))
    anchor = f"{baseline}=1000"
    notes: list[str] = []

    def fit(b: BattleTable, label: str, prog: Callable[[float], None] | None = None) -> Any:
        """Bootstrap fit; when a resample has no finite MLE (small samples), the point estimate
        without intervals, with a note; the point fit's own ConvergenceError propagates."""
        try:
            return build_leaderboard(b, ci="bootstrap", rounds=rounds, seed=seed, anchor=anchor, level=level, n_jobs=n_jobs, progress=prog)
        except ConvergenceError as e:
            lb = build_leaderboard(b, ci="none", anchor=anchor, level=level)
            notes.append(f"{label}: no interval ({e})")
            return lb

    lb = fit(battles, "leaderboard", progress)
    table = _score_table(lb, baseline, level)
    result = PairwiseResult(table, baseline, level, rounds, seed, lb, notes=notes)
    if answers is not None:
        avg = {}
        for m in table["model"]:
            toks = [a.style()["tokens"] for a in answers.get(m, {}).values()]
            avg[m] = float(np.mean(toks)) if toks else np.nan
        table["avg_tokens"] = table["model"].map(avg)
    if control:
        if control not in STYLE_CONTROLS:
            raise DataError(f"unknown style control {control!r}", field="control", expected=", ".join(STYLE_CONTROLS))
        if answers is None:
            raise DataError("style control needs the answers (their length and markdown)", battles.source, field="answers",
                            expected="--answers DIR")
        styled = add_style_features(battles, answers)
        try:
            clb = build_leaderboard(styled, ci="bootstrap", rounds=rounds, seed=seed, anchor=anchor, level=level,
                                    control=list(STYLE_CONTROLS[control]), n_jobs=n_jobs)
        except (ConvergenceError, OpenArenaError) as e:
            result.notes.append(f"style control ({control}) not fitted: {e}")
        else:
            result.controlled = _score_table(clb, baseline, level)
            result.coefficients = clb.coefficients
    if by_category and "category" in battles.frame.columns:
        cats = [c for c in pd.unique(battles.frame["category"].astype(str)) if c]
        if len(cats) > 1:
            for c in sorted(cats):
                sub = battles.with_frame(battles.frame[battles.frame["category"].astype(str) == c])
                try:
                    result.categories[c] = _score_table(fit(sub, f"category {c}"), baseline, level)
                except (ConvergenceError, OpenArenaError) as e:
                    result.notes.append(f"category {c}: {e}")
    return result
@dataclass
class MTBenchSummary:
    """MT-Bench averages.

    Attributes: overall, DataFrame per model (sorted by score): score (mean over both
    turns), turn_1, turn_2, n (gradings used), unparseable (gradings without a score), and
    lower / upper when bootstrapped (``level``); by_category, models x categories (mean score
    of both turns); level, rounds.
    """

    overall: pd.DataFrame
    by_category: pd.DataFrame
    level: float | None = None
    rounds: int = 0


def mt_bench_summary(
    records: Iterable[Mapping[str, Any]],
    questions: Iterable[Question] | None = None,
    *,
    rounds: int = 0,
    level: float = 0.95,
    seed: int = 0,
) -> MTBenchSummary:
    """Average scores per model, per turn and per category.

    Parameters: records (see :func:`load_single_judgments`); questions, to fill categories
    that records lack; rounds, bootstrap rounds over questions for an interval of the
    overall score (0 = none); level, its coverage; seed.
    Returns: MTBenchSummary. Gradings without a score (unparseable, FastChat's -1) are counted
    in ``unparseable`` and left out of every mean (FastChat: ``df[df.score != -1]``).
    Raises: DataError when no record has a score; OpenArenaError for a level outside (0, 1)
        (when bootstrapping), negative rounds or a negative seed.
    Source: FastChat fastchat/llm_judge/show_result.py ``display_result_single``.
    """
    _check_bootstrap(level if rounds > 0 else 0.5, rounds, seed)
    cats = {q.uid: q.category for q in questions} if questions is not None else {}
    df = pd.DataFrame([{"model": r["model"], "uid": str(r["uid"]), "turn": int(r["turn"]),
                        "score": r["score"], "category": r.get("category") or cats.get(str(r["uid"]), "")}
                       for r in records])
    if df.empty or df["score"].notna().sum() == 0:
        raise DataError("no scored grading", expected="single-grading records with scores")
    bad = df[df["score"].isna()].groupby("model").size()
    ok = df[df["score"].notna()].copy()
    ok["score"] = ok["score"].astype(float)
    overall = ok.groupby("model")["score"].agg(["mean", "size"]).rename(columns={"mean": "score", "size": "n"})
    per_turn = ok.pivot_table(index="model", columns="turn", values="score", aggfunc="mean")
    per_turn.columns = [f"turn_{c}" for c in per_turn.columns]
    overall = overall.join(per_turn)
    overall["unparseable"] = bad.reindex(overall.index).fillna(0).astype(int)
    if rounds > 0:
        rng = np.random.default_rng(seed)
        lo, hi = {}, {}
        for model, g in ok.groupby("model"):
            per_q = g.groupby("uid")["score"].agg(["sum", "size"])
            s, n = per_q["sum"].to_numpy(), per_q["size"].to_numpy()
            idx = rng.integers(0, len(s), size=(rounds, len(s)))
            boot = s[idx].sum(axis=1) / n[idx].sum(axis=1)
            lo[model], hi[model] = np.quantile(boot, [0.5 - level / 2, 0.5 + level / 2])
        overall["lower"] = pd.Series(lo)
        overall["upper"] = pd.Series(hi)
    overall = overall.sort_values("score", ascending=False)
    by_category = ok.pivot_table(index="model", columns="category", values="score", aggfunc="mean")
    by_category = by_category.reindex(overall.index)
    return MTBenchSummary(overall.reset_index(), by_category, level if rounds > 0 else None, rounds)
