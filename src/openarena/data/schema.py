"""The canonical battle schema: column names, winner labels and their validation.

One row is one vote on one battle. Required columns: ``model_a``, ``model_b`` (model keys,
non-empty strings, different from each other) and ``winner`` in :data:`WINNERS`. Optional
columns, when a source has them: ``battle_id`` (str), ``tstamp`` (float, Unix seconds),
``judge`` (str, hashed voter id), ``language`` (str), ``turn`` (int), ``anony`` (bool),
``dedup_sampled`` (bool, FastChat's ``dedup_tag.sampled``), ``category`` (str),
``conversation_a`` / ``conversation_b`` (list of {"role", "content"} dicts) and style features.

Source: the ``clean_battle`` records of FastChat (lm-sys/FastChat, fastchat/serve/monitor/
clean_battle_data.py) and the public arena-human-preference datasets.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import numpy as np

from openarena.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

MODEL_A = "model_a"
MODEL_B = "model_b"
TIE = "tie"
TIE_BOTHBAD = "tie (bothbad)"
#: The four vote outcomes, in the column order of :class:`~openarena.data.pair_counts.PairCounts`.
WINNERS: tuple[str, str, str, str] = (MODEL_A, MODEL_B, TIE, TIE_BOTHBAD)
#: The arenas a battle belongs to (column ``arena``), each with its own leaderboard: 'text'
#: (prompts only; every public dataset so far), 'vision' (an image came with the prompt),
#: 'code' (the code arena).
ARENAS: tuple[str, str, str] = ("text", "vision", "code")
#: Score of model_a for each outcome when ties count as half a win.
OUTCOME_SCORE = {MODEL_A: 1.0, MODEL_B: 0.0, TIE: 0.5, TIE_BOTHBAD: 0.5}

#: Style features of an answer; on a battle row as ``<feature>_a`` and ``<feature>_b`` (ints):
#: assistant tokens summed over turns, markdown headers, list items, bold spans.
STYLE_FEATURES: tuple[str, str, str, str] = ("tokens", "headers", "lists", "bold")

REQUIRED_COLUMNS: tuple[str, str, str] = ("model_a", "model_b", "winner")
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "battle_id",
    "tstamp",
    "judge",
    "language",
    "turn",
    "anony",
    "dedup_sampled",
    "category",
    "conversation_a",
    "conversation_b",
)


def is_frame(obj) -> bool:
    """True when ``obj`` is a pandas DataFrame; False without importing pandas when no module
    has imported it yet (then nothing can be a DataFrame), so the paths that never touch a
    DataFrame (pair counts, the CSV leaderboard) do not pay for importing pandas."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, pd.DataFrame)


def winner_codes(winner: pd.Series, source: str = "") -> np.ndarray:
    """Map winner labels to codes 0..3 in the order of :data:`WINNERS`.

    Parameters: winner, Series of str of length n (its index gives the row numbers in errors).
    Returns: ndarray of int8, shape (n,).
    Raises: DataError naming the first row whose label is not one of :data:`WINNERS`.
    """
    import pandas as pd

    if isinstance(winner.dtype, pd.CategoricalDtype):
        lookup = np.array([WINNERS.index(c) if c in WINNERS else -1 for c in winner.cat.categories], dtype=np.int8)
        raw = winner.array.codes  # the Categorical's own codes (winner.cat.codes copies them into a Series)
        codes = np.where(raw >= 0, lookup[raw], -1).astype(np.int8)
    else:
        codes = pd.Index(list(WINNERS)).get_indexer(winner.to_numpy(dtype=object)).astype(np.int8)
    bad = np.flatnonzero(codes < 0)
    if bad.size:
        pos = int(bad[0])
        raise DataError(
            f"unknown winner label {winner.iloc[pos]!r} ({bad.size} row(s) like this)",
            source,
            row=row_of(winner, pos),
            field="winner",
            expected="one of " + ", ".join(repr(w) for w in WINNERS),
        )
    return codes


def row_of(frame: pd.DataFrame | pd.Series, pos: int) -> int:
    """The source row number of position ``pos``: its index label as an int, or ``pos`` when
    the label is not a number (readers set the index to the source's row numbers)."""
    label = frame.index[pos]
    try:
        return int(label)
    except (TypeError, ValueError):
        return pos


