"""The in-memory engine: each file read with pyarrow (only the needed columns), grouped with
pandas/numpy. The reference the other engines are tested against."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from openarena.engines.plan import FilePlan, RowFilters


def _in_range(t: pd.Series, kind: str, filters: RowFilters) -> pd.Series:
    if kind == "timestamp":
        if t.dt.tz is None:
            t = t.dt.tz_localize("UTC")
        sec = (t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    else:
        sec = t.astype("float64")
    ok = pd.Series(True, index=t.index)
    if filters.since is not None:
        ok &= sec >= filters.since
    if filters.until is not None:
        ok &= sec < filters.until
    return ok.astype("boolean").mask(sec.isna())


def group_counts(plan: FilePlan, filters: RowFilters) -> pd.DataFrame:
    """Grouped counts of every file of ``plan`` (see :mod:`openarena.engines.plan`)."""
    parts = []
    for f in plan.files:
        table = pq.read_table(f.path, columns=filters.columns())
        frame = table.to_pandas()
        for col in ("model_a", "model_b", "winner"):
            frame[col] = frame[col].astype("category")
        keys = ["model_a", "model_b", "winner"]
        if filters.anony:
            frame["anony"] = frame["anony"].astype("boolean")
            keys.append("anony")
        if filters.dedup:
            frame["dedup_sampled"] = frame["dedup_sampled"].astype("boolean")
            keys.append("dedup_sampled")
        if filters.dates:
            frame["in_range"] = _in_range(frame["tstamp"], plan.tstamp, filters)
            keys.append("in_range")
        g = frame.groupby(keys, observed=True, dropna=False, sort=False).size().reset_index(name="n")
        g = g[g["n"] > 0]
        for col in ("model_a", "model_b", "winner"):
            g[col] = g[col].astype(object)
        g.insert(0, "file", f.path)
        g["n"] = g["n"].astype(np.int64)
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["file", "model_a", "model_b", "winner", *filters.flags(), "n"])
