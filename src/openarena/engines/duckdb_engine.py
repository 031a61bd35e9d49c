"""The DuckDB engine: one embedded, multi-threaded SQL query over all the Parquet files,
streaming (it never holds the rows in memory) and reading only the needed columns.

Source: DuckDB ``read_parquet`` (duckdb.org/docs/data/parquet).
"""

from __future__ import annotations

import pandas as pd

from openarena.engines.plan import FilePlan, RowFilters


def _sql_literal(x: float) -> str:
    return repr(float(x))


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tstamp_seconds_sql(kind: str | None) -> str:
    """SQL expression for tstamp in Unix seconds (DuckDB dialect)."""
    return "epoch(tstamp)" if kind == "timestamp" else "CAST(tstamp AS DOUBLE)"


def in_range_sql(plan: FilePlan, filters: RowFilters, seconds: str) -> str:
    conds = []
    if filters.since is not None:
        conds.append(f"{seconds} >= {_sql_literal(filters.since)}")
    if filters.until is not None:
        conds.append(f"{seconds} < {_sql_literal(filters.until)}")
    return "(" + " AND ".join(conds) + ")"


def group_counts(plan: FilePlan, filters: RowFilters, *, threads: int | None = None, memory_limit: str | None = None) -> pd.DataFrame:
    """Grouped counts of every file of ``plan`` (see :mod:`openarena.engines.plan`).

    Parameters: threads, DuckDB worker threads (default: all cores); memory_limit, e.g. '2GB'
    (default: DuckDB's, 80% of RAM; the aggregation spills to disk beyond it).
    Raises: ImportError with the install command when duckdb is missing.
    """
    try:
        import duckdb
    except ImportError:  # pragma: no cover - depends on the install
        raise ImportError("the DuckDB engine needs duckdb: pip install 'openarena[engines]'") from None
    if not plan.files:
        return pd.DataFrame(columns=["file", "model_a", "model_b", "winner", *filters.flags(), "n"])
    select = ["CAST(model_a AS VARCHAR) AS model_a", "CAST(model_b AS VARCHAR) AS model_b", "CAST(winner AS VARCHAR) AS winner"]
    if filters.anony:
        select.append("CAST(anony AS BOOLEAN) AS anony")
    if filters.dedup:
        select.append("CAST(dedup_sampled AS BOOLEAN) AS dedup_sampled")
    if filters.dates:
        select.append(in_range_sql(plan, filters, tstamp_seconds_sql(plan.tstamp)) + " AS in_range")
    keys = ", ".join(str(i + 1) for i in range(len(select)))
    # one grouped sub-query per file, its path added after grouping: a file name in the hash key
    # of every row costs a third more than the grouping itself
    parts = [
        f"SELECT {_sql_string(f.path)} AS file, * FROM (SELECT {', '.join(select)}, count(*) AS n FROM read_parquet({_sql_string(f.path)}) GROUP BY {keys})"
        for f in plan.files
    ]
    sql = " UNION ALL ".join(parts)
    con = duckdb.connect(":memory:")
    try:
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            con.execute("SET memory_limit = ?", [memory_limit])
        con.execute("SET preserve_insertion_order = false")
        out = con.execute(sql).df()
    finally:
        con.close()
    out["n"] = out["n"].astype("int64")
    return out
