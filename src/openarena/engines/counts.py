"""From the engines' grouped counts to :class:`~openarena.data.battles.PairCounts`.

The engines return, per file, votes grouped by (model_a, model_b, winner[, flags]) as a pandas
DataFrame with the columns of :data:`openarena.engines.plan.GROUP_COLUMNS`. Here the groups
of all files are checked (the same checks as the row readers: winner labels, empty names,
self-battles, missing flag values), the row filters are applied in FastChat's order
(dates -> anony -> dedup, each recorded as a FilterStep) and the kept groups are aggregated
with :func:`openarena.data.battles.aggregate` weighted by their counts, so the result is the
PairCounts the in-memory path gives for the same rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from openarena.data.battles import BattleTable, FilterStep, PairCounts, aggregate
from openarena.data.readers._common import WINNER_ALIASES
from openarena.data.schema import WINNERS
from openarena.errors import DataError

from openarena.engines.plan import RowFilters

_FLAG_TEXT = {
    "in_range": ("dates", "tstamp"),
    "anony": ("anony", "anony"),
    "dedup_sampled": ("dedup", "dedup_sampled"),
}


def _first_file(groups: pd.DataFrame, bad: np.ndarray) -> tuple[str, int]:
    """The file of the first bad group and the number of rows in all bad groups."""
    pos = int(np.flatnonzero(bad)[0])
    return str(groups["file"].iloc[pos]), int(groups["n"].to_numpy()[bad].sum())


def check_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """Normalise and check grouped counts: model keys stripped of surrounding white space,
    winner aliases ('both_bad') mapped, then refuse missing or empty model names, unknown
    winner labels and self-battles, naming the file and how many rows.
    Returns: the groups with clean labels (a new DataFrame). Raises: DataError."""
    g = groups.copy()
    for col in ("model_a", "model_b"):
        s = g[col]
        missing = s.isna().to_numpy()
        if missing.any():
            f, n = _first_file(g, missing)
            raise DataError(f"missing model name ({n} row(s) like this)", f, field=col, expected="a non-empty model key")
        s = s.astype(str).str.strip()
        empty = (s == "").to_numpy()
        if empty.any():
            f, n = _first_file(g, empty)
            raise DataError(f"empty model name ({n} row(s) like this)", f, field=col, expected="a non-empty model key")
        g[col] = s
    w = g["winner"].astype(object).where(g["winner"].notna(), None)
    w = w.map(lambda v: WINNER_ALIASES.get(v, v) if isinstance(v, str) else v)
    unknown = ~w.isin(list(WINNERS)).to_numpy(dtype=bool)
    if unknown.any():
        f, n = _first_file(g, unknown)
        label = w.to_numpy()[unknown][0]
        what = "missing winner" if label is None else f"unknown winner label {label!r}"
        raise DataError(f"{what} ({n} row(s) like this)", f, field="winner", expected="one of " + ", ".join(repr(x) for x in WINNERS + tuple(WINNER_ALIASES)))
    g["winner"] = w
    same = (g["model_a"] == g["model_b"]).to_numpy()
    if same.any():
        f, n = _first_file(g, same)
        raise DataError(f"model {g['model_a'].to_numpy()[same][0]!r} battles itself ({n} row(s) like this)", f, field="model_b", expected="model_b different from model_a")
    return g


def to_pair_counts(groups: pd.DataFrame, filters: RowFilters, source: str) -> PairCounts:
    """Apply ``filters`` to grouped counts and aggregate them to PairCounts.

    Parameters: groups, DataFrame with file, model_a, model_b, winner, the flag columns of
    ``filters.flags()`` and n (int, votes in the group); source, names the result.
    Returns: PairCounts (models sorted, one row per unordered pair) whose steps are
    'dates', 'anony', 'dedup' as asked for, with the votes each removed.
    Raises: DataError for bad labels (see :func:`check_groups`), a missing flag value, or no
    vote left.
    """
    g = check_groups(groups)
    n = g["n"].to_numpy(dtype=np.int64)
    keep = np.ones(len(g), dtype=bool)
    steps = []
    for col in ("in_range", "anony", "dedup_sampled"):
        if col not in filters.flags():
            continue
        name, field = _FLAG_TEXT[col]
        values = g[col]
        missing = values.isna().to_numpy()
        if missing.any():
            f, cnt = _first_file(g, missing)
            what = "missing tstamp" if col == "in_range" else f"missing {field} value"
            raise DataError(f"{what} ({cnt} row(s) like this)", f, field=field, expected="a value in every row" if col == "in_range" else "true or false")
        ok = values.fillna(False).to_numpy(dtype=bool)
        before = int(n[keep].sum())
        keep &= ok
        after = int(n[keep].sum())
        steps.append(FilterStep(name, float(before - after), float(after), _detail(col, filters)))
    if not keep.any():
        raise DataError("no vote is left after the row filters", source, expected="battles that pass " + ", ".join(s.name for s in steps))
    kept = g[keep]
    frame = pd.DataFrame(
        {
            "model_a": pd.Categorical(kept["model_a"]),
            "model_b": pd.Categorical(kept["model_b"]),
            "winner": pd.Categorical(kept["winner"], categories=list(WINNERS)),
        }
    )
    table = BattleTable(frame, source, steps, validate=False)
    return aggregate(table, weights=kept["n"].to_numpy(dtype=np.float64))


def _detail(col: str, filters: RowFilters) -> str:
    if col == "anony":
        return "kept anonymous battles (anony == true)"
    if col == "dedup_sampled":
        return "kept de-duplicated battles (dedup_tag.sampled == true)"
    from openarena.data.filters import _iso

    parts = []
    if filters.since is not None:
        parts.append(f"tstamp >= {_iso(filters.since)}")
    if filters.until is not None:
        parts.append(f"tstamp < {_iso(filters.until)}")
    return "kept " + " and ".join(parts)
