"""Arena battles with prompts as router training data.

A battle (prompt, model_a, model_b, winner) says which of two models answered one prompt
better. RouteLLM trains its routers on such battles from Chatbot Arena, but a given strong/weak
pair (gpt-4-1106-preview vs Mixtral-8x7B) meets in few of them, so it groups the arena's models
into tiers by rating and treats every battle between a model of the strong tier and one of the
weak tier as a strong-vs-weak preference (RouteLLM, routellm/routers/similarity_weighted/
utils.py: ``compute_elo_mle_with_tie`` rates the models on the battles themselves,
``compute_tiers`` splits the rating-sorted models into 10 tiers minimising the summed
within-tier variance, ``preprocess_battles`` keeps the first turn of prompts of 16+ characters;
Ong et al. 2024, section 4 "data augmentation from arena battles"). This module does the same
with our own code:

- :func:`arena_battles`: a :class:`~openarena.data.battles.BattleTable` (clean_battle JSON or
  JSONL, the arena-human-preference 55k / 100k / 140k sets, the arena's own database, read by
  :func:`openarena.read`) -> :class:`ArenaBattles`, the first user turn of each battle as its
  prompt. Battles without a prompt or with one shorter than ``min_chars`` are dropped and
  counted.
- :func:`model_tiers`: ratings -> tiers (0 = best), RouteLLM's objective solved exactly by
  dynamic programming.
- :func:`battle_ratings`: Bradley-Terry arena scores of the battles themselves (ties and tie
  (bothbad) half a win each, as RouteLLM's ``compute_elo_mle_with_tie``), the default source of
  the tiers; a published leaderboard (:func:`read_ratings`) or explicit strong and weak model
  lists may be given instead.
- :meth:`ArenaBattles.pair_labels`: the strong-vs-weak labels (1 strong side won, 0 weak side
  won; ties by ``ties``); :meth:`ArenaBattles.group_pairs`: every battle as a comparison of two
  tiers (the full multi-model battle for ``sw_ranking`` and ``p2l``).

Ties, as RouteLLM: ``half`` (tie and tie (bothbad) count half a win for each side; its
similarity-weighted ranking), ``drop`` (its matrix factorisation trains on decisive battles
only) or ``weak`` (its BERT classifier reads P(tie) + P(weak wins) as "the weak model is good
enough", i.e. a tie needs no strong call). :data:`TIE_RULES` gives the default of each router.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable
from openarena.errors import DataError

#: RouteLLM's MIN_LEN: battles whose first turn is shorter (characters) are left out
MIN_PROMPT_CHARS = 16
#: RouteLLM's number of tiers
N_TIERS = 10
#: ties rule per router, as RouteLLM trains each (see the module docstring)
TIE_RULES = {"sw_ranking": "half", "p2l": "half", "mf": "drop", "classifier": "weak", "difficulty": "weak"}
TIES = ("half", "drop", "weak")
_WIN_A = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}


def _text(content) -> str | None:
    """The text of a message's content: a string, or a list of parts ({'type': 'text', 'text'})."""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple, np.ndarray)):
        parts = [p.get("text") if isinstance(p, Mapping) else p for p in content]
        parts = [p for p in parts if isinstance(p, str)]
        return "\n".join(parts) if parts else None
    return None


def first_user_turn(conversation) -> str | None:
    """The first user message of a conversation (list of {"role", "content"}), or None."""
    if not isinstance(conversation, (list, tuple, np.ndarray)):
        return None
    for msg in conversation:
        if isinstance(msg, Mapping) and msg.get("role") == "user":
            return _text(msg.get("content"))
    return None


