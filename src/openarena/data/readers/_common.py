"""What every battle reader shares: canonical column names, type checks with row-located errors,
and the combination of several files into one result.

Row numbers in errors are the 0-based record numbers of the source: the list index for a JSON
list, line number - 1 for JSONL, the data row (header excluded) for CSV and the row for Parquet.
They come from the frame's index, which every reader sets to those numbers.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from openarena.data.battles import BattleTable, PairCounts, from_matrix_counts
from openarena.data.schema import MODEL_A, MODEL_B, REQUIRED_COLUMNS, TIE, TIE_BOTHBAD, WINNERS, has_missing_code, require_columns, row_of
from openarena.errors import DataError

#: Winner labels of other sources and their canonical form (arena-human-preference-140k writes
#: ``both_bad`` where FastChat writes ``tie (bothbad)``).
WINNER_ALIASES: dict[str, str] = {"both_bad": TIE_BOTHBAD}

#: canonical column -> source columns that may stand for it, tried in order, only when the
#: canonical column is absent. Sources: FastChat clean_battle (question_id), the
#: arena-human-preference-55k/140k cards (id, timestamp, evaluation_session_id) and the 100k card
#: (judge_hash).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "battle_id": ("question_id", "id"),
    "tstamp": ("timestamp",),
    "judge": ("judge_hash", "evaluation_session_id"),
}

#: The one-hot winner columns of arena-human-preference-55k (lmsys Kaggle competition set).
PREFERENCE_COLUMNS: tuple[str, str, str] = ("winner_model_a", "winner_model_b", "winner_tie")

#: Source fields each canonical column may be built from (used to read only what is needed).
SOURCE_FIELDS: dict[str, tuple[str, ...]] = {
    "winner": ("winner",) + PREFERENCE_COLUMNS,
    "dedup_sampled": ("dedup_sampled", "dedup_tag"),
    **{k: (k,) + v for k, v in COLUMN_ALIASES.items()},
}

_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n"}


def source_fields(columns: Sequence[str] | None) -> set[str] | None:
    """Source field names needed to build the required columns plus ``columns`` (canonical names).

    Returns None when ``columns`` is None (keep every field).
    """
    if columns is None:
        return None
    wanted: set[str] = set()
    for col in list(REQUIRED_COLUMNS) + list(columns):
        wanted.update(SOURCE_FIELDS.get(col, (col,)))
    return wanted


def select_columns(frame: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    """Keep the required columns plus ``columns`` (those present), in that order; None keeps all."""
    if columns is None:
        return frame
    keep = list(REQUIRED_COLUMNS) + [c for c in columns if c not in REQUIRED_COLUMNS and c in frame.columns]
    return frame[keep]


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _first_bad(frame: pd.DataFrame, bad: np.ndarray) -> tuple[int, int]:
    idx = np.flatnonzero(bad)
    return int(idx[0]), int(idx.size)


def canonicalize(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Map a source's columns to the canonical schema and check the types of known columns.

    Steps: one-hot winner columns (55k) -> ``winner``; aliases of :data:`COLUMN_ALIASES`;
    ``dedup_tag.sampled`` -> boolean ``dedup_sampled`` (the dict is kept); winner labels of
    :data:`WINNER_ALIASES`; then types: model_a/model_b/winner str (white space around a model
    key is removed), battle_id str, tstamp float (Unix seconds; datetimes and ISO strings are
    converted, naive ones read as UTC, milliseconds and microseconds recognised), anony and
    dedup_sampled nullable boolean, turn nullable Int64. Other columns are kept as they are.

    Parameters: frame, n rows whose index holds the source row numbers; source, for messages.
    Returns: a new DataFrame with the same index.
    Raises: DataError (source, row, field) for a missing required column, a value of the wrong
    type or an unknown (or missing) winner label. Empty model names and self-battles are
    reported by :func:`openarena.data.schema.validate_battles` when the BattleTable is built.
    """
    frame = frame.copy(deep=False)
    if "winner" not in frame.columns and any(c in frame.columns for c in PREFERENCE_COLUMNS):
        frame = _one_hot_winner(frame, source)
    for canon, alternatives in COLUMN_ALIASES.items():
        if canon in frame.columns:
            continue
        for alt in alternatives:
            if alt in frame.columns:
                frame = frame.rename(columns={alt: canon})
                break
    require_columns(frame, source, "columns model_a, model_b, winner (or winner_model_a, winner_model_b, winner_tie)")
    for col in (MODEL_A, MODEL_B, "winner"):
        frame[col] = check_strings(frame[col], source, col)
    for col in (MODEL_A, MODEL_B):
        # ' m5' and 'm5' are the same model: surrounding white space is never part of a key
        s = frame[col]
        values = s.cat.categories if isinstance(s.dtype, pd.CategoricalDtype) else pd.unique(s.dropna())
        if any(isinstance(v, str) and v != v.strip() for v in values):
            strip = lambda v: v.strip() if isinstance(v, str) else v  # noqa: E731
            frame[col] = map_categories(s, strip) if isinstance(s.dtype, pd.CategoricalDtype) else s.astype(object).map(strip)
    if _any_label(frame["winner"], WINNER_ALIASES):
        w = frame["winner"]
        if isinstance(w.dtype, pd.CategoricalDtype):
            # Series.replace cannot set a label that is not a category yet ('tie (bothbad)')
            frame["winner"] = map_categories(w, lambda c: WINNER_ALIASES.get(c, c))
        else:
            frame["winner"] = w.replace(WINNER_ALIASES)
    if _any_label(frame["winner"], WINNERS, outside=True):
        unknown = ~frame["winner"].isin(list(WINNERS)).to_numpy(dtype=bool)
        pos, n = _first_bad(frame, unknown)
        label = frame["winner"].iloc[pos]
        what = "missing winner" if _is_missing(label) else f"unknown winner label {label!r}"
        raise DataError(
            f"{what} ({n} row(s) like this)",
            source,
            row=row_of(frame, pos),
            field="winner",
            expected="one of " + ", ".join(repr(w) for w in WINNERS + tuple(WINNER_ALIASES)),
        )
    if "battle_id" in frame.columns:
        frame["battle_id"] = _as_str(frame["battle_id"])
    if "dedup_sampled" not in frame.columns and "dedup_tag" in frame.columns:
        frame["dedup_sampled"] = _dedup_sampled(frame["dedup_tag"], source)
    if "tstamp" in frame.columns:
        frame["tstamp"] = to_unix_seconds(frame["tstamp"], source, "tstamp")
    for col in ("anony", "dedup_sampled"):
        if col in frame.columns:
            frame[col] = to_boolean(frame[col], source, col)
    if "turn" in frame.columns:
        frame["turn"] = _to_int(frame["turn"], source, "turn")
    return frame


