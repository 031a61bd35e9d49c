"""Benchmark quality: how well a benchmark separates models and agrees with a reference
leaderboard (Li et al. 2024, "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and
BenchBuilder Pipeline", arXiv:2406.11939, section 3; LMSYS blog 2024-04-19 "From Live Data to
High-Quality Benchmarks", Table 1; the statistics notebook of arena-hard-auto,
notebook/benchmark_for_benchmarks.ipynb).

Every benchmark is given as bootstrap samples of each model's score
(:class:`BenchmarkStats`; the notebook's ``bootstrap_stats_*.jsonl``: model, score, lower,
upper, results). Intervals are the stored ``lower`` / ``upper`` (2.5% / 97.5% percentiles in
those files) or percentiles of the samples at a chosen level (linear interpolation, as
``np.percentile``).

Overlap of two intervals: they share a point. Concretely, sorted by lower bound, the later one
starts strictly before the earlier one ends (the notebook's
``get_unique_overlapping_interval_pairs`` rule); a zero-width interval (an anchored model: the
baseline of Arena-Hard, mixtral = 1114 on the arena) overlaps every interval that contains it.

- Separability with confidence: the share of model pairs whose intervals do not overlap.
- Agreement with confidence (blog / paper definition): over the pairs the *reference*
  separates, +1 when the benchmark separates them in the same order, -1 in the opposite
  order, 0 when the benchmark cannot separate them; the mean. (``rule="notebook"``: the
  notebook's variant, +1 same order, +0.5 benchmark overlap, 0 opposite order.)
- Spearman correlation of the point scores with the reference's.
- Brier score: for each pair (a, b), the benchmark's forecast P(a < b) = Phi((mu_b - mu_a) /
  sqrt(var_a + var_b)) with mean and variance of the bootstrap samples, against the outcome
  1[reference rating a < reference rating b]; the mean squared error (the notebook's
  ``calculate_predictions_and_labels`` + ``brier_score_loss``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, spearmanr

from openarena.errors import DataError
from openarena.judging.store import read_jsonl

__all__ = [
    "Agreement",
    "BenchmarkStats",
    "Separability",
    "align",
    "benchmark_quality",
    "brier_score",
    "confidence_agreement",
    "load_name_map",
    "overlaps",
    "quality_table",
    "read_bootstrap_stats",
    "separability",
    "spearman",
]


@dataclass(frozen=True)
class BenchmarkStats:
    """A benchmark's scores with bootstrap samples.

    Attributes: name; models, n model names; score, float array (n,), the point scores;
    samples, list of n float arrays (the bootstrap scores of each model, any length >= 1);
    lower, upper, float arrays (n,) of stored interval bounds, or None.
    """

    name: str
    models: tuple[str, ...]
    score: np.ndarray
    samples: tuple[np.ndarray, ...]
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.models)
        if len(set(self.models)) != n:
            dup = next(m for m in self.models if self.models.count(m) > 1)
            raise DataError(f"model {dup!r} appears twice", self.name, field="model", expected="one row per model")
        if len(self.score) != n or len(self.samples) != n:
            raise DataError("scores, samples and models differ in length", self.name)

    @classmethod
    def from_samples(cls, name: str, models: Sequence[str], samples: np.ndarray | Sequence[Sequence[float]], score: Sequence[float] | None = None) -> BenchmarkStats:
        """From bootstrap samples given as one sequence per model (an (n, R) array or a list of n
        sequences of any length); ``score`` defaults to the sample means."""
        rows = tuple(np.asarray(s, dtype=float) for s in samples)
        sc = np.asarray(score, dtype=float) if score is not None else np.array([r.mean() for r in rows])
        return cls(name, tuple(models), sc, rows)

    def __len__(self) -> int:
        return len(self.models)

    def mean(self) -> np.ndarray:
        """Mean of each model's samples, shape (n,)."""
        return np.array([s.mean() for s in self.samples])

    def var(self) -> np.ndarray:
        """Variance (ddof=0, as np.var in the notebook) of each model's samples, shape (n,)."""
        return np.array([s.var() for s in self.samples])

    def intervals(self, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper), shape (n,) each: the stored bounds when ``level`` is None and they
        exist, else the sample percentiles 50 -/+ 50 * level (95% when level is None)."""
        if level is None and self.lower is not None and self.upper is not None:
            return self.lower, self.upper
        lv = 0.95 if level is None else level
        if not 0 < lv < 1:
            raise ValueError(f"level {lv} must be in (0, 1)")
        q = [50 - 50 * lv, 50 + 50 * lv]
        bounds = np.array([np.percentile(s, q) for s in self.samples])
        return bounds[:, 0], bounds[:, 1]

    def subset(self, models: Sequence[str]) -> BenchmarkStats:
        """The rows of ``models`` (in that order). Raises DataError for an unknown model."""
        pos = {m: i for i, m in enumerate(self.models)}
        missing = [m for m in models if m not in pos]
        if missing:
            raise DataError(f"model {missing[0]!r} not in {self.name}", self.name, field="model")
        idx = [pos[m] for m in models]
        return BenchmarkStats(self.name, tuple(models), self.score[idx], tuple(self.samples[i] for i in idx),
                              None if self.lower is None else self.lower[idx], None if self.upper is None else self.upper[idx])

    def renamed(self, names: Sequence[str]) -> BenchmarkStats:
        """The same rows under new model names."""
        return BenchmarkStats(self.name, tuple(names), self.score, self.samples, self.lower, self.upper)


def read_bootstrap_stats(path: str | os.PathLike[str], name: str | None = None) -> BenchmarkStats:
    """Read a ``bootstrap_stats_*.jsonl`` file: one record per model with ``model``, ``score``,
    ``results`` (the bootstrap scores) and optionally ``lower``, ``upper``.

    Parameters: path; name (default: the file stem without 'bootstrap_stats_').
    Returns: BenchmarkStats.
    Raises: DataError naming the row and field of a malformed record.
    """
    src = str(path)
    rows = read_jsonl(path)
    if not rows:
        raise DataError("no models", src, expected="one record per model")
    models, scores, samples, lo, hi = [], [], [], [], []
    has_bounds = all(r.get("lower") is not None and r.get("upper") is not None for r in rows)
    for i, r in enumerate(rows):
        for key in ("model", "score", "results"):
            if key not in r:
                raise DataError(f"no {key!r}", src, i, key, "model, score, results (bootstrap samples)")
        res = r["results"]
        if not isinstance(res, list) or not res:
            raise DataError("results is not a non-empty list", src, i, "results", "the bootstrap samples")
        try:
            arr = np.asarray(res, dtype=float)
            sc = float(r["score"])
        except (TypeError, ValueError):
            raise DataError("a score is not a number", src, i, "results", "numbers") from None
        if not np.isfinite(arr).all() or not np.isfinite(sc):
            raise DataError("a score is not finite", src, i, "results", "finite numbers")
        models.append(str(r["model"]))
        scores.append(sc)
        samples.append(arr)
        if has_bounds:
            lo.append(float(r["lower"]))
            hi.append(float(r["upper"]))
    stem = Path(path).stem
    nm = name or (stem[len("bootstrap_stats_"):] if stem.startswith("bootstrap_stats_") else stem)
    return BenchmarkStats(nm, tuple(models), np.array(scores), tuple(samples),
                          np.array(lo) if has_bounds else None, np.array(hi) if has_bounds else None)


def load_name_map(path: str | os.PathLike[str]) -> dict[str, str]:
    """A JSON object {name: name} (e.g. the notebook's arena_to_arena_hard.json).
    Raises: DataError when it is not an object of strings."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("file not found", str(path), expected="a JSON name map") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", str(path)) from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise DataError("not an object of names", str(path), expected='{"name": "other name", ...}')
    return data