def _prompt_cell(value) -> str | None:
    """A ``prompt`` cell: the 55k set's JSON list of the user turns (as text), a list, or text."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return _prompt_cell(value[0]) if len(value) else None
    if not isinstance(value, str):
        return None
    s = value.strip()
    if s.startswith("["):
        try:
            turns = json.loads(s)
        except json.JSONDecodeError:
            return value
        if isinstance(turns, list):
            return turns[0] if turns and isinstance(turns[0], str) else None
    return value


@dataclass(frozen=True)
class ArenaBattles:
    """Battles with their first-turn prompts.

    Attributes: prompts, list of n str; model_a, model_b, winner, ndarrays (n,) of str (winner
    in model_a / model_b / tie / tie (bothbad)); source; dropped, {'no prompt': k, 'short
    prompt': k} (what :func:`arena_battles` left out).
    """

    prompts: list[str]
    model_a: np.ndarray
    model_b: np.ndarray
    winner: np.ndarray
    source: str = ""
    dropped: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def models(self) -> list[str]:
        return sorted(set(self.model_a) | set(self.model_b))

    def table(self) -> BattleTable:
        """The battles as a BattleTable (model_a, model_b, winner)."""
        return BattleTable(pd.DataFrame({"model_a": self.model_a, "model_b": self.model_b, "winner": self.winner}), self.source)

    def pair_labels(self, strong_models: Iterable[str], weak_models: Iterable[str], ties: str = "half") -> tuple[list[str], np.ndarray]:
        """(prompts, labels) of the battles between a strong and a weak model, either side:
        label 1 where the strong model won, 0 where the weak one did, ties by ``ties`` (half:
        0.5; weak: 0; drop: left out).
        Raises: DataError for an unknown ties rule, overlapping sets, or no such battle."""
        if ties not in TIES:
            raise DataError(f"ties rule {ties!r}", self.source, field="ties", expected=", ".join(TIES))
        strong, weak = set(strong_models), set(weak_models)
        if strong & weak:
            raise DataError(f"models both strong and weak: {', '.join(sorted(strong & weak))}", self.source, field="strong/weak models", expected="two disjoint sets")
        a_strong = np.isin(self.model_a, list(strong)) & np.isin(self.model_b, list(weak))
        b_strong = np.isin(self.model_b, list(strong)) & np.isin(self.model_a, list(weak))
        keep = a_strong | b_strong
        win_a = np.array([_WIN_A[w] for w in self.winner]) if len(self) else np.zeros(0)
        y = np.where(a_strong, win_a, 1.0 - win_a)
        tie = np.isin(self.winner, ["tie", "tie (bothbad)"])
        if ties == "drop":
            keep &= ~tie
        elif ties == "weak":
            y = np.where(tie, 0.0, y)
        if not keep.any():
            raise DataError(f"no battle between the strong models ({', '.join(sorted(strong)) or 'none'}) and the weak ones ({', '.join(sorted(weak)) or 'none'})"
                            + (" that is not a tie" if ties == "drop" else ""), self.source, field="strong/weak models",
                            expected="models that meet in the battles")
        return [p for p, k in zip(self.prompts, keep) if k], y[keep]

    def group_pairs(self, groups: Mapping[str, object]) -> tuple[list[str], list, list, np.ndarray]:
        """Every battle as a comparison of the groups (e.g. tiers) of its two models: (prompts,
        group_a, group_b, y) with y = 1 / 0.5 / 0 (model_a won / tie or tie (bothbad) /
        model_b won); battles within one group or with an ungrouped model are left out."""
        ga = [groups.get(m) for m in self.model_a]
        gb = [groups.get(m) for m in self.model_b]
        keep = [a is not None and b is not None and a != b for a, b in zip(ga, gb)]
        y = np.array([_WIN_A[w] for w, k in zip(self.winner, keep) if k])
        return ([p for p, k in zip(self.prompts, keep) if k], [a for a, k in zip(ga, keep) if k],
                [b for b, k in zip(gb, keep) if k], y)


def arena_battles(table: BattleTable, *, min_chars: int = MIN_PROMPT_CHARS) -> ArenaBattles:
    """The battles of ``table`` with the first user turn of each as its prompt: the ``prompt``
    column (arena-human-preference-55k: a JSON list of the user turns) or else
    ``conversation_a`` (clean_battle, the 100k / 140k sets, the arena's database; content a
    string or a list of text parts). Prompts shorter than ``min_chars`` characters (after
    stripping; RouteLLM: 16) are dropped and counted, as are battles without one.
    Raises: DataError when the table has neither column, or no battle keeps a prompt."""
    frame = table.frame
    if "prompt" in frame.columns:
        raw = [_prompt_cell(v) for v in frame["prompt"]]
    elif "conversation_a" in frame.columns:
        raw = [first_user_turn(c) for c in frame["conversation_a"]]
    else:
        raise DataError("the battles have no prompts", table.source, field="prompt",
                        expected="a prompt column (arena-human-preference-55k) or conversation_a (clean_battle, 140k, the arena database)")
    text = [p.strip() if isinstance(p, str) else None for p in raw]
    has = np.array([p is not None and p != "" for p in text], dtype=bool)
    long = np.array([p is not None and len(p) >= min_chars for p in text], dtype=bool)
    keep = has & long
    dropped = {"no prompt": int((~has).sum()), "short prompt": int((has & ~long).sum())}
    if not keep.any():
        raise DataError(f"no battle has a prompt of {min_chars}+ characters ({len(frame)} battles)", table.source, field="prompt",
                        expected="battles with their first user turn")
    return ArenaBattles([p for p, k in zip(text, keep) if k], frame["model_a"].to_numpy(dtype=str)[keep],
                        frame["model_b"].to_numpy(dtype=str)[keep], frame["winner"].astype(str).to_numpy()[keep],
                        table.source, dropped)


def battle_ratings(battles: ArenaBattles) -> dict[str, float]:
    """Bradley-Terry arena scores (Elo scale, 400 / ln 10 points per logit, mean 1000) of the
    models on the battles, ties and tie (bothbad) half a win each, with a light L2 prior
    (1e-3) so that models that never lost or never won still get a score (RouteLLM:
    ``compute_elo_mle_with_tie``, plain MLE)."""
    from openarena.ratings.bradley_terry import fit_bradley_terry

    fit = fit_bradley_terry(battles.table(), ties="half", prior=1e-3)
    return {m: 1000.0 + 400.0 / np.log(10) * float(t) for m, t in zip(fit.counts.models, fit.theta)}


def read_ratings(path: str | Path) -> dict[str, float]:
    """Arena scores from a leaderboard CSV: a model column (``model``, ``key`` or
    ``model_name``) and a score column (``rating``, ``arena_score``, ``score`` or ``elo``),
    e.g. thurstone_models' published_bt_20240813.csv.
    Raises: DataError for a missing file or columns, or a score that is not a number."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", str(path), expected="a leaderboard CSV with model and rating columns")
    try:
        frame = pd.read_csv(path)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise DataError(f"not a readable CSV ({type(err).__name__})", str(path), expected="a leaderboard CSV with model and rating columns") from None
    mcol = next((c for c in ("model", "key", "model_name") if c in frame.columns), None)
    scol = next((c for c in ("rating", "arena_score", "score", "elo") if c in frame.columns), None)
    if mcol is None or scol is None:
        raise DataError(f"columns {', '.join(map(str, frame.columns))}", str(path), field="model/rating",
                        expected="a model column (model, key, model_name) and a score column (rating, arena_score, score, elo)")
    score = pd.to_numeric(frame[scol], errors="coerce")
    if score.isna().any():
        row = int(np.flatnonzero(score.isna().to_numpy())[0])
        raise DataError(f"not a number: {frame[scol].iloc[row]!r}", str(path), row=row, field=scol, expected="an arena score")
    return dict(zip(frame[mcol].astype(str), score.astype(float)))


