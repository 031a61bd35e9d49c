"""What an engine computes: the row filters it applies and the groups it counts.

Every engine answers the same query over a list of Parquet files::

    SELECT file, model_a, model_b, winner [, anony] [, dedup_sampled] [, in_range], count(*) AS n
    FROM the files GROUP BY all of them

``in_range`` is ``since <= tstamp < until`` (NULL when tstamp is NULL), present only when a
date bound is asked for; ``anony`` and ``dedup_sampled`` only when their filter is. The result
(:data:`GROUP_COLUMNS`) is small (files x ordered pairs x outcomes x flags) and is turned into
:class:`~openarena.data.battles.PairCounts` by :func:`openarena.engines.counts.to_pair_counts`,
which applies the filters in FastChat's order and records a FilterStep for each.

Row filters done where the data lives: dates, anony, dedup (the row-only filters of
:mod:`openarena.data.filters`). Model filters (aliases, excluded models, minimum battles) run on
the aggregate with the same functions as for any PairCounts. What needs the rows themselves
(style features, categories, identity-leak curation, online Elo's order) is refused by
:func:`openarena.engines.aggregate_counts`'s callers with a clear error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from openarena.errors import DataError

from openarena.engines.files import FileKey

#: The columns every engine returns, in this order (flags only when asked for).
GROUP_COLUMNS = ("file", "model_a", "model_b", "winner", "anony", "dedup_sampled", "in_range", "n")
REQUIRED = ("model_a", "model_b", "winner")


@dataclass(frozen=True)
class RowFilters:
    """The row filters an engine applies.

    Attributes: anony, keep anony == true; dedup, keep dedup_sampled == true; since, until,
    Unix seconds (float) or None, kept when since <= tstamp < until.
    Use :meth:`from_user` to parse dates the way :func:`openarena.data.filters.filter_dates` does.
    """

    anony: bool = False
    dedup: bool = False
    since: float | None = None
    until: float | None = None

    @classmethod
    def from_user(cls, *, anony: bool = False, dedup: bool = False, since=None, until=None) -> "RowFilters":
        """Parse ``since``/``until`` (ISO strings, dates or Unix seconds; naive = UTC).
        Raises: DataError for an unparsable bound or since >= until."""
        from openarena.data.filters import parse_time

        lo = parse_time(since, "since") if since is not None else None
        hi = parse_time(until, "until") if until is not None else None
        if lo is not None and hi is not None and lo >= hi:
            raise DataError(f"since ({since}) is not before until ({until})", field="since", expected="since < until")
        return cls(bool(anony), bool(dedup), lo, hi)

    @property
    def dates(self) -> bool:
        return self.since is not None or self.until is not None

    def flags(self) -> list[str]:
        """The flag columns the engines group by."""
        return (["anony"] if self.anony else []) + (["dedup_sampled"] if self.dedup else []) + (["in_range"] if self.dates else [])

    def columns(self) -> list[str]:
        """Source columns to read."""
        return list(REQUIRED) + (["anony"] if self.anony else []) + (["dedup_sampled"] if self.dedup else []) + (["tstamp"] if self.dates else [])

    def key(self) -> str:
        """A short hash naming this query in the incremental store."""
        text = json.dumps({"anony": self.anony, "dedup": self.dedup, "since": self.since, "until": self.until, "v": 1}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FilePlan:
    """The files to read and the kind of their tstamp column: 'number' (Unix seconds),
    'timestamp' (a Parquet timestamp; naive ones are UTC) or None (not needed)."""

    files: tuple[FileKey, ...]
    tstamp: str | None
    rows: int
    nanosecond_timestamps: bool = False


def check_schemas(files: list[FileKey] | tuple[FileKey, ...], filters: RowFilters) -> FilePlan:
    """Read the Parquet footers (not the data) and check each file has the columns the query
    needs, with usable types.

    Returns: FilePlan with the total row count from the footers.
    Raises: DataError naming the file and the column: a missing column, a tstamp that is
    neither a number nor a timestamp, or files that disagree on the tstamp type; a file that is
    not readable Parquet. Sources in another schema (55k's one-hot winners, 140k's ``id`` /
    ``timestamp``) are read by the default in-memory path, which maps them.
    """
    kinds = set()
    rows = 0
    nanos = False
    for f in files:
        try:
            meta = pq.read_metadata(f.path)
            schema = meta.schema.to_arrow_schema()
        except (pa.ArrowException, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(f"not a readable Parquet file: {first}", f.path, expected="a complete Parquet file") from None
        rows += meta.num_rows
        for col in filters.columns():
            if col not in schema.names:
                hint = {"dedup_sampled": " (FastChat's dedup_tag.sampled as a boolean column)", "tstamp": " (Unix seconds or a timestamp)"}.get(col, "")
                raise DataError(
                    f"column '{col}'{hint} is missing (columns: {', '.join(schema.names[:12])})",
                    f.path,
                    field=col,
                    expected=f"the canonical columns {', '.join(filters.columns())}; other schemas are read with --engine numpy",
                )
        if filters.dates:
            t = schema.field("tstamp").type
            if pa.types.is_integer(t) or pa.types.is_floating(t):
                kinds.add("number")
                _check_seconds(meta, schema.get_field_index("tstamp"), f.path)
            elif pa.types.is_timestamp(t):
                kinds.add("timestamp")
                nanos = nanos or t.unit == "ns"
            else:
                raise DataError(f"tstamp has type {t}", f.path, field="tstamp", expected="Unix seconds (a number) or a Parquet timestamp")
    if len(kinds) > 1:
        raise DataError("tstamp is a number in some files and a timestamp in others", str(files[0].path), field="tstamp", expected="one tstamp type in every file")
    return FilePlan(tuple(files), kinds.pop() if kinds else None, rows, nanos)


def _check_seconds(meta, col: int, path: str) -> None:
    """Refuse numeric tstamps that look like milliseconds or microseconds (row-group maxima
    above 1e11 s, the year 5138), which the in-memory reader would rescale."""
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(col).statistics
        if st is not None and st.has_min_max and st.max is not None and float(st.max) > 1e11:
            raise DataError(
                f"tstamp values up to {float(st.max):.4g} look like milliseconds or microseconds",
                path,
                field="tstamp",
                expected="Unix seconds for the engines (or read the file with --engine numpy, which rescales them)",
            )