def align(bench: BenchmarkStats, reference: BenchmarkStats, name_map: Mapping[str, str] | None = None) -> tuple[BenchmarkStats, BenchmarkStats]:
    """The models both benchmarks have, under the reference's names, in the reference's order.

    ``name_map`` may go either way (benchmark -> reference, or reference -> benchmark, as the
    notebook's arena_to_*.json); names are also matched case-insensitively (the notebook
    lower-cases Arena-Hard names).
    Returns: (bench subset renamed, reference subset).
    Raises: DataError when fewer than 2 models are shared.
    """
    ref_pos = {m: m for m in reference.models}
    ref_lower = {m.lower(): m for m in reference.models}
    fwd = dict(name_map or {})
    inv = {v: k for k, v in fwd.items()}
    matched: dict[str, str] = {}  # reference name -> bench name
    for b in bench.models:
        cands = [fwd.get(b), fwd.get(b.lower()), inv.get(b), inv.get(b.lower()), b]
        for c in cands:
            if c is None:
                continue
            r = ref_pos.get(c) or ref_lower.get(c.lower())
            if r is not None and r not in matched:
                matched[r] = b
                break
    shared = [m for m in reference.models if m in matched]
    if len(shared) < 2:
        raise DataError(f"{bench.name} and {reference.name} share {len(shared)} model(s)", bench.name, field="model",
                        expected="at least 2 shared models (give a name map)")
    b = bench.subset([matched[m] for m in shared]).renamed(shared)
    return b, reference.subset(shared)