def model_tiers(ratings: Mapping[str, float], n_tiers: int = N_TIERS) -> dict[str, int]:
    """Split the models, sorted by rating (best first), into ``n_tiers`` contiguous tiers that
    minimise the sum of the within-tier variances (RouteLLM's ``compute_tiers`` objective),
    solved exactly by dynamic programming over the split points. Tier 0 holds the best models.
    Fewer models than tiers: one tier per model.
    Raises: DataError for n_tiers < 1 or no ratings."""
    if n_tiers < 1:
        raise DataError(f"{n_tiers} tiers", field="n_tiers", expected="at least 1")
    if not ratings:
        raise DataError("no model ratings", field="ratings", expected="arena scores of the models")
    names = sorted(ratings, key=lambda m: (-ratings[m], m))
    x = np.array([ratings[m] for m in names], dtype=float)
    n = len(x)
    k = min(n_tiers, n)
    c1, c2 = np.r_[0.0, np.cumsum(x)], np.r_[0.0, np.cumsum(x * x)]

    def var(i: int, j: int) -> float:  # variance of x[i:j]
        m = j - i
        mu = (c1[j] - c1[i]) / m
        return max((c2[j] - c2[i]) / m - mu * mu, 0.0)

    cost = np.full((k + 1, n + 1), np.inf)
    cut = np.zeros((k + 1, n + 1), dtype=int)
    cost[0, 0] = 0.0
    for t in range(1, k + 1):
        for j in range(t, n + 1):
            for i in range(t - 1, j):
                c = cost[t - 1, i] + var(i, j)
                if c < cost[t, j]:
                    cost[t, j], cut[t, j] = c, i
    tiers, j = {}, n
    for t in range(k, 0, -1):
        i = cut[t, j]
        for m in names[i:j]:
            tiers[m] = t - 1
        j = i
    return tiers


def _key(name: str) -> str:
    """'mistralai/Mixtral-8x7B-Instruct-v0.1' and 'mixtral-8x7b-instruct-v0.1' are one model."""
    return name.rsplit("/", 1)[-1].strip().lower()


def find_model(name: str, models: Iterable[str]) -> str | None:
    """The model of ``models`` that is ``name``, ignoring case and an 'org/' prefix; or None."""
    want = _key(name)
    for m in models:
        if _key(m) == want:
            return m
    return None


