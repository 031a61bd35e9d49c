"""The pair counts of one Parquet file in the canonical schema, counted without its rows.

A leaderboard that needs no battle rows (no row filter, style control, category or online Elo)
needs only the counts of each (model_a, model_b, winner) cell. For one local Parquet file
under :data:`openarena.engines.AUTO_DUCKDB_ROWS` votes, :func:`file_pair_counts` reads the three
columns with pyarrow (dictionary-encoded: a few hundred strings, not millions), maps their codes
with numpy and counts them with :func:`openarena.data.battles.count_pairs`, the counting of
:func:`openarena.data.battles.aggregate`: the same PairCounts as reading the rows with
:func:`openarena.data.readers.read_battles` and aggregating them, without pandas (1.67M votes:
about 0.05 s instead of 0.5 s, most of it importing pandas).

Anything the in-memory reader would map or report (another schema, a missing value, a winner
alias such as 'tie(bothbad)', an empty model key, a self-battle, an unreadable file) gives None:
the caller then reads the rows, which gives the same counts or the error naming the row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openarena.data.battles import PairCounts, count_pairs
from openarena.data.schema import REQUIRED_COLUMNS, WINNERS


def file_pair_counts(path: str | Path, source: str | None = None) -> PairCounts | None:
    """PairCounts of the Parquet file ``path`` (columns model_a, model_b, winner), or None when
    the file needs the in-memory reader (see the module docstring).

    Parameters: path, a local Parquet file; source, its name in the result (default: the path).
    Returns: PairCounts (models sorted, white space around a model key removed, as the reader
    does; no filter steps) or None.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq  # ParquetFile, not read_table: read_table imports pyarrow.dataset and pandas

    try:
        pf = pq.ParquetFile(path)
        if not set(REQUIRED_COLUMNS) <= set(pf.schema_arrow.names):
            return None
        table = pf.read(columns=list(REQUIRED_COLUMNS))
    except (pa.ArrowException, OSError):
        return None
    if table.num_rows == 0:
        return None
    chunks = {}
    for col in REQUIRED_COLUMNS:
        column = table.column(col)
        if column.null_count or not (pa.types.is_string(_value_type(column.type)) or pa.types.is_large_string(_value_type(column.type))):
            return None
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        chunks[col] = [(c.dictionary.to_pylist(), _integers(c.indices)) for c in column.chunks if len(c)]

    # models: the keys used by model_a or model_b, stripped of surrounding white space
    used: set[str] = set()
    for col in ("model_a", "model_b"):
        for names, idx in chunks[col]:
            present = np.flatnonzero(np.bincount(idx, minlength=len(names)))
            used.update(names[k].strip() for k in present)
    if "" in used:
        return None
    models = tuple(sorted(used))
    position = {m: k for k, m in enumerate(models)}
    a, b = (np.concatenate([np.array([position.get(n.strip(), -1) for n in names], dtype=np.int64)[idx] for names, idx in chunks[col]])
            for col in ("model_a", "model_b"))
    winner_of = {w: k for k, w in enumerate(WINNERS)}
    w = []
    for names, idx in chunks["winner"]:
        lookup = np.array([winner_of.get(n, -1) for n in names], dtype=np.int8)[idx]
        if (lookup < 0).any():
            return None
        w.append(lookup)
    if (a == b).any():
        return None
    return count_pairs(a, b, np.concatenate(w), models, str(path) if source is None else source)


def _integers(array) -> np.ndarray:
    """The values of an Arrow integer array without nulls as a numpy view of its buffer
    (``Array.to_numpy`` converts through pyarrow's pandas layer, which imports pandas)."""
    dtype = np.dtype(str(array.type))  # 'int8', 'int16', 'int32', ...: the Arrow and numpy names agree
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def _value_type(t):
    """The value type of a dictionary type, else ``t``."""
    return t.value_type if hasattr(t, "value_type") else t
