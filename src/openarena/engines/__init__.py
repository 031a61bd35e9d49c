"""Where votes are aggregated when they do not fit in memory: ``numpy`` (in memory, the
reference), ``duckdb`` (embedded, streaming, multi-threaded) and ``spark`` (PySpark, a local or
cluster Spark). Each reads Parquet partitions, applies the row filters, and returns the same
:class:`~openarena.data.battles.PairCounts`: counts are identical across engines (tested).

    >>> from openarena.engines import aggregate_counts
    >>> counts = aggregate_counts("votes/", engine="duckdb", anony=True)  # doctest: +SKIP

A base layer: it depends on :mod:`openarena.data` only.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from openarena.engines.files import FileKey, is_parquet_collection, parquet_files
from openarena.errors import DataError

if TYPE_CHECKING:
    from openarena.data.battles import PairCounts

ENGINES = ("numpy", "duckdb", "spark")

#: Parquet folders or globs of more rows than this (counted from the Parquet footers) go through
#: DuckDB when no engine is named. Bytes are a poor measure: the engines read three columns, and
#: 1M votes of those take 2 MB in a dictionary-encoded file but 1 GB with the conversations.
#: bench/scale.py: below ~10M votes the in-memory reader is as fast and keeps the rows that the
#: row-level features need; above, DuckDB is faster and its memory does not grow with the votes.
AUTO_DUCKDB_ROWS = 20_000_000

__all__ = ["ENGINES", "AUTO_DUCKDB_ROWS", "RowFilters", "FileKey", "aggregate_counts", "choose_engine", "parquet_files"]


def __getattr__(name: str):
    if name == "RowFilters":  # pyarrow.parquet is imported only when an engine runs
        from openarena.engines.plan import RowFilters

        return RowFilters
    raise AttributeError(name)


def choose_engine(source: str | Path, engine: str | None = None) -> str | None:
    """The engine for ``source``: ``engine`` when given (checked), else 'duckdb' for a Parquet
    file, folder or glob in the canonical schema (model_a, model_b, winner) with more than
    :data:`AUTO_DUCKDB_ROWS` rows when duckdb is installed, else None (in memory: the rows are
    read, or, for a leaderboard that needs no rows and no filter, one Parquet file is counted
    without them by :func:`openarena.engines.single_file.file_pair_counts`, the same counts).
    Raises: DataError for an unknown engine name."""
    if engine is not None:
        if engine not in ENGINES:
            raise DataError(f"unknown engine {engine!r}", field="engine", expected="one of " + ", ".join(ENGINES))
        return engine
    s = str(source)
    single = s.lower().endswith(".parquet") and Path(s).is_file()
    if "://" in s or not (single or is_parquet_collection(s)):
        return None
    if importlib.util.find_spec("duckdb") is None:  # installed? (importing it costs 0.06 s)
        return None
    import pyarrow.parquet as pq

    rows = 0
    for f in parquet_files(s):
        try:
            meta = pq.read_metadata(f.path)
        except (OSError, ValueError):
            return None  # the reader reports the broken file
        if not {"model_a", "model_b", "winner"} <= set(meta.schema.names):
            return None  # another schema (55k, 140k): the reader maps it
        rows += meta.num_rows
        if rows > AUTO_DUCKDB_ROWS:
            return "duckdb"
    return None


def aggregate_counts(
    source: str | Path,
    *,
    engine: str = "duckdb",
    anony: bool = False,
    dedup: bool = False,
    since=None,
    until=None,
    exclude: Sequence[str] = (),
    aliases: Mapping[str, str] | None = None,
    min_battles: float = 0,
    store: str | Path | None | bool = True,
    master: str | None = None,
    info: dict | None = None,
) -> PairCounts:
    """Aggregate the votes of Parquet partitions to PairCounts, with the leaderboard filters.

    Parameters:
        source: a Parquet file, a folder of them or a glob; columns model_a, model_b, winner
            (+ anony, dedup_sampled, tstamp for their filters), the canonical schema.
        engine: 'numpy', 'duckdb' or 'spark'.
        anony, dedup, since, until: the row filters, done by the engine (since/until: ISO
            dates or Unix seconds, naive = UTC; since inclusive, until exclusive).
        exclude, aliases, min_battles: model filters, applied to the aggregate with
            :func:`openarena.data.filters.apply_filters` (the same result as on rows).
        store: the incremental store folder (True = :func:`.incremental.default_store`;
            None/False = aggregate every file every time).
        master: Spark master URL (engine='spark'; default ``OPENARENA_SPARK_MASTER`` or local[*]).
        info: if a dict, filled with what was done: engine, files, files_read, files_reused,
            rows (from the Parquet footers), seconds.
    Returns: PairCounts with steps dates -> anony -> dedup -> aliases -> exclude -> min_battles
        (those asked for); equal to aggregating the filtered rows in memory.
    Raises: DataError naming the file and field for a missing column, a bad label, a missing
        flag value, a self-battle; ImportError when the engine's package is missing.
    """
    from openarena.data.filters import apply_filters
    from openarena.engines.counts import to_pair_counts
    from openarena.engines.plan import RowFilters, check_schemas
    from openarena.engines.incremental import default_store, incremental_counts

    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r}", field="engine", expected="one of " + ", ".join(ENGINES))
    t0 = time.perf_counter()
    filters = RowFilters.from_user(anony=anony, dedup=dedup, since=since, until=until)
    files = parquet_files(source)
    plan = check_schemas(files, filters)

    def run(subset: list[FileKey]):
        sub = type(plan)(tuple(subset), plan.tstamp, 0, plan.nanosecond_timestamps)
        if engine == "numpy":
            from openarena.engines.numpy_engine import group_counts
            return group_counts(sub, filters)
        if engine == "duckdb":
            from openarena.engines.duckdb_engine import group_counts
            return group_counts(sub, filters)
        from openarena.engines.spark_engine import group_counts
        return group_counts(sub, filters, master=master)

    where = default_store() if store is True else (Path(store) if store else None)
    if where is not None:
        groups, done = incremental_counts(where, files, filters, run)
    else:
        groups, done = run(files), {"read": len(files), "reused": 0, "dropped": 0}
    pc = to_pair_counts(groups, filters, str(source))
    pc = apply_filters(pc, exclude=tuple(exclude or ()), aliases=dict(aliases) if aliases else None, min_battles=min_battles)
    if info is not None:
        info.update(engine=engine, files=len(files), files_read=done["read"], files_reused=done["reused"], rows=plan.rows, seconds=time.perf_counter() - t0)
    return pc
