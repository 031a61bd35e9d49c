"""The FastChat leaderboard filters, each recording what it removed.

Every filter takes a :class:`BattleTable` (or, where it makes sense, :class:`PairCounts`) and
returns the same type with one :class:`FilterStep` appended: ``name``, ``removed`` and
``remaining`` (rows for a BattleTable, votes for PairCounts) and a ``detail`` sentence. No row
disappears without being counted in a step.

Source: lm-sys/FastChat, fastchat/serve/monitor/clean_battle_data.py (model renaming by
``replace_model_name`` then ``exclude_model_names``) and fastchat/serve/monitor/elo_analysis.py
(``report_elo_analysis_results``: excluded models, then ``battles[battles["anony"]]``), and the
LMSYS leaderboard notebook for clean_battle_20240814_public.json (anony, then
``dedup_tag["sampled"]``). :func:`apply_filters` runs them in that order:

    aliases -> date range -> excluded models -> anony -> dedup -> minimum battles per model

Row-only filters (anony, dedup, date range) need one row per battle; asked of PairCounts they
raise DataError, because an aggregate has lost those fields (leaderbot's chatbot-arena-20240814
is already anony + dedup-sampled). Model filters (aliases, exclusion, minimum battles) work on
both forms.

Missing columns: a row filter whose column is absent (e.g. no ``anony`` in a CSV) raises
DataError naming the column, and so does a missing value in it (naming the row). With
``lenient=True`` an absent column skips the filter (the step says so, removed 0) and rows with a
missing value are removed and counted in the step's detail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Mapping

import numpy as np

from openarena.data.battles import BattleTable, FilterStep, PairCounts, from_matrix_counts
from openarena.data.schema import is_frame, row_of
from openarena.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

Data = BattleTable | PairCounts

_LIST_MAX = 12
_ORIGIN = {"dedup_sampled": " (read from FastChat's dedup_tag.sampled)", "tstamp": " (Unix seconds)"}


def _names(items: Iterable[str], limit: int = _LIST_MAX) -> str:
    items = list(items)
    text = ", ".join(items[:limit])
    if len(items) > limit:
        text += f", ... ({len(items) - limit} more)"
    return text


def _as_data(data: Data | pd.DataFrame) -> Data:
    if is_frame(data):
        return BattleTable(data)
    if isinstance(data, (BattleTable, PairCounts)):
        return data
    raise TypeError(f"expected BattleTable, PairCounts or DataFrame, got {type(data).__name__}")


def _models(data: Data) -> list[str]:
    """Sorted model keys present (fast on millions of rows, unlike iterating the strings)."""
    if isinstance(data, PairCounts):
        return list(data.models)
    import pandas as pd

    names: set[str] = set()
    for col in ("model_a", "model_b"):
        s = data.frame[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.cat.remove_unused_categories()
            names.update(str(c) for c in s.cat.categories)
        else:
            names.update(str(v) for v in pd.unique(s.dropna()))
    return sorted(names)


def _codes_in(s: pd.Series, index: pd.Index) -> np.ndarray:
    """Positions of the values of ``s`` in ``index`` (-1 for missing), without per-row Python."""
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        codes, uniques = s.cat.codes.to_numpy(), s.cat.categories
    else:
        codes, uniques = pd.factorize(s)
    pos = index.get_indexer(pd.Index([str(u) for u in uniques], dtype=object))
    return np.where(codes >= 0, pos[np.maximum(codes, 0)] if len(pos) else -1, -1)


def _same_model(frame: pd.DataFrame) -> np.ndarray:
    """Boolean array: model_a equals model_b."""
    import pandas as pd

    names = pd.Index(_models(BattleTable(frame, validate=False)), dtype=object)
    a = _codes_in(frame["model_a"], names)
    b = _codes_in(frame["model_b"], names)
    return (a == b) & (a >= 0)


def _size(data: Data) -> float:
    return float(len(data)) if isinstance(data, BattleTable) else data.total


def _keep_rows(table: BattleTable, keep: np.ndarray, name: str, detail: str) -> BattleTable:
    keep = np.asarray(keep, dtype=bool)
    removed = int((~keep).sum())
    frame = table.frame[keep] if removed else table.frame
    return table.with_frame(frame, FilterStep(name, float(removed), float(len(frame)), detail))


def _row_only(data: Data, name: str, column: str) -> None:
    if isinstance(data, PairCounts):
        raise DataError(
            f"the '{name}' filter needs one row per battle, but this source is aggregated per model pair "
            f"(its {column} information was fixed when it was built)",
            data.source,
            field=column,
            expected="a battle file (clean_battle JSON/JSONL, CSV, Parquet), or drop this filter "
            "(chatbot-arena-20240814 already holds only anony, dedup-sampled votes)",
        )


def _column(table: BattleTable, name: str, column: str, lenient: bool) -> pd.Series | None:
    if column in table.frame.columns:
        return table.frame[column]
    if lenient:
        return None
    raise DataError(
        f"the '{name}' filter needs column '{column}'{_ORIGIN.get(column, '')}, which this source does not have "
        f"(columns: {_names(map(str, table.frame.columns))})",
        table.source,
        field=column,
        expected=f"a source with a '{column}' column, or no '{name}' filter",
    )


def _refuse_missing(table: BattleTable, missing: np.ndarray, column: str, what: str, expected: str) -> None:
    """Raise DataError at the first row with a missing value of ``column`` (non-lenient filters)."""
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{what} ({int(missing.sum())} row(s) like this)",
            table.source,
            row=row_of(table.frame, pos),
            field=column,
            expected=f"{expected}, or a source without such rows",
        )


def _flag_filter(table: Data, name: str, column: str, what: str, lenient: bool) -> BattleTable:
    _row_only(table, name, column)
    col = _column(table, name, column, lenient)
    if col is None:
        return table.with_frame(table.frame, FilterStep(name, 0.0, float(len(table)), f"skipped: no '{column}' column (lenient)"))
    values = col.astype("boolean")
    missing = values.isna().to_numpy()
    if not lenient:
        _refuse_missing(table, missing, column, f"missing {column} value", "true or false")
    keep = values.fillna(False).to_numpy(dtype=bool)
    detail = f"kept {what}"
    if missing.any():
        detail += f"; {int(missing.sum())} row(s) without a value removed (lenient)"
    return _keep_rows(table, keep, name, detail)


def filter_anony(data: Data, *, lenient: bool = False) -> BattleTable:
    """Keep anonymous battles only (``anony`` true), as the official leaderboard does.

    Source: elo_analysis.py ``battles = battles[battles["anony"]]``.
    Raises: DataError for PairCounts, an absent ``anony`` column or a missing value (unless
    lenient; see the module docstring).
    """
    return _flag_filter(_as_data(data), "anony", "anony", "anonymous battles (anony == true)", lenient)


def filter_dedup(data: Data, *, lenient: bool = False) -> BattleTable:
    """Keep battles FastChat's de-duplication sampled (``dedup_sampled`` = dedup_tag.sampled).

    Source: the LMSYS notebook ``battles[battles["dedup_tag"].apply(lambda x: x.get("sampled",
    False))]`` (top 0.1% redundant prompts down-sampled; blog 2024-05-17 "category-hard").
    Raises: DataError for PairCounts, an absent column or a missing value (unless lenient).
    """
    return _flag_filter(_as_data(data), "dedup", "dedup_sampled", "de-duplicated battles (dedup_tag.sampled == true)", lenient)


def parse_time(value: str | float | int | dt.date | dt.datetime | pd.Timestamp, field: str = "time") -> float:
    """A time as Unix seconds.

    Accepts an ISO 8601 date or date/time string ('2024-08-14', '2024-08-12T09:20:51-07:00',
    '2024-08-14 00:00Z'), a date/datetime/Timestamp, or a number or numeric string (already
    Unix seconds).
    Times without a zone are read as UTC; a bare date means 00:00 UTC that day.
    Raises: DataError (field = ``field``) for anything else.
    """
    import pandas as pd

    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise DataError(f"{value!r} is not a date/time", field=field, expected="an ISO 8601 date or date/time, e.g. 2024-08-14 or 2024-08-12T09:20:51-07:00 (UTC when no zone)")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _iso(seconds: float) -> str:
    import pandas as pd

    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat().replace("+00:00", "Z")


def filter_dates(data: Data, since=None, until=None, *, lenient: bool = False) -> BattleTable:
    """Keep battles with ``since <= tstamp < until`` (either bound may be None).

    Bounds: see :func:`parse_time` (ISO strings, dates, datetimes or Unix seconds; naive
    values are UTC, so ``until='2024-08-14'`` keeps votes before 2024-08-14 00:00 UTC).
    Raises: DataError for PairCounts, an absent ``tstamp`` column, a missing tstamp (unless
    lenient), an unparsable bound or since >= until.
    """
    data = _as_data(data)
    _row_only(data, "dates", "tstamp")
    lo = parse_time(since, "since") if since is not None else None
    hi = parse_time(until, "until") if until is not None else None
    if lo is not None and hi is not None and lo >= hi:
        raise DataError(f"since ({_iso(lo)}) is not before until ({_iso(hi)})", data.source, field="since", expected="since < until")
    col = _column(data, "dates", "tstamp", lenient)
    if col is None:
        return data.with_frame(data.frame, FilterStep("dates", 0.0, float(len(data)), "skipped: no 'tstamp' column (lenient)"))
    from openarena.data.readers._common import to_unix_seconds

    t = to_unix_seconds(col, data.source, "tstamp").to_numpy(dtype=np.float64)
    missing = np.isnan(t)
    if not lenient:
        _refuse_missing(data, missing, "tstamp", "missing tstamp", "Unix seconds")
    keep = ~missing
    parts = []
    if lo is not None:
        keep &= t >= lo
        parts.append(f"tstamp >= {_iso(lo)}")
    if hi is not None:
        keep &= t < hi
        parts.append(f"tstamp < {_iso(hi)}")
    detail = "kept " + (" and ".join(parts) if parts else "all times")
    if missing.any():
        detail += f"; {int(missing.sum())} row(s) without tstamp removed (lenient)"
    return _keep_rows(data, keep, "dates", detail)


def _map_models(s: pd.Series, mapping: Mapping[str, str]) -> pd.Series:
    """Rename the values of a model column, keeping its kind (categorical or string)."""
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = [mapping.get(c, c) for c in s.cat.categories]
        new_pos, new_cats = pd.factorize(pd.Index(cats, dtype=object))
        codes = s.cat.codes.to_numpy()
        out = np.where(codes >= 0, new_pos[np.maximum(codes, 0)], -1)
        return pd.Series(pd.Categorical.from_codes(out, categories=pd.Index(new_cats, dtype=object)), index=s.index, name=s.name)
    codes, uniques = pd.factorize(s)
    mapped = np.array([mapping.get(u, u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[np.where(codes < 0, len(uniques), codes)], index=s.index, name=s.name, dtype=s.dtype)


def _rebuild(pc: PairCounts, names: list[str], pairs: np.ndarray, counts: np.ndarray, step: FilterStep) -> PairCounts:
    """PairCounts over the models used by ``pairs`` (indices into ``names``), steps kept."""
    used = np.unique(pairs.ravel()) if len(pairs) else np.array([], dtype=np.int64)
    pos = np.full(len(names), -1, dtype=np.int64)
    pos[used] = np.arange(len(used))
    models = [names[k] for k in used]
    if len(pairs) == 0:
        out = PairCounts((), np.empty((0, 2), dtype=np.int64), np.empty((0, 4)), pc.source)
    else:
        out = from_matrix_counts(models, pos[pairs], counts, pc.source)
    return replace(out, steps=pc.steps + (step,))


def filter_aliases(data: Data, aliases: Mapping[str, str] | None) -> Data:
    """Rename models (``{old: new}``), applied once (not transitively).

    Renaming two models to one merges their battles (their PairCounts are summed); battles
    that become a model against itself are removed and counted. Aliases whose old name is
    absent are listed in the detail, not an error.
    Example: ``{"chatgpt-4o-latest": "chatgpt-4o-latest-2024-08-08"}`` (the key of the
    2024-08-13 board). Source: clean_battle_data.py ``replace_model_name``.
    Returns: the same type, one FilterStep 'aliases'.
    """
    data = _as_data(data)
    aliases = {str(k): str(v) for k, v in (aliases or {}).items() if str(k) != str(v)}
    present = set(_models(data))
    used = {k: v for k, v in aliases.items() if k in present}
    absent = sorted(set(aliases) - present)
    parts = []
    if used:
        parts.append("renamed " + _names(f"{k} -> {v}" for k, v in sorted(used.items())))
        targets: dict[str, list[str]] = {}
        for m in present:
            targets.setdefault(used.get(m, m), []).append(m)
        merged = {t: sorted(src) for t, src in targets.items() if len(src) > 1}
        if merged:
            parts.append("merged " + _names(f"{' + '.join(src)} into {t}" for t, src in sorted(merged.items())))
    if absent:
        parts.append("not in the data: " + _names(absent))
    if isinstance(data, PairCounts):
        names = [used.get(m, m) for m in data.models]
        uniq = sorted(set(names))
        index = {m: k for k, m in enumerate(uniq)}
        remap = np.array([index[n] for n in names], dtype=np.int64)
        pairs = remap[data.pairs] if len(data.pairs) else data.pairs
        self_pair = pairs[:, 0] == pairs[:, 1] if len(pairs) else np.zeros(0, dtype=bool)
        removed = float(data.counts[self_pair].sum())
        if self_pair.any():
            parts.append(f"removed {removed:,.0f} vote(s) that became self-battles")
        step = FilterStep("aliases", removed, data.total - removed, "; ".join(parts) or "no aliases")
        if not used:
            return data.with_step(step)
        return _rebuild(data, uniq, pairs[~self_pair], data.counts[~self_pair], step)
    frame = data.frame
    if used:
        frame = frame.copy(deep=False)
        frame["model_a"] = _map_models(frame["model_a"], used)
        frame["model_b"] = _map_models(frame["model_b"], used)
        same = _same_model(frame)
    else:
        same = np.zeros(len(frame), dtype=bool)
    if same.any():
        parts.append(f"removed {int(same.sum())} battle(s) that became self-battles")
        frame = frame[~same]
    step = FilterStep("aliases", float(same.sum()), float(len(frame)), "; ".join(parts) or "no aliases")
    return data.with_frame(frame, step)


def filter_exclude(data: Data, models: Iterable[str]) -> Data:
    """Remove every battle involving one of ``models`` (names absent from the data are listed
    in the detail, not an error). Source: elo_analysis.py ``exclude_models``.
    Returns: the same type, one FilterStep 'exclude'.
    """
    data = _as_data(data)
    models = sorted({str(m) for m in models})
    present = set(_models(data))
    hit = [m for m in models if m in present]
    absent = [m for m in models if m not in present]
    parts = []
    if hit:
        parts.append("excluded " + _names(hit))
    if absent:
        parts.append("not in the data: " + _names(absent))
    detail = "; ".join(parts) or "nothing to exclude"
    if isinstance(data, PairCounts):
        drop = np.isin(np.arange(data.n_models), [data.index(m) for m in hit])
        bad = drop[data.pairs].any(axis=1) if len(data.pairs) else np.zeros(0, dtype=bool)
        removed = float(data.counts[bad].sum())
        step = FilterStep("exclude", removed, data.total - removed, detail)
        if not hit:
            return data.with_step(step)
        return _rebuild(data, list(data.models), data.pairs[~bad], data.counts[~bad], step)
    f = data.frame
    bad = (f["model_a"].isin(hit) | f["model_b"].isin(hit)).to_numpy(dtype=bool)
    return _keep_rows(data, ~bad, "exclude", detail)


def _battle_counts(data: Data) -> pd.Series:
    import pandas as pd

    if isinstance(data, PairCounts):
        return pd.Series(data.num_battles(), index=list(data.models))
    f = data.frame
    per_col = []
    for col in ("model_a", "model_b"):
        vc = f[col].value_counts()
        vc.index = pd.Index([str(m) for m in vc.index], dtype=object)
        per_col.append(vc)
    counts = per_col[0].add(per_col[1], fill_value=0)
    return counts[counts > 0]


def filter_min_battles(data: Data, threshold: float, *, iterate: bool = False) -> Data:
    """Remove models with fewer than ``threshold`` battles, and every battle involving them.

    FastChat has no such filter in elo_analysis.py (the published board hides models by vote
    count after rating). We count each model's battles once on the data as given and drop all
    models below the threshold in one pass, so a kept model may end up just under the threshold
    after its battles against dropped models are removed. ``iterate=True`` repeats the pass
    until every remaining model has at least ``threshold`` battles (the step detail says how
    many passes). ``threshold <= 0`` removes nothing.
    Returns: the same type, one FilterStep 'min_battles' listing the dropped models and counts.
    """
    data = _as_data(data)
    start = data
    dropped: dict[str, float] = {}
    passes = 0
    while threshold > 0:
        counts = _battle_counts(data)
        low = counts[counts < threshold]
        if low.empty:
            break
        passes += 1
        for m, n in low.items():
            dropped[str(m)] = float(n)
        inner = filter_exclude(data, low.index)
        if isinstance(inner, PairCounts):
            data = replace(inner, steps=start.steps)
        else:
            data = BattleTable(inner.frame, start.source, list(start.steps), validate=False)
        if not iterate:
            break
    removed = _size(start) - _size(data)
    if dropped:
        listed = _names(f"{m} ({n:,.0f})" for m, n in sorted(dropped.items(), key=lambda kv: (kv[1], kv[0])))
        detail = f"dropped {len(dropped)} model(s) with < {threshold:g} battles: {listed}"
        if iterate:
            detail += f" ({passes} pass(es) until stable)"
    else:
        detail = f"every model has >= {threshold:g} battles" if threshold > 0 else "no minimum"
    step = FilterStep("min_battles", removed, _size(data), detail)
    if isinstance(data, PairCounts):
        return replace(data, steps=start.steps + (step,))
    return BattleTable(data.frame, start.source, list(start.steps) + [step], validate=False)


def apply_filters(
    data: Data | pd.DataFrame,
    *,
    anony_only: bool = False,
    dedup: bool = False,
    since=None,
    until=None,
    exclude: Iterable[str] = (),
    min_battles: float = 0,
    aliases: Mapping[str, str] | None = None,
    lenient: bool = False,
) -> Data:
    """Apply the requested filters in FastChat's order and return the same type.

    Order: aliases -> dates (since/until) -> exclude -> anony -> dedup -> min_battles; a filter
    that is not requested adds no step. See the individual filters for units and errors.
    Parameters: anony_only, keep anonymous battles; dedup, keep dedup_tag.sampled battles;
    since/until, UTC bounds (ISO strings, dates or Unix seconds; since inclusive, until
    exclusive); exclude, model keys; min_battles, per-model minimum (one pass); aliases,
    {old: new}; lenient, skip row filters whose column is absent (see module docstring).
    Raises: DataError for a row filter asked of PairCounts, a missing column (unless lenient)
    or a bad bound.
    """
    data = _as_data(data)
    if aliases:
        data = filter_aliases(data, aliases)
    if since is not None or until is not None:
        data = filter_dates(data, since, until, lenient=lenient)
    exclude = tuple(exclude or ())
    if exclude:
        data = filter_exclude(data, exclude)
    if anony_only:
        data = filter_anony(data, lenient=lenient)
    if dedup:
        data = filter_dedup(data, lenient=lenient)
    if min_battles and min_battles > 0:
        data = filter_min_battles(data, min_battles)
    return data
