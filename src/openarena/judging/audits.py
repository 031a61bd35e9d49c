"""Judge audits: position bias, length bias and self-preference.

- Position bias (Zheng et al. 2023, section 3.3 and Table 2): each question is judged twice
  with the positions swapped. Read from the model's side, the two verdicts should agree.
  ``flip`` is the share of question pairs whose outcome (win / tie / loss) changes when the
  order is swapped; ``reversal`` the share where a win becomes a loss; ``first`` and
  ``second`` the shares where the judge prefers the same *position* in both orders (assistant
  A both times, or B both times) — the pairs that are inconsistent because of the position.
- Length bias: over the judged games with a decisive or tied verdict between answers of
  different length, the win rate of the longer answer (ties as half; 0.5 = no bias). Arena-Hard
  discusses it as verbosity bias (blog 2024-04-19, "Limitations"); style control corrects it.
- Self-preference: does a judge favour models of its own family? With several judges on the
  same models: for every model, the judge's win rate minus the mean of the other judges'; the
  self-preference of a judge is the mean of that difference over its own family's models minus
  the mean over the others (percentage points). With one judge only, the own-family and
  other-family mean win rates are reported, which confounds preference with quality (said so
  in the result). (Zheng et al. 2023, "self-enhancement bias"; Arena-Hard blog Table 3 compares
  GPT-4 and Claude judges the same way.)

Single grades (MT-Bench 1-10, arena-bench-v1): no position to swap, so position bias does not
apply. :func:`single_length_bias` compares the grades of answers to the *same* question (and
turn, by the same judge): over pairs of answers of different length and different grade, the
share where the longer answer got the higher grade (0.5 = no bias; Wilson interval), and the
mean within-question Spearman correlation of grade and length. :func:`single_self_preference`
is :func:`self_preference` with the mean grade in place of the win rate.

The pairwise functions take the game records of :func:`openarena.judging.pairwise.load_judgments`;
the single-grade ones the records of :func:`openarena.judging.single.load_single_judgments`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from openarena.errors import DataError
from openarena.judging.answer_records import Answer
from openarena.judging.parse import LABELS, label_outcome, swap_label

__all__ = ["LengthBias", "PositionBias", "SelfPreference", "SingleLengthBias", "length_bias", "model_family", "position_bias",
           "self_preference", "single_length_bias", "single_self_preference"]


def _judge_of(r: Mapping[str, Any]) -> str:
    j = r.get("judge")
    return str(j.get("model", "")) if isinstance(j, Mapping) else str(j or "")


def _pairs(records: Iterable[Mapping[str, Any]]) -> dict[tuple, dict[int, Mapping[str, Any]]]:
    groups: dict[tuple, dict[int, Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault((_judge_of(r), r["model"], r["baseline"], str(r["uid"])), {})[int(r["game"])] = r
    return groups


def _sign(label: str) -> int:
    return 1 if label in ("A>>B", "A>B") else -1 if label in ("B>A", "B>>A") else 0


def _wilson(k: float, n: int, level: float = 0.95) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


@dataclass
class PositionBias:
    """Position-bias audit.

    Attributes: pairs, question pairs with both orders parsed; flip, reversal, first, second,
    exact (same label from the model's side), shares in [0, 1]; flip_ci, a Wilson interval
    (95%) of ``flip``; by_judge, a DataFrame with the same shares per judge.
    """

    pairs: int
    flip: float
    reversal: float
    first: float
    second: float
    exact: float
    flip_ci: tuple[float, float]
    by_judge: pd.DataFrame


def position_bias(records: Iterable[Mapping[str, Any]]) -> PositionBias:
    """Share of verdicts that change when the answers' positions are swapped.

    Parameters: game records with game 1 (baseline as A) and game 2 (model as A).
    Returns: PositionBias (module docstring).
    Raises: DataError when no question has both games parsed.
    Source: Zheng et al. (2023), Judging LLM-as-a-Judge, Table 2 (consistency, biased toward
    first / second position).
    """
    rows = []
    for (judge, model, base, uid), games in _pairs(records).items():
        g1, g2 = games.get(1), games.get(2)
        if not g1 or not g2 or g1.get("label") not in LABELS or g2.get("label") not in LABELS:
            continue
        l1, l2 = g1["label"], g2["label"]  # from A's side; A = baseline in game 1, model in game 2
        m1, m2 = swap_label(l1), l2  # the model's side
        s1, s2 = _sign(m1), _sign(m2)
        rows.append({"judge": judge, "flip": s1 != s2, "reversal": s1 * s2 == -1,
                     "first": _sign(l1) == 1 and _sign(l2) == 1, "second": _sign(l1) == -1 and _sign(l2) == -1,
                     "exact": m1 == m2})
    if not rows:
        raise DataError("no question judged in both orders", expected="game records 1 and 2 with parsed verdicts")
    df = pd.DataFrame(rows)
    by = df.groupby("judge").agg(pairs=("flip", "size"), flip=("flip", "mean"), reversal=("reversal", "mean"),
                                 first=("first", "mean"), second=("second", "mean"), exact=("exact", "mean")).reset_index()
    n = len(df)
    return PositionBias(n, float(df["flip"].mean()), float(df["reversal"].mean()), float(df["first"].mean()),
                        float(df["second"].mean()), float(df["exact"].mean()), _wilson(float(df["flip"].sum()), n), by)


@dataclass
class LengthBias:
    """Length-bias audit: games (with answers of different length), longer_win_rate (ties as
    half), its Wilson interval (95%), ties (share), and by_judge (DataFrame)."""

    games: int
    longer_win_rate: float
    ci: tuple[float, float]
    ties: float
    by_judge: pd.DataFrame


def length_bias(records: Iterable[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Answer]], encoding: str = "o200k_base") -> LengthBias:
    """Win rate of the longer answer over judged games (each game once, "much better" not
    weighted).

    Parameters: records, game records; answers {model: {uid: Answer}} (token counts from
    their metadata or :func:`openarena.data.style.answer_style`).
    Returns: LengthBias.
    Raises: DataError when no game compares answers of different length, or an answer is
    missing.
    """
    tok: dict[tuple[str, str], int] = {}

    def tokens(model: str, uid: str) -> int:
        if (model, uid) not in tok:
            a = answers.get(model, {}).get(uid)
            if a is None:
                raise DataError(f"no answer of {model!r} to {uid!r}", field="answers", expected="answers of every judged model")
            tok[(model, uid)] = a.style(encoding)["tokens"]
        return tok[(model, uid)]

    rows = []
    for r in records:
        label = r.get("label")
        if label not in LABELS:
            continue
        uid = str(r["uid"])
        a_model = r.get("assistant_a") or (r["baseline"] if int(r["game"]) == 1 else r["model"])
        b_model = r.get("assistant_b") or (r["model"] if int(r["game"]) == 1 else r["baseline"])
        ta, tb = tokens(a_model, uid), tokens(b_model, uid)
        if ta == tb:
            continue
        score_a, _ = label_outcome(label, 1)
        rows.append({"judge": _judge_of(r), "longer": score_a if ta > tb else 1.0 - score_a, "tie": label == "A=B"})
    if not rows:
        raise DataError("no judged game between answers of different length", expected="parsed games and answers")
    df = pd.DataFrame(rows)
    by = df.groupby("judge").agg(games=("longer", "size"), longer_win_rate=("longer", "mean"), ties=("tie", "mean")).reset_index()
    n = len(df)
    return LengthBias(n, float(df["longer"].mean()), _wilson(float(df["longer"].sum()), n), float(df["tie"].mean()), by)


_FAMILIES = [
    (r"^(gpt|chatgpt|o1|o3|o4|text-davinci|davinci)", "openai"),
    (r"^claude", "anthropic"),
    (r"^(gemini|gemma|palm|bard|chat-bison)", "google"),
    (r"^(llama|meta-llama|codellama)", "meta"),
    (r"^(mistral|mixtral|codestral|ministral|magistral)", "mistral"),
    (r"^(qwen|qwq)", "alibaba"),
    (r"^deepseek", "deepseek"),
    (r"^(command|c4ai|aya)", "cohere"),
    (r"^yi-", "01-ai"),
    (r"^grok", "xai"),
    (r"^phi-", "microsoft"),
]


def model_family(name: str) -> str:
    """A model's family (maker) from its name: 'gpt-4-0314' -> 'openai', 'claude-3-opus' ->
    'anthropic', 'gemini-pro' -> 'google', ... (a path prefix 'org/' is dropped); unknown
    names -> the first dash-separated word. Prefer the registry's ``organization`` when known."""
    n = name.lower().split("/")[-1]
    for pat, fam in _FAMILIES:
        if re.match(pat, n):
            return fam
    return n.split("-")[0]


@dataclass
class SelfPreference:
    """Self-preference audit.

    Attributes: table, one row per judge: judge, family, own_models, other_models, own_score
    and other_score (mean win rate vs baseline, %, of the judge's own family / of the others),
    and when several judges rated the same models: own_boost and other_boost (mean of this
    judge's score minus the other judges' mean, percentage points) and self_preference
    (own_boost - other_boost); scores, models x judges (win rate %); multi_judge, whether the
    boosts could be computed; note, how to read the table.
    """

    table: pd.DataFrame
    scores: pd.DataFrame
    multi_judge: bool
    note: str


def self_preference(
    records: Iterable[Mapping[str, Any]],
    families: Mapping[str, str] | Callable[[str], str] | None = None,
    much_better_weight: int = 3,
) -> SelfPreference:
    """Judge family against the others.

    Parameters: records, game records of one or more judges; families, {model: family} or a
    function (default :func:`model_family`, applied to judge names too); much_better_weight,
    as in the battles (3).
    Returns: SelfPreference.
    Raises: DataError when there is no parsed game.
    """
    fam = (lambda m: families.get(m, model_family(m))) if isinstance(families, Mapping) else (families or model_family)
    rows = []
    for r in records:
        label = r.get("label")
        if label not in LABELS:
            continue
        mlabel = swap_label(label) if int(r["game"]) == 1 else label
        s, w = label_outcome(mlabel, much_better_weight)
        rows.append({"judge": _judge_of(r), "model": r["model"], "score": s, "w": w})
    if not rows:
        raise DataError("no parsed game", expected="game records with verdicts")
    df = pd.DataFrame(rows)
    df["sw"] = df["score"] * df["w"]
    g = df.groupby(["model", "judge"])[["sw", "w"]].sum()
    scores = (100 * g["sw"] / g["w"]).unstack("judge")
    return _preference(scores, fam, "win-rate points")


def _preference(scores: pd.DataFrame, fam: Callable[[str], str], unit: str) -> SelfPreference:
    """The self-preference table from a models x judges score matrix."""
    judges = list(scores.columns)
    multi = len(judges) > 1
    out = []
    for j in judges:
        jf = fam(j)
        col = scores[j].dropna()
        own = [m for m in col.index if fam(m) == jf]
        other = [m for m in col.index if fam(m) != jf]
        row: dict[str, Any] = {"judge": j, "family": jf, "own_models": len(own), "other_models": len(other),
                               "own_score": float(col[own].mean()) if own else np.nan,
                               "other_score": float(col[other].mean()) if other else np.nan}
        if multi:
            others = scores.drop(columns=[j]).mean(axis=1, skipna=True)
            delta = (scores[j] - others).dropna()
            o = [m for m in delta.index if fam(m) == jf]
            x = [m for m in delta.index if fam(m) != jf]
            row["own_boost"] = float(delta[o].mean()) if o else np.nan
            row["other_boost"] = float(delta[x].mean()) if x else np.nan
            row["self_preference"] = row["own_boost"] - row["other_boost"]
        out.append(row)
    note = (f"self_preference = (this judge minus the other judges) on its own family's models, minus the same on the "
            f"other models, in {unit}" if multi else
            "one judge only: own_score vs other_score mixes self-preference with the models' quality; judge the same "
            "models with a second judge to separate them")
    return SelfPreference(pd.DataFrame(out), scores, multi, note)


def _families(families: Mapping[str, str] | Callable[[str], str] | None) -> Callable[[str], str]:
    if isinstance(families, Mapping):
        return lambda m: families.get(m, model_family(m))
    return families or model_family


def single_self_preference(
    records: Iterable[Mapping[str, Any]],
    families: Mapping[str, str] | Callable[[str], str] | None = None,
) -> SelfPreference:
    """Judge family against the others, for single grades (1-10).

    Parameters: records of :func:`openarena.judging.single.load_single_judgments` (one or more
    judges); families, as :func:`self_preference`.
    Returns: SelfPreference whose scores are mean grades (1-10) per model and judge, own_score /
    other_score the mean grade of the judge's family's models / of the others, boosts in grade
    points (with several judges).
    Raises: DataError when no record has a grade.
    Source: Zheng et al. (2023), self-enhancement bias, applied to MT-Bench single grading.
    """
    rows = [{"judge": _judge_of(r), "model": r["model"], "score": float(r["score"])}
            for r in records if r.get("score") is not None]
    if not rows:
        raise DataError("no graded record", expected="single-grade records with a score")
    scores = pd.DataFrame(rows).groupby(["model", "judge"])["score"].mean().unstack("judge")
    return _preference(scores, _families(families), "grade points (1-10 scale)")


@dataclass
class SingleLengthBias:
    """Length-bias audit of single grades.

    Attributes: pairs, answer pairs to the same question (same turn and judge) with different
    lengths and different grades; longer_higher, the share where the longer answer got the
    higher grade (0.5 = no bias); ci, its Wilson interval (95%); questions, (judge, question,
    turn) groups with at least two graded answers; spearman, the mean within-question
    Spearman correlation of grade and length over those groups (nan when undefined);
    missing_answers, graded records left out because their answer was not given;
    by_judge, DataFrame (judge, pairs, longer_higher, spearman).
    """

    pairs: int
    longer_higher: float
    ci: tuple[float, float]
    questions: int
    spearman: float
    missing_answers: int
    by_judge: pd.DataFrame


def single_length_bias(
    records: Iterable[Mapping[str, Any]],
    answers: Mapping[str, Mapping[str, Answer]],
    encoding: str = "o200k_base",
) -> SingleLengthBias:
    """Do longer answers get higher grades than shorter answers to the same question?

    Parameters: records, single-grade records (uid, model, turn, score, judge); answers
    {model: {uid: Answer}} (the graded turn's text is measured in tokens with
    :func:`openarena.data.style.answer_style`).
    Returns: SingleLengthBias. Comparing within a question removes the question's difficulty
    (a hard question has low grades and, often, long answers).
    Raises: DataError when no two answers to one question can be compared.
    Source: verbosity bias, Zheng et al. (2023) section 3.3; the within-question pair rate is
    the single-grade analogue of :func:`length_bias`.
    """
    from scipy.stats import spearmanr

    from openarena.data.style import answer_style

    groups: dict[tuple[str, str, int], list[tuple[int, float]]] = {}
    missing = 0
    for r in records:
        if r.get("score") is None:
            continue
        uid, turn = str(r["uid"]), int(r.get("turn", 1))
        a = answers.get(r["model"], {}).get(uid)
        if a is None or len(a.turns) < turn:
            missing += 1
            continue
        tokens = int(answer_style(a.turns[turn - 1], encoding)["tokens"])
        groups.setdefault((_judge_of(r), uid, turn), []).append((tokens, float(r["score"])))
    rows, rhos = [], []
    for (judge, _uid, _turn), items in groups.items():
        if len(items) < 2:
            continue
        t = np.array([x[0] for x in items], float)
        g = np.array([x[1] for x in items], float)
        i, j = np.triu_indices(len(items), 1)
        keep = (t[i] != t[j]) & (g[i] != g[j])
        longer_higher = np.sign(t[i] - t[j]) == np.sign(g[i] - g[j])
        rows += [{"judge": judge, "longer_higher": bool(v)} for v in longer_higher[keep]]
        if len(set(t)) > 1 and len(set(g)) > 1:
            rhos.append({"judge": judge, "rho": float(spearmanr(t, g).statistic)})
    if not rows:
        raise DataError("no two answers to one question with different lengths and grades",
                        expected="grades of several models on the same questions, and their answers (--answers)")
    df = pd.DataFrame(rows)
    rho = pd.DataFrame(rhos, columns=["judge", "rho"])
    by = df.groupby("judge").agg(pairs=("longer_higher", "size"), longer_higher=("longer_higher", "mean")).reset_index()
    by["spearman"] = by["judge"].map(rho.groupby("judge")["rho"].mean())
    n = len(df)
    k = float(df["longer_higher"].sum())
    return SingleLengthBias(n, k / n, _wilson(k, n), sum(len(v) >= 2 for v in groups.values()),
                            float(rho["rho"].mean()) if len(rho) else math.nan, missing, by)