def require_columns(frame: pd.DataFrame, source: str = "", expected: str = "columns model_a, model_b, winner") -> None:
    """Check that ``frame`` has the :data:`REQUIRED_COLUMNS` and at least one row.

    Parameters: frame; source, for messages; expected, the message's ``expected`` text for a
    missing column.
    Raises: DataError naming the first missing column (and the columns found), or saying that
    there are no battles.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns)) or 'none'}",
            source,
            field=missing[0],
            expected=expected,
        )
    if len(frame) == 0:
        raise DataError("no battles in the input", source, expected="at least one battle")


def validate_battles(frame: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """Check that ``frame`` is a valid battle table and return it with canonical dtypes.

    Parameters: frame, DataFrame with one row per battle; its index holds the row numbers of
    the source (used in error messages). source, the file or dataset name for messages.
    Returns: the same rows; ``model_a``/``model_b`` as str, ``winner`` as str.
    Raises: DataError (source, row, field, expected) for an empty table, a missing column, an
    empty or missing model name, an unknown winner label, or a model battling itself.
    """
    import pandas as pd

    require_columns(frame, source)
    a, b = frame["model_a"], frame["model_b"]
    if isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype):
        _validate_categorical_rows(frame, source)
        return frame
    codes, models = factorize_models(frame)
    for k, col in enumerate(("model_a", "model_b")):
        names = pd.Series(models, dtype=object)
        empty_codes = np.flatnonzero(names.astype(str).str.strip().to_numpy() == "")
        bad = (codes[k] < 0) | np.isin(codes[k], empty_codes)
        if bad.any():
            _empty_name_error(frame, bad, col, source)
    winner_codes(frame["winner"], source)
    same = codes[0] == codes[1]
    if same.any():
        _self_battle_error(frame, same, source)
    return frame


def _empty_name_error(frame: pd.DataFrame, bad: np.ndarray, col: str, source: str) -> NoReturn:
    pos = int(np.flatnonzero(bad)[0])
    raise DataError(
        f"empty model name ({int(bad.sum())} row(s) like this)",
        source,
        row=row_of(frame, pos),
        field=col,
        expected="a non-empty model key",
    )


def _self_battle_error(frame: pd.DataFrame, same: np.ndarray, source: str) -> NoReturn:
    pos = int(np.flatnonzero(same)[0])
    raise DataError(
        f"model {frame['model_a'].iloc[pos]!r} battles itself ({int(same.sum())} row(s) like this)",
        source,
        row=row_of(frame, pos),
        field="model_b",
        expected="model_b different from model_a",
    )


#: Rows per chunk when a pass over categorical codes would otherwise make row-length int64
#: temporaries (a chunk's temporaries stay a few MB).
CHUNK_ROWS = 1 << 21


def has_missing_code(codes: np.ndarray) -> bool:
    """Whether the codes of a Categorical hold -1 (a missing value): one reduction, no
    row-length boolean array (50M rows: ~10 ms instead of ~0.1 s of fresh memory)."""
    return bool(len(codes)) and int(codes.min()) < 0


def _validate_categorical_rows(frame: pd.DataFrame, source: str) -> None:
    """:func:`validate_battles` for categorical model_a / model_b, on their small integer codes
    (no row-length int64 model indices): the same checks and the same errors."""
    import pandas as pd

    a, b = frame["model_a"].array, frame["model_b"].array
    for col, cat in (("model_a", a), ("model_b", b)):
        codes = np.asarray(cat.codes)
        empty = np.flatnonzero(pd.Index(cat.categories).astype(str).str.strip() == "")
        if has_missing_code(codes) or (empty.size and np.isin(codes, empty).any()):
            _empty_name_error(frame, (codes < 0) | np.isin(codes, empty), col, source)
    check_winners(frame["winner"], source)
    ca, cb = np.asarray(a.codes), np.asarray(b.codes)
    # model_a's codes in model_b's categories when they differ (-1: a name model_b never has)
    lut = None if a.categories.equals(b.categories) else pd.Index(b.categories).get_indexer(a.categories)

    def same(lo: int, hi: int) -> np.ndarray:
        x = ca[lo:hi]
        return (x if lut is None else lut[x]) == cb[lo:hi]

    # in chunks: no 50M-row boolean array unless there is a self-battle to report
    if any(same(s0, s0 + CHUNK_ROWS).any() for s0 in range(0, len(ca), CHUNK_ROWS)):
        _self_battle_error(frame, same(0, len(ca)), source)


def check_winners(winner: pd.Series, source: str = "") -> None:
    """Raise as :func:`winner_codes` does for a missing or unknown winner label; for a
    categorical column the check runs on its codes and categories (no per-row codes made)."""
    import pandas as pd

    if isinstance(winner.dtype, pd.CategoricalDtype):
        raw = winner.array.codes
        unknown = np.flatnonzero([c not in WINNERS for c in winner.cat.categories])
        if not (has_missing_code(raw) or (unknown.size and np.isin(raw, unknown).any())):
            return
    winner_codes(winner, source)


def factorize_models(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of model_a and model_b against one shared, sorted list of model keys.

    Parameters: frame, DataFrame with columns model_a and model_b (n rows).
    Returns: (codes, models): codes, int64 array of shape (2, n) (-1 for a missing name);
    models, object array of the sorted unique keys, shape (n_models,).
    """
    import pandas as pd

    n = len(frame)
    a, b = frame["model_a"], frame["model_b"]
    if isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype):
        return _factorize_categoricals(a.array, b.array)
    both = pd.concat([a, b], ignore_index=True)
    codes, models = pd.factorize(both, sort=True)
    return codes.reshape(2, n), np.asarray(models, dtype=object)