@dataclass(frozen=True)
class TierPair:
    """The strong and weak sides of arena battles: tiers (model -> tier, 0 = best), strong_tier,
    weak_tier, and how they were chosen (``how``, one line for people)."""

    tiers: dict
    strong_tier: int
    weak_tier: int
    how: str

    @property
    def strong_models(self) -> list[str]:
        return sorted(m for m, t in self.tiers.items() if t == self.strong_tier)

    @property
    def weak_models(self) -> list[str]:
        return sorted(m for m, t in self.tiers.items() if t == self.weak_tier)


def tier_pair(
    battles: ArenaBattles,
    *,
    strong: str | None = None,
    weak: str | None = None,
    strong_models: Iterable[str] | None = None,
    weak_models: Iterable[str] | None = None,
    ratings: Mapping[str, float] | None = None,
    n_tiers: int = N_TIERS,
    strong_tier: int = 0,
    weak_tier: int = 2,
) -> TierPair:
    """Which battles count as strong vs weak.

    Given ``strong_models`` and ``weak_models`` (lists of model keys): those, as two groups.
    Otherwise the models are split into ``n_tiers`` tiers (:func:`model_tiers`) by ``ratings``
    (e.g. :func:`read_ratings` of a published leaderboard) or, by default, by their
    Bradley-Terry scores on the battles (:func:`battle_ratings`, as RouteLLM); the strong side
    is the tier of the routed ``strong`` model when the battles have it (RouteLLM's sw_ranking
    looks up ``model2tier[strong_model]``), else ``strong_tier``; likewise the weak side
    (default tier 2, the third: our choice, a parameter).
    Raises: DataError when both sides fall in one tier, or a given list names no model of the
    battles."""
    if strong_models is not None or weak_models is not None:
        sm, wm = list(strong_models or []), list(weak_models or [])
        present = set(battles.models)
        for side, ms in (("strong", sm), ("weak", wm)):
            if not ms or not set(ms) & present:
                raise DataError(f"no {side} model of the battles among {', '.join(ms) or 'none'}", battles.source,
                                field=f"{side}_models", expected="model keys that appear in the battles")
        tiers = {**{m: 1 for m in wm}, **{m: 0 for m in sm}}
        return TierPair(tiers, 0, 1, f"given lists: {len(sm)} strong, {len(wm)} weak models")
    source = "the given ratings" if ratings is not None else "Bradley-Terry scores of the battles"
    scores = dict(ratings) if ratings is not None else battle_ratings(battles)
    scores = {m: s for m, s in scores.items() if m in set(battles.models)} or scores
    tiers = model_tiers(scores, n_tiers)
    k = max(tiers.values()) + 1
    s_found = find_model(strong, tiers) if strong else None
    w_found = find_model(weak, tiers) if weak else None
    st = tiers[s_found] if s_found else min(strong_tier, k - 1)
    wt = tiers[w_found] if w_found else min(weak_tier, k - 1)
    if st == wt:
        raise DataError(f"the strong and weak sides fall in one tier ({st})", battles.source, field="tiers",
                        expected="a strong tier above the weak one (more tiers, or explicit strong and weak model lists)")
    how = (f"{k} tiers by {source}; strong = tier {st}" + (f" (that of {s_found})" if s_found else "")
           + f", weak = tier {wt}" + (f" (that of {w_found})" if w_found else ""))
    return TierPair(tiers, st, wt, how)


def looks_like_battles(source: str) -> bool:
    """Whether ``source`` names battles rather than per-prompt quality: the arena database
    (``db`` or a URL such as sqlite:///arena.db), a dataset name or ``hf://`` URL (not an
    existing path), or a file whose first record has model_a and model_b (CSV header, JSON /
    JSONL record, Parquet schema) or the 55k set's winner_model_a. Never raises."""
    s = str(source)
    if s == "db" or "://" in s:
        return True
    path = Path(s)
    if not path.exists():
        return "/" not in s and "\\" not in s and not path.suffix  # a registry name
    if path.is_dir():
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        if head.startswith(b"PAR1"):
            import pyarrow.parquet as pq

            names = set(pq.read_schema(path).names)
        else:
            text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
            if text.startswith(("[", "{")):
                return '"model_a"' in text[:4096] and '"model_b"' in text[:4096]
            names = {c.strip().strip('"') for c in text.split("\n", 1)[0].split(",")}
    except (OSError, ValueError, ImportError):
        return False
    return {"model_a", "model_b"} <= names or "winner_model_a" in names