def overlaps(lo_a: float, hi_a: float, lo_b: float, hi_b: float) -> bool:
    """Whether two intervals overlap (module docstring): the one that starts later starts
    strictly before the other ends; ties in the lower bound: the longer one counts as first."""
    if (lo_a, -hi_a) <= (lo_b, -hi_b):
        return lo_b < hi_a
    return lo_a < hi_b


@dataclass(frozen=True)
class Separability:
    """models; pairs (n choose 2); separated, pairs with non-overlapping intervals; share =
    separated / pairs; level (None = the stored bounds)."""

    models: int
    pairs: int
    separated: int
    share: float
    level: float | None


def separability(stats: BenchmarkStats, level: float | None = None) -> Separability:
    """Share of model pairs whose confidence intervals do not overlap.

    Parameters: stats; level, interval coverage (None: stored bounds, else 95% percentiles).
    Returns: Separability.
    Raises: DataError for fewer than 2 models.
    Source: Li et al. (2024), "separability with confidence"; notebook
    ``get_unique_overlapping_interval_pairs``.
    """
    if len(stats) < 2:
        raise DataError("separability needs at least 2 models", stats.name)
    lo, hi = stats.intervals(level)
    n = len(stats)
    sep = sum(not overlaps(lo[i], hi[i], lo[j], hi[j]) for i, j in combinations(range(n), 2))
    pairs = n * (n - 1) // 2
    return Separability(n, pairs, sep, sep / pairs, level)


@dataclass(frozen=True)
class Agreement:
    """Agreement with confidence: reference_separated, pairs the reference separates; agree,
    disagree (both separated, same / opposite order), undecided (the benchmark overlaps);
    score (rule 'paper': (agree - disagree) / reference_separated; 'notebook': (agree + 0.5
    undecided) / reference_separated); rule; level."""

    reference_separated: int
    agree: int
    disagree: int
    undecided: int
    score: float
    rule: str
    level: float | None


def confidence_agreement(bench: BenchmarkStats, reference: BenchmarkStats, level: float | None = None,
                         reference_level: float | None = None, rule: str = "paper") -> Agreement:
    """Agreement with confidence intervals of ``bench`` with ``reference`` (aligned: same models
    in the same order, see :func:`align`).

    Parameters: level, reference_level, interval coverages (None: stored bounds); rule,
    'paper' (+1 / -1 / 0, the blog's and paper's definition) or 'notebook' (+1 / 0 / +0.5).
    Returns: Agreement.
    Raises: DataError when the models differ or the reference separates no pair; ValueError
        for an unknown rule.
    """
    if rule not in ("paper", "notebook"):
        raise ValueError(f"unknown agreement rule {rule!r}")
    if bench.models != reference.models:
        raise DataError("benchmarks not aligned (use align())", bench.name, field="model")
    blo, bhi = bench.intervals(level)
    rlo, rhi = reference.intervals(reference_level)
    agree = disagree = undecided = total = 0
    for i, j in combinations(range(len(bench)), 2):
        if overlaps(rlo[i], rhi[i], rlo[j], rhi[j]):
            continue
        total += 1
        if overlaps(blo[i], bhi[i], blo[j], bhi[j]):
            undecided += 1
            continue
        same = (bench.score[i] < bench.score[j]) == (reference.score[i] < reference.score[j])
        agree += same
        disagree += not same
    if total == 0:
        raise DataError("the reference separates no pair of models", reference.name)
    score = (agree - disagree) / total if rule == "paper" else (agree + 0.5 * undecided) / total
    return Agreement(total, agree, disagree, undecided, score, rule, level)