def map_categories(s: pd.Series, fn: Callable[[Any], Any]) -> pd.Series:
    """The categorical Series ``s`` with each category ``c`` replaced by ``fn(c)``, on its codes
    (no per-row strings). Categories that become equal are merged (e.g. 'both_bad' and 'tie
    (bothbad)'); missing values stay missing.

    Parameters: s, categorical Series of n rows. Returns: categorical Series of n rows, same
    index and name."""
    cats = s.cat.categories
    mapped = [fn(c) for c in cats]
    if len(set(mapped)) == len(mapped):
        return s.cat.rename_categories(mapped)
    lut, merged = pd.factorize(pd.Index(mapped, dtype=object))
    codes = s.array.codes
    lut = np.append(lut, -1).astype(codes.dtype)  # last slot: code -1 (missing) stays -1
    return pd.Series(pd.Categorical.from_codes(lut[codes], categories=merged), index=s.index, name=s.name)


def _any_label(s: pd.Series, labels, outside: bool = False) -> bool:
    """Whether a value of ``s`` is one of ``labels`` (``outside``: is missing or not one of
    them). A categorical column is answered from its categories and small codes, without a
    per-row isin over the strings."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.array.codes  # the Categorical's own codes (s.cat.codes copies them into a Series)
        hit = np.flatnonzero([(c not in labels) == outside for c in s.cat.categories])
        return bool((outside and has_missing_code(codes)) or (hit.size and np.isin(codes, hit).any()))
    mask = s.isin(list(labels)).to_numpy(dtype=bool)
    return bool((~mask if outside else mask).any())


def check_strings(s: pd.Series, source: str, field: str) -> pd.Series:
    """Check that the non-missing values of ``s`` are strings; return ``s`` (unchanged).

    Raises: DataError naming the first row whose value is not a string.
    """
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if ptypes.is_string_dtype(cats.dtype) or all(isinstance(c, str) for c in cats):
            return s
        s = s.astype(object)
        dtype = s.dtype
    if ptypes.is_string_dtype(dtype) and dtype != object:
        return s
    if dtype == object:
        values = s.to_numpy()
        bad = np.fromiter((not (isinstance(v, str) or _is_missing(v)) for v in values), bool, len(values))
    else:  # numbers, booleans, datetimes: no value is a string
        bad = ~s.isna().to_numpy()
    if bad.any():
        pos, n = _first_bad(s.to_frame(), bad)
        v = s.iloc[pos]
        raise DataError(
            f"value {v!r} ({type(v).__name__}) is not a string ({n} row(s) like this)",
            source,
            row=row_of(s, pos),
            field=field,
            expected="a string",
        )
    return s


def _as_str(s: pd.Series) -> pd.Series:
    if ptypes.is_string_dtype(s.dtype) and s.dtype != object:
        return s
    return s.map(lambda v: v if _is_missing(v) or isinstance(v, str) else str(v)).astype("str")


def _map_uniques(s: pd.Series, fn: Callable[[Any], Any], source: str, field: str, expected: str, out_dtype: str) -> pd.Series:
    """Apply ``fn`` to each distinct value (None -> missing); a ValueError from fn names the row."""
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError:  # unhashable values such as lists or dicts
        values = s.to_numpy()
        pos = next(k for k, v in enumerate(values) if not isinstance(v, (str, int, float, bool, np.generic)) and v is not None)
        v = values[pos]
        raise DataError(
            f"value {v!r} ({type(v).__name__}) has the wrong type",
            source,
            row=row_of(s, pos),
            field=field,
            expected=expected,
        ) from None
    mapped = []
    for k, u in enumerate(uniques):
        try:
            mapped.append(fn(u))
        except (ValueError, TypeError):
            pos, n = _first_bad(s.to_frame(), codes == k)
            raise DataError(
                f"value {u!r} ({type(u).__name__}) has the wrong type or form ({n} row(s) like this)",
                source,
                row=row_of(s, pos),
                field=field,
                expected=expected,
            ) from None
    table = pd.array(mapped + [None], dtype=out_dtype)
    return pd.Series(table[np.where(codes < 0, len(mapped), codes)], index=s.index, name=s.name)


def _bool_value(v: Any) -> bool | None:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer, float, np.floating)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in _TRUE | _FALSE:
        return v.strip().lower() in _TRUE
    raise ValueError(v)


def to_boolean(s: pd.Series, source: str, field: str) -> pd.Series:
    """Values as a nullable ``boolean`` Series (missing stays missing).

    Accepts booleans, 0/1 and the strings true/false/1/0/yes/no (any case).
    Raises: DataError naming the first row holding anything else.
    """
    if ptypes.is_bool_dtype(s.dtype):
        return s.astype("boolean")
    return _map_uniques(s, _bool_value, source, field, "true or false", "boolean")


def _int_value(v: Any) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise ValueError(v)
    if isinstance(v, str):
        v = v.strip()
        return int(v)
    f = float(v)
    if not f.is_integer():
        raise ValueError(v)
    return int(f)


def _to_int(s: pd.Series, source: str, field: str) -> pd.Series:
    if ptypes.is_integer_dtype(s.dtype) and not ptypes.is_bool_dtype(s.dtype):
        return s.astype("Int64")
    return _map_uniques(s, _int_value, source, field, "an integer", "Int64")


def to_unix_seconds(s: pd.Series, source: str, field: str) -> pd.Series:
    """Timestamps as float64 Unix seconds (UTC).

    Accepts numbers (already Unix seconds), datetimes (naive ones are read as UTC) and strings
    holding either a number or an ISO 8601 date/time. Missing values stay NaN.
    Raises: DataError naming the first row holding anything else.
    """
    if ptypes.is_bool_dtype(s.dtype):
        raise DataError("a boolean column is not a time", source, row=row_of(s, 0), field=field, expected="Unix seconds or an ISO date/time")
    if ptypes.is_numeric_dtype(s.dtype):
        return _epoch_unit(s.astype("float64"))
    if ptypes.is_datetime64_any_dtype(s.dtype):
        return _datetimes_to_seconds(s)
    num = pd.to_numeric(s, errors="coerce")
    rest = num.isna() & ~s.isna()
    if rest.any():
        sub = s[rest]
        try:
            parsed = pd.to_datetime(sub, utc=True, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=sub.index)
        if not ptypes.is_datetime64_any_dtype(parsed.dtype):
            parsed = pd.Series(pd.NaT, index=sub.index, dtype="datetime64[ns, UTC]")
        bad = parsed.isna().to_numpy()
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            v = sub.iloc[pos]
            raise DataError(
                f"value {v!r} is neither Unix seconds nor an ISO date/time ({int(bad.sum())} row(s) like this)",
                source,
                row=row_of(sub, pos),
                field=field,
                expected="Unix seconds (number) or an ISO 8601 date/time",
            )
        num = num.astype("float64")
        num[rest] = _datetimes_to_seconds(parsed)
    return _epoch_unit(num.astype("float64"))


def _epoch_unit(x: pd.Series) -> pd.Series:
    """Unix times given in milliseconds or microseconds (as JavaScript and some exports write
    them) back to seconds: a median above 1e11 s (year 5138) is read as ms, above 1e14 as µs."""
    med = x.abs().median()
    if not np.isfinite(med) or med < 1e11:
        return x
    return x / (1e6 if med >= 1e14 else 1e3)


def _datetimes_to_seconds(s: pd.Series) -> pd.Series:
    if s.dt.tz is None:
        s = s.dt.tz_localize("UTC")
    else:
        s = s.dt.tz_convert("UTC")
    return (s - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)


def _sampled_value(v: Any) -> bool | None:
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            raise ValueError(v) from None
    if isinstance(v, dict):
        x = v.get("sampled")
        return None if x is None else _bool_value(x)
    raise ValueError(v)


def _dedup_sampled(tags: pd.Series, source: str) -> pd.Series:
    """FastChat's ``dedup_tag`` ({"high_freq": bool, "sampled": bool}) -> boolean ``sampled``;
    a missing tag or a tag without ``sampled`` gives a missing value."""
    values = tags.to_numpy()
    out = np.empty(len(values), dtype=object)
    for k, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v):
            out[k] = None
            continue
        try:
            out[k] = _sampled_value(v)
        except (ValueError, TypeError):
            raise DataError(
                f"value {v!r} is not a dedup tag",
                source,
                row=row_of(tags, k),
                field="dedup_tag",
                expected='an object like {"high_freq": false, "sampled": true}',
            ) from None
    return pd.Series(pd.array(out, dtype="boolean"), index=tags.index)


def _one_hot_winner(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """winner_model_a / winner_model_b / winner_tie (0/1, exactly one 1) -> ``winner``.

    Source: the arena-human-preference-55k card (lmsys Kaggle competition); its winner_tie holds
    both kinds of tie, so they map to 'tie'.
    """
    missing = [c for c in PREFERENCE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)} next to {', '.join(c for c in PREFERENCE_COLUMNS if c in frame.columns)}",
            source,
            field=missing[0],
            expected="all of winner_model_a, winner_model_b, winner_tie (or one winner column)",
        )
    vals = []
    for col in PREFERENCE_COLUMNS:
        s = frame[col]
        if ptypes.is_bool_dtype(s.dtype):
            num = s.astype("float64")
        else:
            num = pd.to_numeric(s, errors="coerce").astype("float64")
        arr = num.to_numpy()
        bad = ~np.isin(arr, (0.0, 1.0))
        if bad.any():
            pos, n = _first_bad(frame, bad)
            raise DataError(
                f"value {s.iloc[pos]!r} is not 0 or 1 ({n} row(s) like this)",
                source,
                row=row_of(frame, pos),
                field=col,
                expected="0 or 1",
            )
        vals.append(arr.astype(np.int8))
    a, b, t = vals
    total = a + b + t
    bad = total != 1
    if bad.any():
        pos, n = _first_bad(frame, bad)
        raise DataError(
            f"winner_model_a={a[pos]}, winner_model_b={b[pos]}, winner_tie={t[pos]}: exactly one must be 1 ({n} row(s) like this)",
            source,
            row=row_of(frame, pos),
            field=",".join(PREFERENCE_COLUMNS),
            expected="exactly one of the three columns equal to 1",
        )
    winner = np.where(a == 1, MODEL_A, np.where(b == 1, MODEL_B, TIE))
    at = min(frame.columns.get_loc(c) for c in PREFERENCE_COLUMNS)
    frame = frame.drop(columns=list(PREFERENCE_COLUMNS))
    frame.insert(at, "winner", pd.Series(winner, index=frame.index, dtype="str"))
    return frame


def build_table(frame: pd.DataFrame, source: str, columns: Sequence[str] | None = None) -> BattleTable:
    """canonicalize + column selection + schema validation -> BattleTable."""
    frame = canonicalize(frame, source)
    frame = select_columns(frame, columns)
    return BattleTable(frame, source)


def combine(results: Iterable[tuple[str, BattleTable | PairCounts]], source: str) -> BattleTable | PairCounts:
    """Join the results of several files (each read and validated on its own).

    Battle tables are concatenated in file order; the index is renumbered 0..n-1 and a
    categorical column ``source_file`` says which file each row came from (its row number
    there is in ``source_row``). Pair counts are summed pair by pair. Mixing both forms raises
    DataError.
    """
    results = list(results)
    if len(results) == 1:
        return results[0][1]
    kinds = {type(r) for _, r in results}
    if len(kinds) > 1:
        names = ", ".join(f"{name} ({type(r).__name__})" for name, r in results)
        raise DataError(f"cannot combine battle rows with aggregated pair counts: {names}", source, expected="files of one kind")
    if kinds == {PairCounts}:
        models = sorted({m for _, pc in results for m in pc.models})
        pos = {m: k for k, m in enumerate(models)}
        X = np.concatenate([np.vectorize(pos.__getitem__, otypes=[np.int64])(np.asarray(pc.models, dtype=object)[pc.pairs]) for _, pc in results if len(pc.pairs)])
        Y = np.concatenate([pc.counts for _, pc in results if len(pc.pairs)])
        return from_matrix_counts(models, X, Y, source)
    frames = []
    for name, table in results:
        f = table.frame
        f = f.assign(source_file=name, source_row=f.index.to_numpy())
        frames.append(f)
    frame = pd.concat(frames, ignore_index=True, sort=False)
    frame["source_file"] = frame["source_file"].astype("category")
    for col in ("anony", "dedup_sampled"):
        if col in frame.columns and frame[col].dtype != "boolean":
            frame[col] = frame[col].astype("boolean")
    if "turn" in frame.columns and frame["turn"].dtype != "Int64":
        frame["turn"] = frame["turn"].astype("Int64")
    return BattleTable(frame, source, validate=False)