def category_luts(a: pd.Categorical, b: pd.Categorical, present: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[list[np.ndarray], np.ndarray]:
    """The model index of each category of two categorical columns: ([lut_a, lut_b], models).

    models: the sorted keys that occur in either column (object array, (n_models,)); lut_k:
    int64 array of len(categories) + 1, the model index of each category (-1 for a category
    that no row uses; the last slot, for code -1 = missing, is -1). ``present``: which
    categories of a and of b occur, when the caller knows (boolean arrays of len(categories));
    else counted from the codes."""
    import pandas as pd

    used, parts = [], []
    for k, cat in enumerate((a, b)):
        if present is None:
            codes = np.asarray(cat.codes)
            seen = np.zeros(len(cat.categories), dtype=bool)
            for s0 in range(0, len(codes), CHUNK_ROWS):
                chunk = codes[s0 : s0 + CHUNK_ROWS]
                seen |= np.bincount(chunk[chunk >= 0], minlength=len(cat.categories)) > 0
        else:
            seen = present[k]
        used.append(np.flatnonzero(seen))
        parts.append(np.asarray(cat.categories, dtype=object)[seen])
    part_codes, models = pd.factorize(np.concatenate(parts), sort=True)
    luts = []
    offset = 0
    for k, cat in enumerate((a, b)):
        lut = np.full(len(cat.categories) + 1, -1, dtype=np.int64)  # last slot: code -1 (missing)
        lut[used[k]] = part_codes[offset : offset + len(used[k])]
        offset += len(used[k])
        luts.append(lut)
    return luts, np.asarray(models, dtype=object)


def _factorize_categoricals(a: pd.Categorical, b: pd.Categorical) -> tuple[np.ndarray, np.ndarray]:
    """:func:`factorize_models` for two categorical columns without materialising the strings:
    factorize the categories that occur (a few hundred), then map the integer codes through a
    lookup table (in chunks: no row-length intermediate besides the result). Same result as
    factorizing the concatenated values."""
    luts, models = category_luts(a, b)
    out = np.empty((2, len(a)), dtype=np.int64)
    for k, cat in enumerate((a, b)):
        codes = np.asarray(cat.codes)
        for s0 in range(0, len(codes), CHUNK_ROWS):
            np.take(luts[k], codes[s0 : s0 + CHUNK_ROWS], out=out[k, s0 : s0 + CHUNK_ROWS], mode="wrap")
    return out, models