def spearman(bench: BenchmarkStats, reference: BenchmarkStats) -> float:
    """Spearman rank correlation of the point scores of aligned benchmarks."""
    if bench.models != reference.models:
        raise DataError("benchmarks not aligned (use align())", bench.name, field="model")
    return float(spearmanr(bench.score, reference.score).statistic)


def brier_score(bench: BenchmarkStats, reference: BenchmarkStats) -> float:
    """Brier score of the benchmark's pairwise forecasts against the reference's order.

    For each pair (a, b) of models in sorted name order: forecast P(a < b) =
    Phi((mean_b - mean_a) / sqrt(var_a + var_b)) from the bootstrap samples; outcome
    1[reference score a < reference score b]. Returns the mean squared difference (lower is
    better; 0.25 for a coin). A pair with zero variance forecasts 0, 0.5 or 1.
    Source: notebook ``calculate_predictions_and_labels`` and sklearn ``brier_score_loss``.
    """
    if bench.models != reference.models:
        raise DataError("benchmarks not aligned (use align())", bench.name, field="model")
    mu, var = bench.mean(), bench.var()
    pos = {m: i for i, m in enumerate(bench.models)}
    errs = []
    for a, b in combinations(sorted(bench.models), 2):
        i, j = pos[a], pos[b]
        sd = float(np.sqrt(var[i] + var[j]))
        d = mu[i] - mu[j]
        p = float(norm.cdf(-d / sd)) if sd > 0 else (1.0 if d < 0 else 0.0 if d > 0 else 0.5)
        label = float(reference.score[i] < reference.score[j])
        errs.append((p - label) ** 2)
    return float(np.mean(errs))


def benchmark_quality(bench: BenchmarkStats, reference: BenchmarkStats, name_map: Mapping[str, str] | None = None,
                      level: float | None = None, reference_level: float | None = None) -> dict[str, Any]:
    """All metrics of one benchmark against the reference, on their shared models.

    Returns: dict with benchmark, models_all, separability_all (on all the benchmark's models),
    models (shared), separability, separated, pairs, agreement (paper rule), agree, disagree,
    undecided, reference_separated, agreement_notebook, spearman, brier.
    """
    sep_all = separability(bench, level)
    b, r = align(bench, reference, name_map)
    sep = separability(b, level)
    ag = confidence_agreement(b, r, level, reference_level, "paper")
    ag_nb = confidence_agreement(b, r, level, reference_level, "notebook")
    return {
        "benchmark": bench.name,
        "models_all": len(bench),
        "separability_all": sep_all.share,
        "models": len(b),
        "separability": sep.share,
        "separated": sep.separated,
        "pairs": sep.pairs,
        "agreement": ag.score,
        "agree": ag.agree,
        "disagree": ag.disagree,
        "undecided": ag.undecided,
        "reference_separated": ag.reference_separated,
        "agreement_notebook": ag_nb.score,
        "spearman": spearman(b, r),
        "brier": brier_score(b, r),
    }


def quality_table(benchmarks: Sequence[tuple[BenchmarkStats, Mapping[str, str] | None]], reference: BenchmarkStats,
                  level: float | None = None, reference_level: float | None = None) -> pd.DataFrame:
    """One row per benchmark (see :func:`benchmark_quality`), plus the reference's own
    separability on its models as the first row (agreement etc. NaN)."""
    ref_sep = separability(reference, reference_level)
    rows: list[dict[str, Any]] = [{"benchmark": f"{reference.name} (reference)", "models_all": len(reference),
                                   "separability_all": ref_sep.share, "models": len(reference),
                                   "separability": ref_sep.share, "separated": ref_sep.separated, "pairs": ref_sep.pairs}]
    rows += [benchmark_quality(b, reference, m, level, reference_level) for b, m in benchmarks]
    return pd.DataFrame(rows)
