"""The engines give the counts of the in-memory path: identical pair counts (and so identical
ratings) on the same Parquet folder, with the row filters, incrementally, and clear errors."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from openarena.data.battles import aggregate
from openarena.data.filters import apply_filters
from openarena.data.readers import read_battles
from openarena.engines import aggregate_counts, choose_engine
from openarena.errors import DataError
from openarena.ratings.bradley_terry import fit_bradley_terry

from tests.engines.conftest import T0, battles_frame, write_part

FILTERS = [
    {},
    {"anony": True, "dedup": True},
    {"since": T0 + 5 * 86400, "until": "2023-12-01", "anony": True},
    {"aliases": {"model-05": "model-04", "model-07": "model-x"}, "exclude": ["model-09"], "min_battles": 900},
]


def reference(folder, kw):
    """The in-memory path: read every row, filter, aggregate."""
    return aggregate(apply_filters(read_battles(folder), anony_only=kw.get("anony", False), dedup=kw.get("dedup", False), since=kw.get("since"), until=kw.get("until"), exclude=kw.get("exclude", ()), aliases=kw.get("aliases"), min_battles=kw.get("min_battles", 0)))


def assert_same(pc, ref):
    assert pc.models == ref.models
    np.testing.assert_array_equal(pc.pairs, ref.pairs)
    np.testing.assert_array_equal(pc.counts, ref.counts)


@pytest.mark.parametrize("kw", FILTERS)
@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_engine_counts_equal_the_in_memory_path(parquet_folder, engine, kw):
    ref = reference(parquet_folder, kw)
    pc = aggregate_counts(parquet_folder, engine=engine, store=None, **kw)
    assert_same(pc, ref)
    # the filters removed something, so the test can tell them apart
    assert pc.total < 6000 or not kw
    # same votes removed per step (the engines do the row filters before the model filters)
    assert {s.name: s.removed for s in pc.steps if s.name in ("anony", "dedup")} == {s.name: s.removed for s in ref.steps if s.name in ("anony", "dedup")}


def test_three_engines_identical_counts_and_ratings(parquet_folder, spark):
    kw = {"anony": True, "since": T0 + 2 * 86400, "aliases": {"model-05": "model-04"}}
    results = {e: aggregate_counts(parquet_folder, engine=e, store=None, **kw) for e in ("numpy", "duckdb", "spark")}
    assert_same(results["duckdb"], results["numpy"])
    assert_same(results["spark"], results["numpy"])
    assert_same(results["numpy"], reference(parquet_folder, kw))
    thetas = {e: fit_bradley_terry(pc).theta for e, pc in results.items()}
    np.testing.assert_array_equal(thetas["spark"], thetas["numpy"])
    np.testing.assert_array_equal(thetas["duckdb"], thetas["numpy"])


def test_spark_timestamps_and_dedup(tmp_path, spark):
    folder = tmp_path / "ts"
    for k in range(2):
        write_part(folder, f"p{k}.parquet", battles_frame(800, seed=10 + k, timestamps=True))
    kw = {"dedup": True, "since": "2023-11-20", "until": "2023-12-05T12:00:00+01:00"}
    ref = reference(folder, kw)
    for engine in ("numpy", "duckdb", "spark"):
        assert_same(aggregate_counts(folder, engine=engine, store=None, **kw), ref)
    # nanosecond timestamps (pandas' default) are read by numpy and DuckDB, refused by Spark
    write_part(folder, "p2.parquet", battles_frame(100, seed=12, timestamps=True), timestamps=None)
    assert_same(aggregate_counts(folder, engine="duckdb", store=None, **kw), reference(folder, kw))
    with pytest.raises(DataError, match="nanosecond"):
        aggregate_counts(folder, engine="spark", store=None, **kw)


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_incremental_aggregate_equals_full_aggregate(parquet_folder, tmp_path, engine):
    store = tmp_path / "store"
    kw = {"anony": True}
    info = {}
    first = aggregate_counts(parquet_folder, engine=engine, store=store, info=info, **kw)
    assert (info["files_read"], info["files_reused"]) == (4, 0)
    # two new partitions arrive: only they are read
    write_part(parquet_folder, "date=2024-01/part-4.parquet", battles_frame(900, seed=4))
    write_part(parquet_folder, "date=2024-01/part-5.parquet", battles_frame(700, seed=5))
    second = aggregate_counts(parquet_folder, engine=engine, store=store, info=info, **kw)
    assert (info["files_read"], info["files_reused"]) == (2, 4)
    assert_same(second, aggregate_counts(parquet_folder, engine=engine, store=None, **kw))
    assert second.total > first.total
    # a rewritten partition (new size/mtime) is read again; a removed one is dropped
    p0 = next(parquet_folder.rglob("part-0.parquet"))
    write_part(parquet_folder, str(p0.relative_to(parquet_folder)), battles_frame(300, seed=99))
    os.remove(next(parquet_folder.rglob("part-5.parquet")))
    third = aggregate_counts(parquet_folder, engine=engine, store=store, info=info, **kw)
    assert (info["files_read"], info["files_reused"]) == (1, 4)
    assert_same(third, reference(parquet_folder, kw))
    # a different query has its own store entry
    aggregate_counts(parquet_folder, engine=engine, store=store, info=info)
    assert info["files_read"] == 5


def test_store_is_shared_by_engines(parquet_folder, tmp_path):
    store = tmp_path / "store"
    info = {}
    a = aggregate_counts(parquet_folder, engine="duckdb", store=store, info=info, dedup=True)
    b = aggregate_counts(parquet_folder, engine="numpy", store=store, info=info, dedup=True)
    assert info["files_read"] == 0
    assert_same(a, b)


@pytest.mark.parametrize("engine", ["numpy", "duckdb"])
def test_errors_name_the_file_and_field(tmp_path, engine):
    folder = tmp_path / "bad"
    good = battles_frame(200, seed=1)
    write_part(folder, "a.parquet", good)
    write_part(folder, "b.parquet", good.drop(columns=["anony"]))
    with pytest.raises(DataError) as e:
        aggregate_counts(folder, engine=engine, store=None, anony=True)
    assert e.value.field == "anony" and e.value.source.endswith("b.parquet")
    os.remove(folder / "b.parquet")
    bad = good.copy()
    bad.loc[5, "winner"] = "draw"
    write_part(folder, "c.parquet", bad)
    with pytest.raises(DataError, match="unknown winner label 'draw'") as e:
        aggregate_counts(folder, engine=engine, store=None)
    assert e.value.source.endswith("c.parquet")
    os.remove(folder / "c.parquet")
    same = good.copy()
    same.loc[3, "model_b"] = same.loc[3, "model_a"].strip()
    write_part(folder, "d.parquet", same)
    with pytest.raises(DataError, match="battles itself"):
        aggregate_counts(folder, engine=engine, store=None)
    os.remove(folder / "d.parquet")
    ms = good.copy()
    ms["tstamp"] = ms["tstamp"] * 1000
    write_part(folder, "e.parquet", ms)
    with pytest.raises(DataError, match="milliseconds"):
        aggregate_counts(folder, engine=engine, store=None, since="2023-11-20")
    os.remove(folder / "e.parquet")
    nulls = good.copy().astype({"anony": "boolean"})
    nulls.loc[7, "anony"] = pd.NA
    write_part(folder, "f.parquet", nulls)
    with pytest.raises(DataError, match="missing anony value") as e:
        aggregate_counts(folder, engine=engine, store=None, anony=True)
    assert e.value.source.endswith("f.parquet")


def test_choose_engine(parquet_folder, tmp_path, monkeypatch):
    assert choose_engine(parquet_folder) is None  # small: the in-memory reader
    monkeypatch.setattr("openarena.engines.AUTO_DUCKDB_ROWS", 5000)  # the folder has 6,000
    assert choose_engine(parquet_folder) == "duckdb"
    assert choose_engine(str(parquet_folder / "*" / "*.parquet")) == "duckdb"
    one = next(parquet_folder.rglob("part-0.parquet"))
    assert choose_engine(one) is None  # 1,500 rows
    monkeypatch.setattr("openarena.engines.AUTO_DUCKDB_ROWS", 1000)
    assert choose_engine(one) == "duckdb"
    other = write_part(tmp_path, "55k.parquet", battles_frame(2000, seed=3).rename(columns={"winner": "result"}))
    assert choose_engine(other) is None  # not the canonical schema: the reader maps it
    assert choose_engine(parquet_folder, "spark") == "spark"
    with pytest.raises(DataError, match="unknown engine"):
        choose_engine(parquet_folder, "polars")
    (parquet_folder / "extra.csv").write_text("model_a,model_b,winner\nx,y,model_a\n")
    assert choose_engine(parquet_folder) is None  # mixed formats: the reader handles them
    with pytest.raises(DataError, match="matches no file"):
        aggregate_counts(str(tmp_path / "nothing" / "*.parquet"), engine="numpy", store=None)
