"""One leaderboard per category (coding, math, hard prompts, languages, ...) or per value of a
column (e.g. topic clusters), each with its rank delta against the overall board.

As on the arena's category views, a model with at most ``min_votes_shown`` votes in the
category (300 by default) is fitted but not shown: it still anchors the others' ratings. A model
without a finite rating in a category (e.g. it never lost there) is left out of that category's
fit and reported in its provenance (filter step 'unrated').

Source: FastChat ``elo_analysis.py`` (--category) and the LMArena leaderboard's category tabs
(rank delta = overall rank (UB) - category rank (UB); positive = better in the category).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from openarena.analysis.leaderboard import Leaderboard, build_leaderboard
from openarena.data.battles import BattleTable, FilterStep
from openarena.data.categories import CATEGORY_COLUMNS, category_mask
from openarena.errors import DataError, OpenArenaError

MIN_VOTES_SHOWN = 300


@dataclass
class CategoryBoard:
    """A category's leaderboard: ``name``; ``leaderboard`` (all fitted models); ``table``, the
    shown rows with ``rank_delta`` (overall rank (UB) - category rank (UB)); ``n_battles``."""

    name: str
    leaderboard: Leaderboard
    table: pd.DataFrame
    n_battles: int


class CategoryBoards(dict):
    """{name: CategoryBoard} in order, plus ``skipped``: {name: reason} for the categories that
    'all' asked for but whose battles could not be fitted (too few models, ...)."""

    def __init__(self, boards: dict[str, CategoryBoard], skipped: dict[str, str] | None = None):
        super().__init__(boards)
        self.skipped = skipped or {}


def available_categories(battles: BattleTable) -> list[str]:
    """Category names that ``battles`` can be split by with the columns they carry."""
    frame = battles.frame
    names = ["full", "no_tie"]
    if "dedup_sampled" in frame.columns:
        names.append("dedup")
    for name, (col, _) in CATEGORY_COLUMNS.items():
        if col in frame.columns:
            names.append(name)
    if "language" in frame.columns:
        langs = frame["language"].astype(str).str.lower().value_counts()
        for lang in ("english", "chinese"):
            if langs.get(lang, 0) > 0:
                names.append(lang)
        if "category_hard_6" in frame.columns and langs.get("english", 0) > 0:
            names.append("hard_english_6")
    return names


def _subset(battles: BattleTable, mask: np.ndarray, name: str) -> BattleTable:
    step = FilterStep(f"category:{name}", int((~mask).sum()), int(mask.sum()))
    return battles.with_frame(battles.frame[mask], step)


def _board(name: str, sub: BattleTable, overall: pd.DataFrame | None, min_votes_shown: int, options: dict) -> CategoryBoard:
    options = {"drop_unrated": True, **options}
    lb = build_leaderboard(sub, **options)
    table = lb.table.copy()
    if overall is not None:
        ranks = overall.set_index("model")["rank_ub"]
        table["rank_delta"] = table["model"].map(ranks) - table["rank_ub"]
    shown = table[table["num_battles"] > min_votes_shown].reset_index(drop=True)
    lb = replace(lb, category=None if name == "full" else name, min_votes_shown=min_votes_shown)
    return CategoryBoard(name, lb, shown, len(sub))


def category_leaderboards(
    battles: BattleTable,
    names: list[str] | str,
    *,
    min_votes_shown: int = MIN_VOTES_SHOWN,
    progress=None,
    **options,
) -> CategoryBoards:
    """Leaderboards of several categories of ``battles``.

    Parameters: battles (rows with the category columns, see
    :func:`openarena.data.categories.category_mask`); names, category names or 'all' (every
    category the columns allow); min_votes_shown; options, passed to build_leaderboard
    (ci, anchor, control, ...). progress: called with 1 after each category.
    Returns: CategoryBoards {name: CategoryBoard}, 'full' first (the reference for the rank
    delta), with ``skipped`` for categories of 'all' that could not be fitted.
    Raises: DataError for an unknown category or a missing tag column; a category whose
    battles do not identify a leaderboard is reported with its name.
    """
    explicit = "all" if names in ("all", ["all"]) else list(names)
    if explicit == "all":
        names = available_categories(battles)
    names = list(dict.fromkeys(["full", *names]))
    options.setdefault("progress", None)
    overall = None
    out: dict[str, CategoryBoard] = {}
    skipped: dict[str, str] = {}  # name -> why it could not be fitted
    for name in names:
        mask = category_mask(battles, name)
        try:
            if mask.sum() == 0:
                raise DataError(f"category {name!r} has no battles", battles.source, field="category")
            board = _board(name, _subset(battles, mask, name), overall, min_votes_shown, options)
        except OpenArenaError as err:
            # with 'all', a category too small to fit is reported and skipped; a category the
            # user named (and 'full') must work
            if name == "full" or explicit != "all" and name in explicit:
                raise OpenArenaError(f"category {name!r}: {err}") from None
            skipped[name] = str(err)
            continue
        if name == "full":
            overall = board.leaderboard.table
        out[name] = board
        if progress:
            progress(1)
    return CategoryBoards(out, skipped=skipped)


def column_leaderboards(
    battles: BattleTable,
    column: str,
    *,
    min_votes_shown: int = 0,
    min_battles: int = 1,
    progress=None,
    **options,
) -> dict[str, CategoryBoard]:
    """One leaderboard per value of ``column`` (e.g. a topic cluster), plus 'full'.

    Values with fewer than ``min_battles`` battles are skipped. Returns {value: CategoryBoard}.
    Raises: DataError if the column is absent.
    """
    frame = battles.frame
    if column not in frame.columns:
        raise DataError(f"no column {column!r}", battles.source, field=column, expected="one of " + ", ".join(map(str, frame.columns)))
    options.setdefault("progress", None)
    full = _board("full", battles, None, min_votes_shown, options)
    out = {"full": full}
    values = frame[column].astype(str)
    for value, count in values.value_counts().items():
        if count < min_battles:
            continue
        mask = (values == value).to_numpy()
        try:
            out[str(value)] = _board(str(value), _subset(battles, mask, f"{column}={value}"), full.leaderboard.table, min_votes_shown, options)
        except OpenArenaError as err:
            raise OpenArenaError(f"{column}={value!r}: {err}") from None
        if progress:
            progress(1)
    return out


def summary_table(boards: dict[str, CategoryBoard], top: int = 1) -> pd.DataFrame:
    """One row per category: battles, models shown, and the leader(s) by rank (UB), then rating,
    so that a model with a handful of lucky votes does not lead a small category on its point
    estimate alone."""
    rows = []
    for name, b in boards.items():
        # b.table holds the shown models only (more than min_votes_shown votes): the leader is
        # one of them, never a model with a handful of votes
        leaders = b.table.sort_values(["rank_ub", "rating"], ascending=[True, False]).head(top)
        rows.append(
            {
                "category": name,
                "battles": b.n_battles,
                "models_shown": len(b.table),
                "leader": ", ".join(leaders["model"]),
                "leader_rating": float(leaders["rating"].iloc[0]) if len(leaders) else np.nan,
            }
        )
    return pd.DataFrame(rows)
